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


_LOADED_RUNS = (
    "import json, sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.db.base import SessionType\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "print(json.dumps({s.session_id: len(s.runs or []) for s in db.get_sessions(session_type=SessionType.TEAM)}))\n"
)


def test_rewrite_gives_a_target_an_earlier_mapping_wrote_this_ones_and_leaves_agno3s_own_session(
    tmp_path: Path,
) -> None:
    """A team run an earlier build wrote without ``team_id`` is one agno 3 skips unseen (made here by taking the
    key out of what this build wrote). A rerun leaves it, its source unchanged; ``rewrite`` writes it again."""
    import json
    import shutil

    src, dst = tmp_path / "team.db", tmp_path / "agno3.db"
    shutil.copy(Path(__file__).resolve().parent.parent / "fixtures" / "go_team.db", src)
    first = to_agno3(str(src), str(dst))
    with sqlite3.connect(dst) as conn:
        for run_id, data in conn.execute("SELECT run_id, run_data FROM agno_runs WHERE run_type = 'team'").fetchall():
            run = json.loads(data)
            del run["team_id"]
            conn.execute("UPDATE agno_runs SET run_data = ? WHERE run_id = ?", (json.dumps(run), run_id))
    agno3_env.run_code(_AGNO3_OWN, str(dst), "agno3-own")

    def loaded() -> dict[str, int]:
        out: dict[str, int] = json.loads(agno3_env.run_code(_LOADED_RUNS, str(dst)).strip().splitlines()[-1])
        return out

    broken = loaded()
    assert sum(broken.values()) == 0 and broken["agno3-own"] == 0
    again = to_agno3(str(src), str(dst))
    assert (again.total("sessions"), again.total("unchanged")) == (0, first.total("sessions"))
    assert loaded() == broken
    rewritten = to_agno3(str(src), str(dst), rewrite=True)
    assert (rewritten.total("sessions"), rewritten.total("unchanged")) == (first.total("sessions"), 0)
    with sqlite3.connect(dst) as conn:
        per_session = dict(conn.execute("SELECT session_id, count(*) FROM agno_runs GROUP BY session_id").fetchall())
    after = loaded()
    assert {sid: n for sid, n in after.items() if sid != "agno3-own"} == {
        sid: per_session.get(sid, 0) for sid in after if sid != "agno3-own"
    }
    assert sum(per_session.values()) == first.total("runs")
    with sqlite3.connect(dst) as conn:
        (metadata,) = conn.execute("SELECT metadata FROM agno_sessions WHERE session_id = 'agno3-own'").fetchone()
    assert json.loads(metadata) == {"tenant": "agno 3"}  # agno 3's own session: still left alone


_AGNO3_OWN = (
    "import sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.session.team import TeamSession\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "db.upsert_session(TeamSession(session_id=sys.argv[2], team_id='t', user_id='u', metadata={'tenant': 'agno 3'},"
    " created_at=1700000000, updated_at=1700000000))\n"
)
