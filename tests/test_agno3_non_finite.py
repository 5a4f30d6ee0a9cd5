"""to-agno3 on sessions holding NaN and infinities, as agno 1.8.4's own SQLite store writes them (``json.dumps``).

agno 3.1.10's ``SqliteDb`` writes and reads them the same way, so they move to a
SQLite target as they are and agno 3 resumes them; PostgreSQL's jsonb has no
form for them (nor can agno 3's ``PostgresDb`` store them), so such a session is
refused by name there.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage.agno3 import to_agno3
from agno_storage.errors import InvalidInputError
from agno_storage.ops.values import NON_FINITE_HINT
from devkit import agno3_env


def _nan_source(db: Path, session_ids: tuple[str, ...] = ("s-nan",)) -> None:
    """agno 1.8.4 Agent sessions whose state, extra_data and (the last one's) run hold NaN and infinities."""
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    from devkit.fake_model import FakeModel
    from tests.agno_runner import make_agent

    theirs = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(db), mode="agent")
    for sid in session_ids:
        agent = make_agent(theirs, sid, "user-1", FakeModel())
        if sid == session_ids[-1]:
            agent.session_state = {"score": float("nan"), "best": float("inf"), "worst": float("-inf")}
            agent.extra_data = {"threshold": float("nan")}
        assert agent.run("first question").content == "reply #1: first question"
    theirs.db_engine.dispose()
    with sqlite3.connect(db) as conn:
        # A run holding NaN, as json.dumps writes it (agno 1.x keeps what it does not know in extra_data).
        changed = conn.execute(
            """UPDATE agent_sessions SET memory = replace(memory, '"tools": []', '"tools": [], "extra_data": """
            """{"score": NaN}') WHERE session_id = ?""",
            (session_ids[-1],),
        ).rowcount
        stored = conn.execute("SELECT session_data, memory FROM agent_sessions WHERE session_id = ?", (sid,)).fetchone()
    assert changed == 1 and "NaN" in stored[0] and "-Infinity" in stored[0] and '"score": NaN' in stored[1]


def test_a_session_holding_nan_moves_to_sqlite_as_agno3_stores_it_and_agno3_resumes_it(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.db", tmp_path / "agno3.db"
    _nan_source(src)
    report = to_agno3(str(src), str(dst), workers=0)
    assert report.total("sessions") == 1 and report.total("runs") == 1
    with sqlite3.connect(dst) as conn:
        session_data, metadata = conn.execute("SELECT session_data, metadata FROM agno_sessions").fetchone()
        (run_data,) = conn.execute("SELECT run_data FROM agno_runs").fetchone()
    # json.dumps's spelling, as agno 3's own SqliteDb writes these values.
    assert '"score": NaN, "best": Infinity, "worst": -Infinity' in session_data
    assert '"threshold": NaN' in metadata and '"score": NaN' in run_data
    state = json.loads(session_data)["session_state"]
    assert math.isnan(state["score"]) and (state["best"], state["worst"]) == (math.inf, -math.inf)

    result = agno3_env.resume("agent", str(dst), "s-nan", "user-1", "historian", "second question")
    seen = "\n".join(m["content"] or "" for m in result["calls"][-1])
    assert "first question" in seen and "reply #1: first question" in seen and "second question" in seen
    assert result["runs_before"] == 1 and result["runs_after"] == 2
    # agno 3 read the state and wrote it back with the new turn: the values are still there.
    state = result["session_data"]["session_state"]
    assert math.isnan(state["score"]) and (state["best"], state["worst"]) == (math.inf, -math.inf)
    # A rerun leaves the session alone: its source is unchanged.
    assert to_agno3(str(src), str(dst), workers=0).total("unchanged") == 1


def test_a_session_holding_nan_is_refused_by_name_on_postgresql_and_the_ones_before_it_are_kept(
    pg_server: Any, tmp_path: Path
) -> None:
    import psycopg

    src = tmp_path / "src.db"
    _nan_source(src, ("s-ok-1", "s-ok-2", "s-nan"))
    with pytest.raises(InvalidInputError) as refused:
        to_agno3(str(src), pg_server.dsn, dst_schema="non_finite", workers=0)
    assert refused.value.session_id == "s-nan"
    assert "'s-nan'" in str(refused.value) and "NaN" in str(refused.value)
    # What it is and how to repair it, as export and copy say it (tests/test_ops_export_checks.py).
    assert "holds NaN or an infinity" in str(refused.value) and NON_FINITE_HINT in str(refused.value)
    assert "migrate into SQLite" in str(refused.value)
    assert (refused.value.table, refused.value.column) == ("agno_sessions", "session_data")
    with psycopg.connect(pg_server.dsn) as pg:
        written = sorted(r[0] for r in pg.execute("SELECT session_id FROM non_finite.agno_sessions"))
    assert written == ["s-ok-1", "s-ok-2"]
