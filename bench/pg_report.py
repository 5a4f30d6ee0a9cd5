"""Render the PostgreSQL part of a run as a section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.pg_contenders import FLOOR_PREPARED, FLOOR_WRITES_PREPARED, OURS_PREPARED
from bench.tables import Goal, at_least, goal_lines, goals_table, plans_table, table

#: Hand-written causes of misses and hot spots, placed after the generated tables.
ANALYSIS = Path(__file__).resolve().parent / "doc_postgres.md"

_UPSERT = "Each upsert waits for its WAL flush; the store adds the pool checkout and encoding to the floor's statement."
_READ = "Most of a read is the round trip; the store adds the pool checkout and RowCodec.decode (with the wide-integer scan)."
_PREPARED = (
    "With prepared statements the server skips parsing and planning; the store adds the pool checkout and"
    " RowCodec.decode to the prepared floor's read."
)
#: (workload prefix, store, contender, needed speed-up, name, ceiling, cause of a miss) of every stated target: the
#: store (agno_storage at its defaults, or with the opt-in prepared_statements=True) at least that many times faster
#: than agno 1.8.4's PostgresStorage at its defaults, priced against the floor named as the ceiling.
TARGETS = (
    (
        "1. upsert new small",
        "agno_storage",
        "agno 1.8.4",
        3.3,
        "upsert new small: vs agno 1.8.4",
        "floor (psycopg)",
        _UPSERT,
    ),
    (
        "1. upsert existing small",
        "agno_storage",
        "agno 1.8.4",
        3.3,
        "upsert existing small: vs agno 1.8.4",
        "floor (psycopg)",
        _UPSERT,
    ),
    ("2. read small", "agno_storage", "agno 1.8.4", 2.8, "read small: vs agno 1.8.4", "floor + orjson.loads", _READ),
    (
        "1. upsert new small",
        OURS_PREPARED,
        "agno 1.8.4",
        3.3,
        "upsert new small, prepared_statements=True: vs agno 1.8.4",
        FLOOR_WRITES_PREPARED,
        _UPSERT,
    ),
    (
        "1. upsert existing small",
        OURS_PREPARED,
        "agno 1.8.4",
        3.3,
        "upsert existing small, prepared_statements=True: vs agno 1.8.4",
        FLOOR_WRITES_PREPARED,
        _UPSERT,
    ),
    (
        "2. read small",
        OURS_PREPARED,
        "agno 1.8.4",
        2.8,
        "read small, prepared_statements=True: vs agno 1.8.4",
        FLOOR_PREPARED,
        _PREPARED,
    ),
)


def targets(pg: dict[str, Any]) -> list[Goal]:
    """Every stated target with the ceiling it was measured against; met is None when not measured."""
    rows = pg.get("rows", [])
    return [
        at_least(rows, w, name, need, ours, contender, ceiling=ceiling, why=why)
        for w, ours, contender, need, name, ceiling, why in TARGETS
    ]


def not_run_warning(pg: dict[str, Any]) -> str | None:
    """For the terminal: that the PostgreSQL part did not run, why, and what to do; None if it ran."""
    if "skipped" not in pg:
        return None
    lines = [
        "!" * 78,
        f"!! WARNING: the PostgreSQL part did NOT run: {pg['skipped']}.",
        "!! These results have no PostgreSQL numbers. Fix the cause and run again,",
        "!! or pass --no-postgres to leave the part out on purpose.",
    ]
    if pg.get("detail"):
        lines += ["!! Details:", *(f"!!   {line}" for line in pg["detail"].splitlines())]
    return "\n".join([*lines, "!" * 78])


def _load(pg: dict[str, Any]) -> str:
    """Load averages before and after this part ('not recorded' for older runs)."""
    before, after = pg.get("load_before"), pg.get("load_after")
    if not before or not after:
        return "not recorded"
    return (
        f"{'/'.join(f'{x:.2f}' for x in before)} before, {'/'.join(f'{x:.2f}' for x in after)} after "
        f"(1/5/15-minute load averages on {pg.get('cores', '?')} cores)"
    )


def render(pg: dict[str, Any]) -> str:
    if "skipped" in pg:
        return (
            "## PostgreSQL\n\n"
            "> [!WARNING]\n"
            f"> **Not measured: the PostgreSQL part did not run.** {pg['skipped']}.\n"
            "> This page has no PostgreSQL numbers; fix the cause and run again "
            "(`--no-postgres` leaves the part out on purpose).\n"
        )
    s, v = pg["server"], pg["versions"]
    rows = pg["rows"]
    parts = [
        f"""## PostgreSQL

Run `{pg["command"]}` on {pg["date"]} ({pg["mode"]} mode, {pg["seconds"]:.0f} s), measuring
agno_storage at commit {pg["revision"]}.

| | |
|---|---|
| server | PostgreSQL {s["server_version"]}, throwaway cluster from devkit/pgserver.py, {pg["connection"]} |
| load | {_load(pg)} |
| durability | `fsync={s["fsync"]}`, `synchronous_commit={s["synchronous_commit"]}`, `full_page_writes={s["full_page_writes"]}`, `wal_sync_method={s["wal_sync_method"]}` (turned on for this run; the test suite's server runs with fsync off) |
| memory, WAL | `shared_buffers={s["shared_buffers"]}`, `wal_level={s["wal_level"]}`, `max_wal_size={s["max_wal_size"]}` |
| drivers | psycopg {v["psycopg"]} (binary {v["psycopg-binary"]}), psycopg_pool {v["psycopg-pool"]}; agno {v["agno"]} through SQLAlchemy {v["sqlalchemy"]} with `postgresql+psycopg://` |
| contenders | agno_storage `PostgresStorage` and agno 1.8.4 `PostgresStorage`, each at its defaults, schema `ai`, mode agent; the floor is one plain psycopg connection in autocommit running the store's own statement text on rows pre-encoded by the store's codec. agno 1.8.4 prepares none of its reads and upserts (it leaves psycopg's `prepare_threshold` at 5, but each ends in a rollback, which resets psycopg's counts); agno_storage and the floor prepare nothing by default, and do in the rows marked `prepared` (`prepared_statements=True`, opt-in) |
| sessions | small, {pg["small_json_bytes"] / 1024:.1f} KiB of JSON (same generator as the SQLite part) |

Medians over interleaved rounds; "speed-up" is the contender's median time divided by
agno_storage's (first row of each workload), so above 1 means agno_storage is faster.
Each upsert is one committed transaction, so each pays one WAL flush.

{table(rows)}
"""
    ]
    parts.append("### PostgreSQL query plans for workload 3\n\n" + plans_table(rows))
    parts.append("### PostgreSQL targets\n\n" + goals_table(targets(pg)))
    parts.append("### Configuration of the PostgreSQL run\n\n" + ", ".join(f"{k}={v}" for k, v in pg["config"].items()))
    if ANALYSIS.exists():
        parts.append(ANALYSIS.read_text().rstrip())
    return "\n\n".join(parts) + "\n"


def summary(pg: dict[str, Any]) -> str:
    warning = not_run_warning(pg)
    if warning is not None:
        return warning
    lines = ["PostgreSQL:", table(pg["rows"]), ""]
    lines += goal_lines(targets(pg))
    return "\n".join(lines)
