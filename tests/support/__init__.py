"""Real services for tests and benchmarks: registry, package index, base images."""
