"""Benchmarks of agno_storage against agno 1.8.4, plain sqlite3 and agno-golang's storage.

Run ``make bench-quick`` or ``make bench``; results go to docs/benchmarks.md.
"""
