"""Per-package layering: the image is written by the builder, one layer per distribution.

The flow (`assemble.build_layered`): resolve the environment to exact wheels (`resolution`),
name each layer by what decides its bytes (`units`), ask the registry's layer cache which of
them exist (`cache`), install only the missing distributions in the base (`workspace`), split
them per RECORD into deterministic tar layers (`tarlayer`), then mount or upload every layer and
write the config and manifest (`image`, over `..registry_push`).
"""
