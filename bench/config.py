"""Sizes of each run mode: ``--smoke`` (seconds, for tests), ``--quick`` (a minute or two), ``--full``."""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs


@attrs.define
class Config:
    """Sizes of the SQLite part (bench/sqlite.py)."""

    mode: str
    workdir: Path
    rounds: int
    small_batch: int  # upserts per contender per round
    read_batch: int
    large_rounds: int
    large_batch: int
    recent_rows: int
    recent_ops: int  # queries per contender per round, at most ...
    recent_budget_s: float  # ... or this long
    bulk_n: int
    bulk_n_small: int  # second size, to show peak memory does not grow with the count
    bulk_rounds: int
    agno_sample: int  # agno has no bulk API: this many upserts, extrapolated
    concurrent_n: int  # upserts per writer process
    concurrent_rounds: int


def make(mode: str, workdir: Path) -> Config:
    if mode == "smoke":
        return Config(mode, workdir, 2, 4, 8, 2, 1, 300, 3, 0.05, 400, 100, 1, 10, 10, 1)
    if mode == "quick":
        return Config(mode, workdir, 5, 40, 200, 3, 2, 10_000, 50, 0.2, 20_000, 4_000, 1, 200, 150, 1)
    if mode == "full":
        # At least 9 interleaved rounds everywhere; bulk import at 20,000 and agno's sample at 300 so that
        # 9 rounds of them fit in a few minutes on a shared two-core machine.
        return Config(mode, workdir, 9, 150, 1000, 9, 4, 100_000, 100, 0.5, 20_000, 4_000, 9, 300, 500, 9)
    raise ValueError(f"unknown mode {mode!r}")


@attrs.define
class PgConfig:
    """Sizes of the PostgreSQL part (bench/pg.py)."""

    mode: str
    rounds: int
    small_batch: int  # upserts per contender per round
    read_batch: int
    recent_rows: int
    recent_ops: int  # queries per contender per round, at most ...
    recent_budget_s: float  # ... or this long
    bulk_n: int
    bulk_rounds: int
    agno_sample: int  # agno has no bulk API: this many upserts, extrapolated


def make_pg(mode: str) -> PgConfig:
    if mode == "smoke":
        return PgConfig(mode, 2, 4, 8, 300, 3, 0.05, 200, 1, 10)
    if mode == "quick":
        return PgConfig(mode, 5, 40, 200, 10_000, 50, 0.2, 5_000, 1, 100)
    if mode == "full":
        return PgConfig(mode, 9, 150, 1000, 100_000, 100, 0.5, 20_000, 9, 300)
    raise ValueError(f"unknown mode {mode!r}")


def add_mode_options(p: argparse.ArgumentParser, quick_help: str) -> None:
    """--quick, --full and --smoke, into ``mode`` (None when none is given)."""
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="mode", action="store_const", const="quick", help=quick_help)
    size.add_argument("--full", dest="mode", action="store_const", const="full", help="the documented run")
    size.add_argument("--smoke", dest="mode", action="store_const", const="smoke", help="tiny sizes, for tests")
