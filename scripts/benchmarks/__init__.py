"""Benchmark scripts: they print ratios measured side by side in one run (not tests)."""
