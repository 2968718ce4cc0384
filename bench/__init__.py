"""Benchmarks: every budget of the design, each beside a reference measured in the same run."""
