"""Several processes sharing one SQLite file."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, SqliteStorage

pytestmark = pytest.mark.slow

WRITERS = 4
PER_WRITER = 300


def _write_many(path: str, writer: int, start: Any, errors: Any) -> None:
    store = SqliteStorage("s", db_file=path)
    start.wait()
    try:
        for i in range(PER_WRITER):
            store.upsert(
                AgentSession(
                    session_id=f"w{writer}-{i}",
                    user_id=f"user{writer}",
                    agent_id="a",
                    memory={"writer": writer, "i": i, "text": "x" * 2000},
                )
            )
    except BaseException as exc:  # reported to the parent
        errors.put(f"writer {writer}: {type(exc).__name__}: {exc}")
    finally:
        store.close()


def test_four_processes_upsert_into_one_file_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    SqliteStorage("s", db_file=path).create()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WRITERS)
    errors = ctx.Queue()
    procs = [ctx.Process(target=_write_many, args=(path, w, start, errors)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    reported = []
    while not errors.empty():
        reported.append(errors.get())
    assert reported == []
    store = SqliteStorage("s", db_file=path)
    ids = set(store.get_all_session_ids())
    assert ids == {f"w{w}-{i}" for w in range(WRITERS) for i in range(PER_WRITER)}
    for w in range(WRITERS):
        sessions = store.list(user_id=f"user{w}")
        assert len(sessions) == PER_WRITER
        assert all(s.memory is not None and s.memory["writer"] == w for s in sessions)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _payload(generation: int) -> dict[str, Any]:
    body = f"generation {generation} " * 5000  # ~100 KB, spread over many pages
    return {"generation": generation, "body": body, "sha": hashlib.sha256(body.encode()).hexdigest()}


def _rewrite(path: str, rounds: int, ready: Any) -> None:
    store = SqliteStorage("s", db_file=path)
    ready.wait()
    for g in range(1, rounds + 1):
        store.upsert(
            AgentSession(
                session_id="hot",
                user_id="u",
                agent_id="a",
                memory=_payload(g),
                session_data={"generation": g},
                extra_data={"generation": g},
            )
        )
    store.close()


def test_a_reader_never_sees_a_half_written_session(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SqliteStorage("s", db_file=path)
    store.upsert(
        AgentSession(
            session_id="hot",
            user_id="u",
            agent_id="a",
            memory=_payload(0),
            session_data={"generation": 0},
            extra_data={"generation": 0},
        )
    )
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(2)
    writer = ctx.Process(target=_rewrite, args=(path, 150, ready))
    writer.start()
    ready.wait()
    seen = set()
    reads = 0
    while writer.is_alive() or reads < 50:
        got = store.read("hot")
        assert got is not None and got.memory is not None
        memory = got.memory
        assert hashlib.sha256(memory["body"].encode()).hexdigest() == memory["sha"], "torn JSON value"
        generation = memory["generation"]
        assert got.session_data == {"generation": generation}, "columns from different writes"
        assert got.extra_data == {"generation": generation}
        seen.add(generation)
        reads += 1
    writer.join(60)
    assert writer.exitcode == 0
    assert len(seen) > 1, "the reader should have overlapped with the writer"
