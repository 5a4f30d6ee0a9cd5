"""to-agno3 where sources and target disagree: agno 3's own session under an id, two owners of one id (1.x
sessions, a Go Agent's runs), an owner DST holds that the owner rule does not give, one run id in two
sessions, a run id a session gives up; and what the source holds that agno 3 has no place for (summaries
with no text, times that are not whole seconds), memory counts, a dry run's files, a memory-table row with
no id.

Sources are written by real agno 1.8.4 (its ``SqliteStorage``), a Go Agent's runs as agno-golang v0.1.6
writes them (``append_run``); agno 3.1.10 writes and reads the target in its own venv (devkit/agno3_env.py).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage import SqliteStorage
from agno_storage.agno3 import ddl, to_agno3
from agno_storage.agno3.mapping import own_run_id
from agno_storage.agno3.memory_table import memory_copy_id
from agno_storage.cli import main
from devkit import agno3_env

_AGNO3_WRITES = (
    "import sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.session.agent import AgentSession\n"
    "from agno.session.summary import SessionSummary\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "db.upsert_session(AgentSession(session_id=sys.argv[2], agent_id='agno3-agent', user_id='carol',\n"
    "    session_data={'session_state': {'cart': ['agno 3 item']}}, metadata={'tenant': 'carol-co'},\n"
    "    summary=SessionSummary(summary='carol talked about cars'), created_at=1700000000, updated_at=1700000000))\n"
)

_AGNO3_READS = (
    "import json, sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.db.base import SessionType\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "out = {}\n"
    "for sid in sys.argv[2:]:\n"
    "    s = db.get_session(session_id=sid, session_type=SessionType.AGENT)\n"
    "    out[sid] = {'user_id': s.user_id, 'agent_id': s.agent_id, 'metadata': s.metadata,\n"
    "                'summary': s.summary.summary if s.summary else None,\n"
    "                'runs': [[r.run_id, r.user_id, [m.content for m in r.messages or []]] for r in s.runs or []]}\n"
    "print(json.dumps(out))\n"
)


def _agno3_reads(db: Path, *session_ids: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(agno3_env.run_code(_AGNO3_READS, str(db), *session_ids).strip().splitlines()[-1])
    return out


def _put(db: Path, mode: str, session_id: str, user_id: str | None, memory: dict[str, Any]) -> None:
    """One session written by agno 1.8.4's own SqliteStorage into its default table of ``mode``."""
    from agno.storage.session.agent import AgentSession
    from agno.storage.session.team import TeamSession
    from agno.storage.sqlite import SqliteStorage

    storage = SqliteStorage(table_name=f"{mode}_sessions", db_file=str(db), mode=mode)  # type: ignore[arg-type]
    try:
        storage.create()
        if mode == "agent":
            storage.upsert(
                AgentSession(
                    session_id=session_id, agent_id="helper", user_id=user_id, memory=memory, agent_data={"name": "h"}
                )
            )
        else:
            storage.upsert(TeamSession(session_id=session_id, team_id="crew", user_id=user_id, memory=memory))
    finally:
        storage.db_engine.dispose()  # type: ignore[attr-defined]


def _run(run_id: str, question: str, answer: str, **fields: Any) -> dict[str, Any]:
    run: dict[str, Any] = {} if "team_id" in fields else {"agent_id": "helper"}  # as agno 1.8.4 writes its runs
    run |= {
        "run_id": run_id,
        "content": answer,
        "created_at": 1700000000,
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
    }
    run.update(fields)
    return run


def _rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _go_run(db: Path, session_id: str, question: str, user_id: str | None) -> str:
    """One run a Go Agent writes to ``agent_runs`` (as agno-golang v0.1.6's ``CreateRun``); its id."""
    store = SqliteStorage(table_name="agent_sessions", db_file=str(db), mode="agent")
    try:
        return store.append_run(session_id, question, f"answer to {question}", user_id=user_id).id
    finally:
        store.close()


def _report(report: Any) -> dict[str, Any]:
    out: dict[str, Any] = report.to_dict()
    out.pop("seconds")
    out.pop("dry_run")
    return out


