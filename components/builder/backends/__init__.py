"""Backends: an install plan rendered into an image (the Dockerfile recipe and its
engines, or per-package layers written by the builder)."""
