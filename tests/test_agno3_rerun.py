"""to-agno3 run again after the source lost runs: the runs it wrote that are gone are deleted, agno 3's own kept.

agno 1.8.4 writes a session (two turns), to-agno3 copies it, agno 3.1.10
continues it (its own run), then the 1.x app deletes the session and starts
it again under the same id (one new turn). The rerun makes agno 3 see the new
1.x run followed by its own run, and nothing of the deleted turns.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agno_storage.agno3 import to_agno3
from devkit import agno3_env


def _run_indexes(engine: str, db: str, session_id: str) -> list[int]:
    sql = "SELECT run_index FROM {}agno_runs WHERE session_id = {} ORDER BY run_index"
    if engine == "postgres":
        import psycopg

        with psycopg.connect(db) as conn:
            return [r[0] for r in conn.execute(sql.format("ai.", "%s"), (session_id,))]
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute(sql.format("", "?"), (session_id,))]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_rerun_deletes_runs_the_source_lost_and_keeps_agno3s_own(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tests.agno_runner import close_storages, make_storage, run_turn

    if engine == "postgres":
        from tests.pgserver import create_database

        src = dst = create_database(request.getfixturevalue("pg_server"), "agno3_rerun")  # counts of its own
    else:
        src, dst = str(tmp_path / "agno1.db"), str(tmp_path / "agno3.db")
    sid = f"rerun-{engine}"
    try:
        for message in ("old first", "old second"):
            run_turn("agent", "agno", src, sid, "user-1", message)
        first = to_agno3(src, dst)
        assert first.modes["agent"].runs == 2
        agno3_turn = agno3_env.resume("agent", dst, sid, "user-1", "historian", "agno 3 turn")
        assert agno3_turn["runs_after"] == 3
        # The 1.x app deletes the session and starts it over under the same id.
        make_storage("agno", src, "agent_sessions").delete_session(sid)
        run_turn("agent", "agno", src, sid, "user-1", "new start")
    finally:
        close_storages()
    again = to_agno3(src, dst)
    assert again.modes["agent"].sessions == 1 and again.modes["agent"].runs == 1
    assert again.modes["agent"].runs_removed == 2
    result = agno3_env.resume("agent", dst, sid, "user-1", "historian", "after rerun")
    seen = "\n".join(m["content"] or "" for m in result["calls"][-1])
    assert "old first" not in seen and "old second" not in seen
    # The new 1.x turn, then agno 3's own turn, in that order.
    assert seen.index("new start") < seen.index("agno 3 turn") < seen.index("after rerun")
    assert result["runs_before"] == 2 and result["runs_after"] == 3
    # agno 3's own run was renumbered to follow the one migrated run, and agno 3 numbered its next after it.
    assert _run_indexes(engine, dst, sid) == [0, 1, 2]
    # Unchanged since: nothing more is deleted or written.
    third = to_agno3(src, dst)
    assert third.modes["agent"].unchanged == 1 and third.modes["agent"].runs_removed == 0
