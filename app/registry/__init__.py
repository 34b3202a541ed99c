"""The model registry: named models, numbered versions, aliases, and version resolution."""
