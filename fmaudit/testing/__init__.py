"""Helpers that only tests and benchmarks use (tiny checkpoints built on the fly)."""
