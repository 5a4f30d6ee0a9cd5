"""``python -m agno_storage``: the ``agno-storage`` command (see docs/cli.md)."""

from agno_storage.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
