"""Benchmark runner (`python -m bench`), its baseline servers and load-generator glue; not tests."""