def test_agno3s_own_session_under_the_same_id_is_never_written_over(tmp_path: Path) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    agno3_env.run_code(_AGNO3_WRITES, str(dst), "chat-1")
    _put(src, "agent", "chat-1", "alice", {"runs": [_run("ra", "alice asks", "alice is answered")]})
    _put(src, "agent", "chat-2", "alice", {"runs": [_run("rb", "second", "answer")]})
    dry = to_agno3(str(src), str(dst), dry_run=True)
    real = to_agno3(str(src), str(dst))
    for report in (dry, real):
        assert (report.modes["agent"].sessions, report.modes["agent"].skipped) == (1, 1)
        assert [p for p in report.problems if "'chat-1'" in p and "agno 3's own session" in p]
    read = _agno3_reads(dst, "chat-1", "chat-2")
    assert read["chat-1"] == {
        "user_id": "carol",
        "agent_id": "agno3-agent",
        "metadata": {"tenant": "carol-co"},
        "summary": "carol talked about cars",
        "runs": [],
    }
    assert read["chat-2"]["user_id"] == "alice" and [r[0] for r in read["chat-2"]["runs"]] == ["rb"]
    # Every run: still agno 3's, still said.
    again = to_agno3(str(src), str(dst))
    assert again.modes["agent"].skipped == 1 and again.modes["agent"].unchanged == 1
    assert _rows(dst, "SELECT user_id FROM agno_sessions WHERE session_id = 'chat-1'") == [("carol",)]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_session_agno3_makes_while_the_migration_runs_is_never_written_over(tmp_path: Path, workers: int) -> None:
    """Workers map batches ahead of the writes: what DST held when a batch was mapped is looked at again under
    the write lock, so agno 3's session made meanwhile is left as it is and reported, as if it had been there."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    ids = [f"chat-{i:02}" for i in range(10)]
    for sid in ids:
        _put(src, "agent", sid, "alice", {"runs": [_run(f"r-{sid}", f"{sid} asks", "answered")]})
    made: list[str] = []

    def progress(done: int, total: int) -> None:
        if not made:  # after the first batch: a live agno 3 app starts a session under an id not written yet
            written = {sid for (sid,) in _rows(dst, "SELECT session_id FROM agno_sessions")}
            made.append(min(set(ids) - written))
            agno3_env.run_code(_AGNO3_WRITES, str(dst), made[0])

    report = to_agno3(str(src), str(dst), batch_size=2, workers=workers, progress=progress)
    (theirs,) = made
    assert (report.modes["agent"].sessions, report.modes["agent"].skipped) == (9, 1)
    assert [p for p in report.problems if f"{theirs!r}" in p and "agno 3's own session" in p]
    ours = max(ids)
    read = _agno3_reads(dst, theirs, ours)
    assert read[theirs] == {
        "user_id": "carol",
        "agent_id": "agno3-agent",
        "metadata": {"tenant": "carol-co"},
        "summary": "carol talked about cars",
        "runs": [],
    }
    assert read[ours]["user_id"] == "alice" and [r[0] for r in read[ours]["runs"]] == [f"r-{ours}"]


def test_another_users_session_under_the_same_id_is_left_out_not_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    _put(src, "agent", "chat-1", "alice", {"runs": [_run("ra", "alice asks", "alice is answered")]})
    _put(src, "team", "chat-1", "bob", {"runs": [_run("rb", "bob's secret", "bob is answered", team_id="crew")]})
    # No owner beside an owner is one user's session, merged (the v2 workflow step agent's case).
    _put(src, "agent", "chat-2", "alice", {"runs": [_run("rc", "alice again", "answer")]})
    _put(src, "team", "chat-2", None, {"runs": [_run("rd", "no one's", "answer", team_id="crew")]})
    report = to_agno3(str(src), str(dst))
    owners = dict(_rows(dst, "SELECT session_id, user_id FROM agno_sessions"))
    assert owners == {"chat-1": "bob", "chat-2": "alice"}
    runs = _rows(dst, "SELECT session_id, run_id, user_id FROM agno_runs ORDER BY session_id, run_index")
    assert runs == [("chat-1", "rb", "bob"), ("chat-2", "rd", "alice"), ("chat-2", "rc", "alice")]
    assert report.modes["agent"].skipped == 1 and report.modes["team"].skipped == 0
    assert [p for p in report.problems if "agent session 'chat-1'" in p and "'alice'" in p and "'bob'" in p]
    assert report.total("runs") == 3
    (metadata,) = _rows(dst, "SELECT metadata FROM agno_sessions WHERE session_id = 'chat-1'")[0]
    assert "alice" not in metadata  # nothing of the other user's session
    # Said again on a rerun, in the CLI's table and lines too.
    assert main(["to-agno3", str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out.splitlines()[0] and "1 sessions not migrated" in out
    assert "problem: agent session 'chat-1' belongs to user 'alice'" in out


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_id_two_sessions_hold_is_in_both_under_its_own_id_in_the_second(tmp_path: Path, workers: int) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    shared = _run("run-1", "hello", "hi there")
    _put(src, "agent", "s-first", "alice", {"runs": [shared]})
    _put(src, "agent", "s-second", "bob", {"runs": [shared, _run("run-2", "more", "bob's reply")]})
    dry = to_agno3(str(src), str(dst), dry_run=True, workers=workers)
    real = to_agno3(str(src), str(dst), workers=workers)
    rows = _rows(dst, "SELECT session_id, run_id, user_id FROM agno_runs ORDER BY session_id, run_index")
    assert dry.total("runs") == real.total("runs") == len(rows) == 3
    holder = next(sid for sid, rid, _ in rows if rid == "run-1")
    other = "s-second" if holder == "s-first" else "s-first"
    assert (other, own_run_id(other, "run-1")) in [(s, r) for s, r, _ in rows]
    clash = [p for p in real.problems if "'run-1'" in p]
    assert clash and clash == [p for p in dry.problems if "'run-1'" in p]
    read = _agno3_reads(dst, "s-first", "s-second")
    assert read["s-first"]["runs"][0][1:] == ["alice", ["hello", "hi there"]]
    assert [r[2] for r in read["s-second"]["runs"]] == [["hello", "hi there"], ["more", "bob's reply"]]
    (run_data,) = _rows(dst, "SELECT run_data FROM agno_runs WHERE run_id = ?", own_run_id(other, "run-1"))[0]
    assert json.loads(run_data)["metadata"]["agno_v1"]["run_id"] == "run-1"
    again = to_agno3(str(src), str(dst), workers=workers)
    assert again.total("unchanged") == 2 and again.total("runs") == 0
    assert _rows(dst, "SELECT COUNT(*) FROM agno_runs")[0][0] == 3


def test_a_run_an_earlier_build_moved_to_another_session_is_written_again(tmp_path: Path) -> None:
    """Builds before this one moved a run two sessions held into the later one; the rerun gives the other
    session its copy back, and deletes nothing of the session holding it."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    shared = _run("run-1", "hello", "hi there")
    _put(src, "agent", "s-first", "alice", {"runs": [shared]})
    _put(src, "agent", "s-second", "bob", {"runs": [shared, _run("run-2", "more", "bob's reply")]})
    to_agno3(str(src), str(dst))
    holder = _rows(dst, "SELECT session_id FROM agno_runs WHERE run_id = 'run-1'")[0][0]
    other = "s-second" if holder == "s-first" else "s-first"
    # What such a build left: the run in one session only, the other's metadata naming it.
    conn = sqlite3.connect(dst)
    conn.execute("DELETE FROM agno_runs WHERE run_id = ?", (own_run_id(other, "run-1"),))
    (metadata,) = conn.execute("SELECT metadata FROM agno_sessions WHERE session_id = ?", (other,)).fetchone()
    data = json.loads(metadata)
    data["agno_v1"]["run_ids"] = [r if r != own_run_id(other, "run-1") else "run-1" for r in data["agno_v1"]["run_ids"]]
    conn.execute("UPDATE agno_sessions SET metadata = ? WHERE session_id = ?", (json.dumps(data), other))
    conn.commit()
    conn.close()
    again = to_agno3(str(src), str(dst))
    assert (again.total("sessions"), again.total("unchanged"), again.total("runs_removed")) == (1, 1, 0)
    runs = _rows(dst, "SELECT session_id, run_id FROM agno_runs")
    assert len(runs) == 3 and (holder, "run-1") in runs and (other, own_run_id(other, "run-1")) in runs
    assert to_agno3(str(src), str(dst)).total("unchanged") == 2


