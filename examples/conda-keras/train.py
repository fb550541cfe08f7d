"""The seed page's conda example (rendered and linted here; conda channels are not reachable)."""
