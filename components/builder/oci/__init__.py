"""OCI I/O: the distribution API, reading a registry (tags, bases) and writing to it
(blobs, manifests, referrers such as the SBOM)."""