def test_a_summary_agno3_cannot_take_is_kept_in_metadata(tmp_path: Path) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    empty = {"summary": "", "topics": ["tea", "travel"]}
    _put(src, "agent", "s1", "u", {"runs": [_run("r1", "q", "a")], "summary": empty})
    _put(src, "agent", "s2", "u", {"runs": [_run("r2", "q", "a")], "summary": "User asked about tea."})
    report = to_agno3(str(src), str(dst))
    assert len([p for p in report.problems if "memory.summary" in p]) == 2
    read = _agno3_reads(dst, "s1", "s2")
    assert read["s1"]["summary"] is None and read["s1"]["metadata"]["agno_v1"]["memory"]["summary"] == empty
    assert read["s2"]["metadata"]["agno_v1"]["memory"]["summary"] == "User asked about tea."


@pytest.mark.parametrize("kept", [{"summary": None, "topics": ["tea"]}, {"topics": ["tea"]}, {"summary": ""}])
def test_a_per_user_summary_with_no_text_is_no_summary_and_is_kept_in_metadata(tmp_path: Path, kept: Any) -> None:
    """Memory v2's summaries[user][session] is agno 3's summary only with its text, as memory.summary is: one
    without is neither written as a summary nor counted, and stays in metadata with the whole map."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    told = {"u": {"s2": {"summary": "User asked about tea.", "topics": ["tea"]}}}
    _put(src, "agent", "s1", "u", {"runs": [_run("r1", "q", "a")], "summaries": {"u": {"s1": kept}}})
    _put(src, "agent", "s2", "u", {"runs": [_run("r2", "q", "a")], "summaries": told})
    report = to_agno3(str(src), str(dst))
    assert report.total("summaries") == 1
    read = _agno3_reads(dst, "s1", "s2")
    assert read["s1"]["summary"] is None
    assert read["s1"]["metadata"]["agno_v1"]["summaries"] == {"u": {"s1": kept}}
    assert read["s2"]["summary"] == "User asked about tea."


def test_memory_counts_are_the_rows_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each session of a user holds a copy of the user's memories: one row each, counted once."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    for i in range(3):
        memories = [{"memory": "Alice likes tea"}, {"memory": f"Alice said {i}"}]
        _put(src, "agent", f"s{i}", "alice", {"runs": [_run(f"r{i}", "q", "a")], "memories": memories})
    dry = to_agno3(str(src), str(dst), dry_run=True)
    assert main(["to-agno3", str(src), str(dst), "--workers", "0"]) == 0
    rows = _rows(dst, "SELECT COUNT(*) FROM agno_memories")[0][0]
    assert rows == 4 == dry.total("memories")
    assert "4 memories" in capsys.readouterr().out.splitlines()[-1]
    # A memory table holding the memory the copies were made from: it replaces them, counted once in all.
    conn = sqlite3.connect(src)
    conn.execute(
        "CREATE TABLE memory (id VARCHAR PRIMARY KEY, user_id VARCHAR, memory TEXT, created_at DATETIME,"
        " updated_at DATETIME)"
    )
    conn.execute("INSERT INTO memory VALUES ('m1', 'alice', ?, NULL, NULL)", (str({"memory": "Alice likes tea"}),))
    conn.commit()
    conn.close()
    fresh = tmp_path / "fresh.db"
    report = to_agno3(str(src), str(fresh))
    assert report.total("memories") == _rows(fresh, "SELECT COUNT(*) FROM agno_memories")[0][0] == 4
    assert memory_copy_id("alice", "Alice likes tea") not in {
        r[0] for r in _rows(fresh, "SELECT memory_id FROM agno_memories")
    }


def test_times_that_are_not_whole_seconds_are_kept_as_they_were(tmp_path: Path) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    runs = [
        _run("r-float", "q1", "a1", created_at=1700000123.75),
        _run("r-text", "q2", "a2", created_at="2024-01-02T03:04:05"),
    ]
    memories = [{"memory": "likes tea", "memory_id": "m-float", "last_updated": 1700000456.5}]
    _put(src, "agent", "s1", "u", {"runs": runs, "memories": memories})
    to_agno3(str(src), str(dst))
    (session_created, metadata) = _rows(dst, "SELECT created_at, metadata FROM agno_sessions")[0]
    got = {
        rid: (created, json.loads(data)["metadata"]["agno_v1"].get("created_at"), json.loads(data)["created_at"])
        for rid, created, data in _rows(dst, "SELECT run_id, created_at, run_data FROM agno_runs")
    }
    assert got["r-float"] == (1700000123, 1700000123.75, 1700000123)
    assert got["r-text"] == (session_created, "2024-01-02T03:04:05", session_created)
    assert _rows(dst, "SELECT created_at, updated_at FROM agno_memories") == [(1700000456, 1700000456)]
    assert json.loads(metadata)["agno_v1"]["memory_times"] == {"m-float": 1700000456.5}
    read = _agno3_reads(dst, "s1")
    assert [r[0] for r in read["s1"]["runs"]] == ["r-float", "r-text"]


def test_run_values_agno3_cannot_load_are_kept_in_metadata_and_named_and_agno3_loads_the_rest(
    tmp_path: Path,
) -> None:
    """Values of a shape agno 3's run and Message classes fail on would make it fail the whole session; runs
    sharing an id, and memory's runs or memories of another shape, were dropped. None may be lost or break agno 3."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    odd = [
        _run("r-msgs", "q", "a") | {"messages": "not a list"},
        _run("r-tools", "q", "a") | {"tools": "a tool"},
        _run("r-images", "q", "a") | {"images": "an image"},
        _run("r-content", "q", "a")
        | {"messages": [{"role": "user", "content": {"parts": ["q"]}}, {"role": "assistant", "content": "a"}]},
        _run("r-steps", "q", "a") | {"reasoning_steps": ["think"], "references": ["ref"], "events": ["x"]},
        _run("r-cite", "q", "a") | {"citations": {"urls": "x"}, "additional_input": ["x"]},
        _run("r-calls", "q", "a")
        | {"messages": [{"role": "assistant", "content": "a", "tool_calls": "x", "images": "y"}]},
        _run("r-same", "first", "a1"),
        _run("r-same", "second", "a2"),
        _run("r-same", "first", "a1"),  # the very run again: nothing to keep twice
    ]
    _put(src, "agent", "s1", "u", {"runs": odd})
    _put(src, "agent", "s2", "u", {"runs": "no list", "memories": "no list either"})
    _put(src, "agent", "s3", "u", {"runs": [_run("r3", "q", "a")], "memories": {"u": "one memory as text"}})
    report = to_agno3(str(src), str(dst))
    problems = "\n".join(report.problems)
    for expected in (
        "'r-msgs': messages is not a list",
        "'r-tools': tools is not a list",
        "'r-images': images is not a list",
        "run 8 has the id 'r-same' of an earlier run",
        "'r-content': message 0: content is not what agno 3 reads",
        "'r-steps': reasoning_steps is not a list of objects",
        "'r-steps': events is not a list",
        "'r-cite': citations is not citations",
        "'r-calls': message 0: tool_calls is not",
        "'r-calls': message 0: images is not",
        "'s2': memory.runs is neither a list nor an object",
        "'s2': memory.memories is neither",
    ):
        assert expected in problems, expected
    read = _agno3_reads(dst, "s1", "s2", "s3")  # agno 3 loads each session, every run of it
    runs = {r[0]: r for r in read["s1"]["runs"]}
    assert len(runs) == 9
    assert {"r-msgs", "r-tools", "r-images", "r-content", "r-same", "r-steps", "r-cite", "r-calls"} <= set(runs)
    assert runs["r-content"][2] == [None, "a"]  # the text agno 3 can show; the object kept
    data = {rid: json.loads(d) for rid, d in _rows(dst, "SELECT run_id, run_data FROM agno_runs")}
    kept = {rid: d["metadata"]["agno_v1"] for rid, d in data.items()}
    assert kept["r-msgs"]["unfit"] == {"messages": "not a list"} and kept["r-tools"]["unfit"] == {"tools": "a tool"}
    assert kept["r-content"]["messages"] == {"0": {"content": {"parts": ["q"]}}}
    assert kept["r-steps"]["unfit"] == {"reasoning_steps": ["think"], "references": ["ref"], "events": ["x"]}
    assert kept["r-calls"]["messages"] == {"0": {"tool_calls": "x", "images": "y"}}
    (renamed,) = [rid for rid, k in kept.items() if k.get("run_id") == "r-same"]
    assert [m["content"] for m in data[renamed]["messages"]] == ["second", "a2"]
    metadata = {
        sid: json.loads(m)["agno_v1"] for sid, m in _rows(dst, "SELECT session_id, metadata FROM agno_sessions")
    }
    assert metadata["s2"]["memory"] == {"runs": "no list", "memories": "no list either"}
    assert read["s2"]["runs"] == [] and read["s3"]["runs"][0][0] == "r3"
    assert metadata["s3"]["memories"] == [{"u": "one memory as text"}]


