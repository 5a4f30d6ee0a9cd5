"""sqlite_bulk.Checkpointer: checkpoints a bulk load's WAL from its own thread, and says when it cannot."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from agno_storage.backends import sqlite_bulk
from tests.support import HANG_S, refuse_checkpoint_thread


def _writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only the thread checkpoints here
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    return conn


def _wait(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


def test_the_thread_copies_committed_pages_into_the_file_while_the_writer_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "bulk.db"
    conn = _writer(db)
    checkpointer = sqlite_bulk.Checkpointer(db, interval=0.01)
    checkpointer.start()
    try:
        size = os.path.getsize(db)
        # The thread takes the WAL as it finds it when it starts (a WAL written before then is not its work),
        # which a loaded machine may delay past many commits: the writer goes on until the thread has worked.
        batches, deadline = 0, time.monotonic() + 20.0
        while batches < 20 or not (os.path.getsize(db) > size + 2_000_000 and checkpointer.passes > 0):
            if time.monotonic() > deadline:
                break
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t VALUES (?, ?)", ((batches * 100 + i, "x" * 2000) for i in range(100)))
            conn.execute("COMMIT")
            batches += 1
            if batches >= 20:
                time.sleep(0.02)
        # Nothing checkpoints on the writer's connection; only the thread can have grown the file.
        assert os.path.getsize(db) > size + 2_000_000
        assert checkpointer.passes > 0
    finally:
        checkpointer.stop()
        checkpointer.stop()  # twice is fine
    assert not checkpointer.failed
    reader = sqlite3.connect(db)
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (batches * 100,)
    assert reader.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    reader.close()
    conn.close()


def test_an_idle_wal_is_not_checkpointed_again_and_again(tmp_path: Path) -> None:
    db = tmp_path / "idle.db"
    conn = _writer(db)
    conn.execute("INSERT INTO t VALUES (1, 'a')")
    checkpointer = sqlite_bulk.Checkpointer(db, interval=0.01)
    # Counted, not timed: the thread's looks at the WAL after its first, however slowly a loaded machine runs it.
    stamp, looks, looked = checkpointer._wal_stamp, [], threading.Event()

    def counted() -> tuple[int, int] | None:
        looks.append(1)
        if len(looks) > 10:
            looked.set()
        return stamp()

    checkpointer._wal_stamp = counted  # type: ignore[method-assign]
    checkpointer.start()
    assert looked.wait(HANG_S), "the thread did not look at the WAL ten times"
    checkpointer.stop()
    assert checkpointer.passes == 0  # the WAL was written before the thread began and not since
    conn.close()


def test_a_database_it_cannot_checkpoint_stops_the_thread_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "not.db"
    db.write_bytes(b"not a database, " * 512)
    Path(sqlite_bulk.wal_path(db)).write_bytes(b"x")  # so that the thread has a WAL to look at
    checkpointer = sqlite_bulk.Checkpointer(db, interval=0.01)
    checkpointer.start()
    _wait(lambda: checkpointer.failed)
    checkpointer.stop()
    assert isinstance(checkpointer.error, sqlite3.DatabaseError)
    # The load goes on without the thread; the log says why it went slower.
    [record] = [r for r in caplog.records if r.name == "agno_storage"]
    assert record.levelname == "WARNING" and str(db) in record.getMessage()
    checkpointer.stop()  # again: nothing more is logged
    assert len([r for r in caplog.records if r.name == "agno_storage"]) == 1


def test_a_file_deleted_before_the_thread_opens_it_is_not_made_again(tmp_path: Path) -> None:
    """The thread opens the file by its path after the load did: a file deleted meanwhile stays deleted (an
    empty database made there would be what the next connection to the path opens)."""
    db = tmp_path / "gone.db"
    checkpointer = sqlite_bulk.Checkpointer(db, interval=0.01)
    checkpointer.start()
    _wait(lambda: checkpointer.failed)
    checkpointer.stop()
    assert isinstance(checkpointer.error, sqlite3.OperationalError)
    assert not db.exists()


def test_a_path_that_begins_with_two_slashes_is_checkpointed(tmp_path: Path) -> None:
    """POSIX keeps a path's two leading slashes (``sqlite://///tmp/x.db`` names ``//tmp/x.db``), which a
    ``file:`` URI reads as the start of a host name: the thread opens the file all the same."""
    db = tmp_path / "slashes.db"
    conn = _writer(db)
    checkpointer = sqlite_bulk.Checkpointer("/" + str(db), interval=0.01)
    checkpointer.start()
    try:
        deadline, k = time.monotonic() + 20.0, 0
        while checkpointer.passes == 0 and not checkpointer.failed and time.monotonic() < deadline:
            conn.execute("INSERT INTO t VALUES (?, 'x')", (k,))
            k += 1
            time.sleep(0.005)
    finally:
        checkpointer.stop()
        conn.close()
    assert checkpointer.error is None
    assert checkpointer.passes > 0


def test_a_thread_that_cannot_start_is_logged_and_the_load_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """At the process's thread limit: start() raises nothing (import, copy and to_agno3 failed there, an import
    leaving its store at NORMAL), says why in a warning, and stop() has nothing to join."""
    db = tmp_path / "t.db"
    conn = _writer(db)
    refuse_checkpoint_thread(monkeypatch)
    checkpointer = sqlite_bulk.Checkpointer(db, interval=0.01)
    checkpointer.start()
    assert checkpointer.failed and isinstance(checkpointer.error, RuntimeError)
    assert "can't start new thread" in caplog.text
    checkpointer.stop()
    assert all(t.name != "agno-storage-checkpointer" for t in threading.enumerate())
    conn.close()


def test_a_relative_path_names_the_same_file_after_a_chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path is taken as it names a file when the checkpointer is made: a chdir before its thread opens it
    sends the thread nowhere else (it looked the path up in the new folder and failed there)."""
    db = tmp_path / "bulk.db"
    conn = _writer(db)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    checkpointer = sqlite_bulk.Checkpointer("bulk.db", interval=0.01)
    monkeypatch.chdir(elsewhere)
    checkpointer.start()
    try:
        # The thread works on what is written after it looked at the WAL first: written until it has.
        deadline, k = time.monotonic() + 20.0, 0
        while checkpointer.passes == 0 and not checkpointer.failed and time.monotonic() < deadline:
            conn.execute("INSERT INTO t VALUES (?, ?)", (k, "x" * 2000))
            k += 1
            time.sleep(0.005)
    finally:
        checkpointer.stop()
    assert checkpointer.error is None and checkpointer.passes > 0
    assert list(elsewhere.iterdir()) == []
    conn.close()


def test_a_connect_that_raises_something_else_is_kept_and_logged_not_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever opening the file raises (not only sqlite3's errors: a MemoryError, say) is kept in ``error``
    and logged by stop(), as a failed checkpoint is: it never ends the thread with a traceback on stderr."""
    db = tmp_path / "t.db"
    conn = _writer(db)
    uncaught: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: uncaught.append(args.exc_value))

    def refused(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise MemoryError("no memory for a connection")

    monkeypatch.setattr(sqlite_bulk.sqlite3, "connect", refused)
    checkpointer = sqlite_bulk.Checkpointer(db, interval=0.01)
    checkpointer.start()
    _wait(lambda: checkpointer.failed)
    checkpointer.stop()
    conn.close()
    assert isinstance(checkpointer.error, MemoryError)
    assert uncaught == []
    assert "no memory for a connection" in caplog.text
