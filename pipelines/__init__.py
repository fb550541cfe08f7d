"""Steps composed into pipelines, and the committed catalogs."""