def test_a_dry_run_leaves_no_files_beside_a_wal_target(tmp_path: Path) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    _put(src, "agent", "s1", "u", {"runs": [_run("r1", "q", "a")]})
    to_agno3(str(src), str(dst))
    _put(src, "agent", "s2", "u", {"runs": [_run("r2", "q", "a")]})
    before = sorted(p.name for p in tmp_path.iterdir())
    data = dst.read_bytes()
    assert "agno3.db-wal" not in before and _rows(dst, "PRAGMA journal_mode") == [("wal",)]
    report = to_agno3(str(src), str(dst), dry_run=True)
    assert (report.total("sessions"), report.total("unchanged")) == (1, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and dst.read_bytes() == data


def test_a_memory_table_row_with_no_id_is_written_as_the_dry_run_says(tmp_path: Path) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    _put(src, "agent", "s1", "u", {"runs": [_run("r1", "q", "a")]})
    conn = sqlite3.connect(src)
    conn.execute(
        "CREATE TABLE memory (id TEXT PRIMARY KEY, user_id TEXT, memory TEXT, created_at TEXT, updated_at TEXT)"
    )
    conn.execute("INSERT INTO memory VALUES (NULL, 'u', ?, NULL, NULL)", (str({"memory": "no id"}),))
    conn.execute("INSERT INTO memory VALUES (5, 'u2', ?, NULL, NULL)", (str({"memory": "a number for an id"}),))
    conn.commit()
    conn.close()
    dry = to_agno3(str(src), str(dst), dry_run=True)
    real = to_agno3(str(src), str(dst))
    assert dry.modes["memory_table"].memories == real.modes["memory_table"].memories == 2
    assert dry.problems == real.problems and [p for p in real.problems if "no id" in p]
    rows = set(_rows(dst, "SELECT memory_id, user_id FROM agno_memories"))
    assert rows == {(memory_copy_id("u", "no id"), "u"), ("5", "u2")}


@pytest.mark.parametrize("row", ["alice", None, "no row"])
def test_go_runs_of_another_user_are_left_out_of_the_session(tmp_path: Path, row: str | None) -> None:
    """An owned row takes the Go runs of its owner and of no user (as conversation.belongs reads them); under an
    ownerless row, or none, the user the first runs name owns the session (as conversation.runs_by_user groups
    them), with the ownerless row's runs and those of no user."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    if row != "no row":
        _put(src, "agent", "go-1", row, {"runs": [_run("r0", "alice's 1.x question", "a")]})
    _go_run(src, "go-1", "alice asks", "alice")
    bobs = [_go_run(src, "go-1", "bob's secret", "bob"), _go_run(src, "go-1", "bob again", "bob")]
    _go_run(src, "go-1", "no one asks", None)
    dry = to_agno3(str(src), str(dst), dry_run=True)
    real = to_agno3(str(src), str(dst))
    asked = [r[0] for r in _rows(dst, "SELECT json_extract(run_data, '$.input.input_content') FROM agno_runs")]
    owner = _rows(dst, "SELECT user_id FROM agno_sessions WHERE session_id = 'go-1'")[0][0]
    assert owner == "alice" and "bob's secret" not in asked and "bob again" not in asked
    assert {"alice asks", "no one asks"} <= set(asked) and ("alice's 1.x question" in asked) == (row != "no row")
    for report in (dry, real):
        go = report.modes["go_agent_runs"]
        assert (go.users_left_out, report.total("skipped")) == (1, 0) and report.total("runs") == len(asked)
        (problem,) = [p for p in report.problems if "'bob'" in p]
        assert all(repr(run_id) in problem for run_id in bobs) and "left out" in problem
    read = _agno3_reads(dst, "go-1")
    assert read["go-1"]["user_id"] == "alice" and {r[1] for r in read["go-1"]["runs"]} == {"alice"}
    if row is None:  # agno 3 gives an ownerless session to whoever resumes it first: alice's model sees only hers
        seen = agno3_env.resume("agent", str(dst), "go-1", "alice", "helper", "alice resumes")
        assert "bob" not in json.dumps(seen["calls"]) and "alice asks" in json.dumps(seen["calls"])
    again = to_agno3(str(src), str(dst))
    assert again.total("unchanged") == 1 and again.modes["go_agent_runs"].users_left_out == 1


def _as_a_build_keeping_every_go_run_left_it(tmp_path: Path, *, runs_owned: bool) -> tuple[Path, Path, str, str]:
    """(SRC, DST, alice's and bob's run ids): an ownerless 1.x row with Go runs of alice and bob, migrated, then made what a
    build that kept every Go run under an ownerless row left: no owner, bob's run in the session (its runs
    owned by their users, or by no one)."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    _put(src, "agent", "S", None, {"runs": [_run("r0", "ownerless 1.x question", "a")]})
    alices = _go_run(src, "S", "alice asks", "alice")
    bobs = _go_run(src, "S", "bob's secret", "bob")
    to_agno3(str(src), str(dst))
    conn = sqlite3.connect(dst)
    conn.execute("UPDATE agno_sessions SET user_id = NULL")
    if not runs_owned:
        conn.execute("UPDATE agno_runs SET user_id = NULL")
    conn.execute("CREATE TEMP TABLE bob AS SELECT * FROM agno_runs WHERE run_id = ?", (alices,))
    conn.execute(
        "UPDATE bob SET run_id = ?, run_index = 2, user_id = CASE WHEN ? THEN 'bob' END,"
        " run_data = json_set(run_data, '$.run_id', ?, '$.input.input_content', 'bob''s secret')",
        (bobs, runs_owned, bobs),
    )
    conn.execute("INSERT OR REPLACE INTO agno_runs SELECT * FROM bob")
    conn.commit()
    conn.close()
    return src, dst, alices, bobs


