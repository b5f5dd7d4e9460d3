"""Growers' stories and community recipes: the repository, its lifecycle and revisions,
file and JSON-LD interchange, search, and the bindings that put them on displays."""
