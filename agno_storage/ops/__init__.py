"""Operating a sessions database: tables, export, import, copy, prune, backup, doctor.

Each operation is a module of its own over the store's public API (writes)
and a raw read-only connection (:mod:`agno_storage.ops.db`, reads as
stored); the ``agno-storage`` subcommands of the same names call them.
See docs/ops.md.
"""