def test_an_ownerless_session_an_earlier_build_wrote_with_several_users_go_runs_is_written_again_as_one_users(
    tmp_path: Path,
) -> None:
    src, dst, alices, bobs = _as_a_build_keeping_every_go_run_left_it(tmp_path, runs_owned=True)
    conn = sqlite3.connect(dst)
    (metadata,) = conn.execute("SELECT metadata FROM agno_sessions WHERE session_id = 'S'").fetchone()
    data = json.loads(metadata)
    data["agno_v1"]["run_ids"] = [*dict.fromkeys([*data["agno_v1"]["run_ids"], bobs])]
    conn.execute("UPDATE agno_sessions SET metadata = ? WHERE session_id = 'S'", (json.dumps(data),))
    conn.commit()
    conn.close()
    dry = to_agno3(str(src), str(dst), dry_run=True)
    real = to_agno3(str(src), str(dst))
    for report in (dry, real):
        assert (report.total("sessions"), report.total("runs_removed"), report.total("unchanged")) == (1, 1, 0)
        assert report.modes["go_agent_runs"].users_left_out == 1
    assert _rows(dst, "SELECT user_id FROM agno_sessions") == [("alice",)]
    assert set(_rows(dst, "SELECT run_id, user_id FROM agno_runs")) == {("r0", "alice"), (alices, "alice")}
    assert to_agno3(str(src), str(dst)).total("unchanged") == 1


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_session_dst_gives_another_owner_than_the_rule_is_written_again(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    """A session whose owner in DST is not the one the owner rule gives now (a build with another rule wrote it)
    is written again though its source is unchanged. One agno 3 gave to the user who resumed it (agno 3 writes
    its metadata anew, stamp and all) is known by its runs' mark: it is left as agno 3 holds it, its state and
    that user's turns untouched, and reported as such, not as agno 3's own."""
    src = tmp_path / "agno1.db"
    _put(src, "agent", "S", "alice", {"runs": [_run("r1", "alice asks", "a")]})
    _put(src, "agent", "N", None, {"runs": [_run("n1", "no one asks", "a")]})
    dst, options = str(tmp_path / "agno3.db"), {}
    if engine == "postgres":  # agno 3's PostgresDb (the resume below) reads schema ai
        dst, options = request.getfixturevalue("pg_server").dsn, {"dst_schema": "ai"}

    def dst_sql(sql: str) -> list[tuple[Any, ...]]:
        if engine == "sqlite":
            with sqlite3.connect(dst) as conn:
                return conn.execute(sql.format(schema="")).fetchall()
        import psycopg

        with psycopg.connect(dst) as pg:
            cur = pg.execute(sql.format(schema="ai."))
            return cur.fetchall() if cur.description else []

    if engine == "postgres":
        for table in reversed(ddl.TABLE_ORDER):
            dst_sql(f"DROP TABLE IF EXISTS {{schema}}{table}")
    to_agno3(str(src), dst, **options)
    # S as a build with another owner rule wrote it; N as agno 3 leaves it when carol resumes it.
    dst_sql("UPDATE {schema}agno_sessions SET user_id = 'bob' WHERE session_id = 'S'")
    agno3_env.resume("agent", dst, "N", "carol", "helper", "carol resumes")
    ((user, metadata),) = dst_sql("SELECT user_id, metadata FROM {schema}agno_sessions WHERE session_id = 'N'")
    assert (user, metadata in (None, "null")) == ("carol", True)  # agno 3 wrote no stamp
    dry = to_agno3(str(src), dst, dry_run=True, **options)
    real = to_agno3(str(src), dst, **options)
    for report in (dry, real):
        assert (report.total("sessions"), report.total("unchanged"), report.total("skipped")) == (1, 0, 1)
        assert not [p for p in report.problems if "agno 3's own" in p]
        assert [p for p in report.problems if "'N'" in p and "gave it to user 'carol', who resumed it" in p]
    owners = dict(dst_sql("SELECT session_id, user_id FROM {schema}agno_sessions"))
    assert owners == {"S": "alice", "N": "carol"}
    ((metadata,),) = dst_sql("SELECT metadata FROM {schema}agno_sessions WHERE session_id = 'N'")
    assert metadata in (None, "null")  # as agno 3 left it
    asked_sql = "SELECT run_data #>> '{{input,input_content}}' FROM {schema}agno_runs WHERE session_id = 'N'"
    if engine == "sqlite":
        asked_sql = "SELECT json_extract(run_data, '$.input.input_content') FROM agno_runs WHERE session_id = 'N'"
    asked = dst_sql(asked_sql)
    assert sorted(a for (a,) in asked) == ["carol resumes", "no one asks"]
    again = to_agno3(str(src), dst, **options).modes["agent"]
    assert (again.unchanged, again.skipped) == (1, 1)


def test_a_session_agno3_gave_another_user_than_the_owner_rules_is_left_as_agno3_holds_it(
    tmp_path: Path,
) -> None:
    """agno 3 writes the metadata of an ownerless session anew when it gives it to the user who resumes it (carol);
    its runs still show a migration wrote it. The owner rules give it to alice: written again as hers, alice would
    be shown carol's turns, and agno 3 would give it back to carol at her next turn. So it is left as agno 3
    holds it, on every rerun, and the report says so (not that agno 3 made it)."""
    src, dst, _, _ = _as_a_build_keeping_every_go_run_left_it(tmp_path, runs_owned=False)
    agno3_env.resume("agent", str(dst), "S", "carol", "helper", "carol's turn")
    assert _rows(dst, "SELECT user_id, metadata FROM agno_sessions") == [("carol", "null")]
    held = _rows(dst, "SELECT * FROM agno_runs ORDER BY run_id")
    for report in (
        to_agno3(str(src), str(dst), dry_run=True),
        to_agno3(str(src), str(dst)),
        to_agno3(str(src), str(dst)),
    ):
        assert (report.total("sessions"), report.total("runs_removed"), report.total("skipped")) == (0, 0, 1)
        assert not [p for p in report.problems if "agno 3's own" in p]
        assert [p for p in report.problems if "gave it to user 'carol'" in p and "give it to user 'alice'" in p]
    assert _rows(dst, "SELECT user_id, metadata FROM agno_sessions") == [("carol", "null")]
    assert _rows(dst, "SELECT * FROM agno_runs ORDER BY run_id") == held


def test_the_cli_counts_the_sessions_not_migrated_apart_from_the_go_runs_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    agno3_env.run_code(_AGNO3_WRITES, str(dst), "G")  # agno 3's own session under the id of a Go-only session
    _go_run(src, "G", "no one asks", None)
    _put(src, "agent", "S", "alice", {"runs": [_run("r1", "alice asks", "a")]})
    _go_run(src, "S", "bob's secret", "bob")
    _go_run(src, "S", "carol's secret", "carol")
    dry = to_agno3(str(src), str(dst), dry_run=True)
    go = dry.modes["go_agent_runs"]
    assert (go.skipped, go.users_left_out, dry.modes["agent"].sessions) == (1, 2, 1)
    assert main(["to-agno3", str(src), str(dst)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "1 sessions not migrated (each named above)" in lines
    assert "Go runs of another user left out: 2 (one per session and user, each named above)" in lines
    assert main(["to-agno3", "--json", str(src), str(dst)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["modes"]["go_agent_runs"]["users_left_out"] == 2 and report["modes"]["agent"]["unchanged"] == 1


@pytest.mark.parametrize("other", ["1.x session", "go runs"])
def test_a_session_an_earlier_build_merged_another_users_runs_into_is_written_again_without_them(
    tmp_path: Path, other: str
) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    _put(src, "team", "S", "alice", {"runs": [_run("t1", "alice asks the team", "ta", team_id="crew")]})
    if other == "1.x session":
        _put(src, "agent", "S", "bob", {"runs": [_run("b1", "bob's private question", "ba")]})
        merged = "b1"
    else:
        merged = _go_run(src, "S", "bob's private question", "bob")
    to_agno3(str(src), str(dst))
    # What a build that merged owners left: bob's run in alice's session, its metadata naming it.
    conn = sqlite3.connect(dst)
    conn.execute("CREATE TEMP TABLE bob AS SELECT * FROM agno_runs WHERE run_id = 't1'")
    conn.execute(
        "UPDATE bob SET run_id = ?, run_index = 1,"
        " run_data = json_set(run_data, '$.run_id', ?, '$.input.input_content', 'bob''s private question')",
        (merged, merged),
    )
    conn.execute("INSERT INTO agno_runs SELECT * FROM bob")
    (metadata,) = conn.execute("SELECT metadata FROM agno_sessions WHERE session_id = 'S'").fetchone()
    data = json.loads(metadata)
    data["agno_v1"]["run_ids"].append(merged)
    conn.execute("UPDATE agno_sessions SET metadata = ? WHERE session_id = 'S'", (json.dumps(data),))
    conn.commit()
    conn.close()
    dry = to_agno3(str(src), str(dst), dry_run=True)
    real = to_agno3(str(src), str(dst))
    left_out = (1, 0) if other == "1.x session" else (0, 1)  # a 1.x session skipped, or one user's Go runs
    for report in (dry, real):
        assert (report.total("sessions"), report.total("runs_removed")) == (1, 1)
        assert (report.total("skipped"), report.total("users_left_out")) == left_out
    assert _rows(dst, "SELECT session_id, run_id, user_id FROM agno_runs") == [("S", "t1", "alice")]
    read = _agno3_reads(dst, "S")
    assert [r[2] for r in read["S"]["runs"]] == [["alice asks the team", "ta"]]
    assert to_agno3(str(src), str(dst)).total("unchanged") == 1


def test_runs_removed_counts_the_runs_deleted_of_a_session_with_a_run_under_its_own_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    shared = _run("R", "q", "a")
    _put(src, "agent", "A", "u1", {"runs": [shared]})
    _put(src, "agent", "B", "u1", {"runs": [shared]})
    to_agno3(str(src), str(dst))
    before = set(_rows(dst, "SELECT session_id, run_id FROM agno_runs"))
    # Both go on in 1.x: the one holding R under an id of its own keeps it, and deletes nothing.
    _put(src, "agent", "A", "u1", {"runs": [shared, _run("R2", "q2", "a2")]})
    _put(src, "agent", "B", "u1", {"runs": [shared, _run("R3", "q3", "a3")]})
    dry = to_agno3(str(src), str(dst), dry_run=True)
    assert main(["to-agno3", str(src), str(dst)]) == 0
    after = set(_rows(dst, "SELECT session_id, run_id FROM agno_runs"))
    assert before <= after and len(after) == 4 and dry.total("runs_removed") == 0
    assert "deleted" not in capsys.readouterr().out
    # Both start again without R: each deletes its copy, counted once.
    _put(src, "agent", "A", "u1", {"runs": [_run("R2", "q2", "a2")]})
    _put(src, "agent", "B", "u1", {"runs": [_run("R3", "q3", "a3")]})
    dry = to_agno3(str(src), str(dst), dry_run=True)
    real = to_agno3(str(src), str(dst))
    assert dry.total("runs_removed") == real.total("runs_removed") == 2
    assert set(_rows(dst, "SELECT session_id, run_id FROM agno_runs")) == {("A", "R2"), ("B", "R3")}


@pytest.mark.parametrize("batch_size", [1, 200])
def test_a_run_id_a_session_deletes_is_free_for_a_later_session_in_dry_and_real_runs(
    tmp_path: Path, batch_size: int
) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    # "s-b" comes first in the plan: made first, and first of the two when made within the same second.
    _put(src, "agent", "s-b", "u1", {"runs": [_run("R", "q", "a")]})
    to_agno3(str(src), str(dst))
    _put(src, "agent", "s-b", "u1", {"runs": [_run("R3", "q3", "a3")]})  # started again: R is gone
    _put(src, "agent", "s-a", "u1", {"runs": [_run("R", "q", "a")]})  # another session holds R now
    dry = to_agno3(str(src), str(dst), dry_run=True, batch_size=batch_size)
    real = to_agno3(str(src), str(dst), batch_size=batch_size)
    assert dry.problems == real.problems == []
    assert _report(dry) == _report(real)
    assert (real.total("sessions"), real.total("runs"), real.total("runs_removed")) == (2, 2, 1)
    assert set(_rows(dst, "SELECT session_id, run_id FROM agno_runs")) == {("s-b", "R3"), ("s-a", "R")}


def test_a_memory_table_row_a_session_wrote_a_newer_copy_of_is_counted_alike_by_a_dry_run(tmp_path: Path) -> None:
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    _put(src, "agent", "s1", "u", {"runs": [_run("r1", "q", "a")], "memories": [{"memory": "likes tea"}]})
    conn = sqlite3.connect(src)
    conn.execute(
        "CREATE TABLE memory (id TEXT PRIMARY KEY, user_id TEXT, memory TEXT, created_at TEXT, updated_at TEXT)"
    )
    # No id: the id of the sessions' copy, which is newer (the session's time).
    conn.execute("INSERT INTO memory VALUES (NULL, 'u', ?, 1600000000, 1600000000)", (str({"memory": "likes tea"}),))
    conn.commit()
    conn.close()
    dry = to_agno3(str(src), str(dst), dry_run=True)
    real = to_agno3(str(src), str(dst))
    assert _report(dry) == _report(real)
    assert real.modes["memory_table"].unchanged == 1 and real.total("memories") == 1
    assert _rows(dst, "SELECT user_id, memory FROM agno_memories") == [("u", '"likes tea"')]


_AGNO3_MEDIA = (
    "import json, sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.db.base import SessionType\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "out = {}\n"
    "for s in db.get_sessions(session_type=SessionType.AGENT):\n"
    "    (m,) = [m for r in s.runs for m in r.messages if m.role == 'user']\n"
    "    media = [*(m.images or []), *(m.audio or []), *(m.videos or [])]\n"
    "    out[s.session_id] = [x.get_content_bytes().decode('latin-1') if x.content else x.url for x in media]\n"
    "print(json.dumps(out))\n"
)


def test_media_agno_1_8_4_stored_is_shown_by_agno3_as_it_was_given(tmp_path: Path) -> None:
    """agno 1.8.4 stores media content as base64 of its zlib-compressed bytes (agno 3: of the bytes), and an
    Audio or Video given by URL as an empty object, which agno 3 cannot make and which failed every listing of
    the target's agent sessions: it is kept in metadata and named."""
    from agno.agent import Agent
    from agno.media import Audio, Image, Video
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    from devkit.fake_model import FakeModel

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    storage = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(src), mode="agent")
    given: dict[str, dict[str, Any]] = {
        "image-url": {"images": [Image(url="https://example.com/cat.png")]},
        "image-bytes": {"images": [Image(content=b"\x89PNG fake", format="png")]},
        "audio-bytes": {"audio": [Audio(content=b"ID3 fake", format="mp3")]},
        "audio-url": {"audio": [Audio(url="https://example.com/a.mp3")]},
        "video-url": {"videos": [Video(url="https://example.com/v.mp4")]},
        "audio-both": {"audio": [Audio(content=b"ID3 call", format="mp3"), Audio(url="https://example.com/b.mp3")]},
    }
    try:
        for sid, media in given.items():
            agent = Agent(
                agent_id="t",
                model=FakeModel(prefix="a"),
                storage=storage,
                session_id=sid,
                user_id="u",
                telemetry=False,
                monitoring=False,
            )
            agent.run("hello", **media)
    finally:
        storage.db_engine.dispose()
    report = to_agno3(str(src), str(dst))
    shown = json.loads(agno3_env.run_code(_AGNO3_MEDIA, str(dst)).strip().splitlines()[-1])
    assert shown == {
        "image-url": ["https://example.com/cat.png"],
        "image-bytes": ["\x89PNG fake"],
        "audio-bytes": ["ID3 fake"],
        "audio-url": [],
        "video-url": [],
        "audio-both": ["ID3 call"],  # the one agno 3 can make; the other kept aside
    }
    for sid, name in (("audio-url", "audio"), ("video-url", "videos"), ("audio-both", "audio")):
        assert [p for p in report.problems if f"'{sid}'" in p and f"{name} is not what agno 3 reads" in p], sid


def test_a_session_whose_source_lost_its_owner_keeps_the_owner_dst_gives_it_for_its_runs_too(tmp_path: Path) -> None:
    """A session migrated as bob's whose source then names no owner keeps bob in DST (the owner rules give it
    none); its runs written again are bob's too, not no one's: agno 3 reads a user's runs by their user_id."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    _put(src, "agent", "S", "bob", {"runs": [_run("r1", "bob asks", "a")]})
    to_agno3(str(src), str(dst))
    _put(src, "agent", "S", None, {"runs": [_run("r1", "bob asks", "a"), _run("r2", "and again", "b")]})
    report = to_agno3(str(src), str(dst))
    assert report.modes["agent"].sessions == 1
    assert _rows(dst, "SELECT user_id FROM agno_sessions") == [("bob",)]
    runs = _rows(dst, "SELECT run_id, user_id, json_extract(run_data, '$.user_id') FROM agno_runs ORDER BY run_index")
    assert runs == [("r1", "bob", "bob"), ("r2", "bob", "bob")]
    read = _agno3_reads(dst, "S")
    assert read["S"]["user_id"] == "bob" and [r[:2] for r in read["S"]["runs"]] == [["r1", "bob"], ["r2", "bob"]]
