"""Benchmarks through the real app; `make bench` prints their table."""
