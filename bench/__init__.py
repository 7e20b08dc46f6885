"""Benchmarks: `make bench` prints the figures (no timing assertions live in tests)."""
