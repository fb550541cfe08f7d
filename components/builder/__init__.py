"""Builder step: MLflow codeset -> environment image, tagged by a checksum of that environment."""
