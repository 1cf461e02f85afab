"""Benchmarks of Pantau's ingest path (run ``python -m bench.ingest``); not shipped."""
