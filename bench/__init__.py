"""Benchmarks: each script starts its own stack and prints its figures."""
