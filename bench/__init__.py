"""Reproducible benchmarks for modelplane: run them all with `python -m bench [--quick]`."""
