"""Benchmarks. Each module has a `main()`; `python -m bench [names...]` runs them in turn."""
