"""Model families, one file each; their rows (names, variants, published figures) are in garden/catalog.py.

Families import ``garden.layers`` and the shared pieces of this package, nothing above them.
"""
