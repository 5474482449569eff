"""Compression passes: prune, combine, quantize."""
