"""Loopback servers and helpers shared by tests, the demo and the benchmarks."""
