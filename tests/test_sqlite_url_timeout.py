"""A SQLite URL's ``?timeout=SECONDS`` is how long serve's source, backup, to_agno3 and prune's hot-journal rollback
and VACUUM wait for another connection's lock, as it is the store's and the other commands' (tests/test_cli.py).

What the URL set is read back from SQLite (each connection's ``PRAGMA busy_timeout``), not timed: a loaded
machine cannot fail these tests, and one that ignores the option (sqlite3's 5 s, the store's 10 s, to_agno3's
writer's 30 s) or waits with no bound at all still does (the latter once :data:`tests.support.HANG_S` passed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agno_storage import AgentSession, SqliteStorage
from agno_storage.agno3 import to_agno3
from agno_storage.cli import main
from agno_storage.errors import BusyError
from agno_storage.ops.backup import backup
from agno_storage.ops.prune import vacuum
from agno_storage.web.app import create_app
from agno_storage.web.limits import Limits
from agno_storage.web.run import serving
from agno_storage.web.source import open_source
from tests.support import BusyTimeouts, finishes, kill_writer_midway
from tests.web_client import get

TABLE = "agent_sessions"


def _rollback_journal_file(path: Path) -> Path:
    """A sessions file in rollback-journal mode, as agno 1.x's own store leaves it: its writer locks readers out."""
    with SqliteStorage(TABLE, db_file=path) as store:
        store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory={"runs": []}))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    return path


@contextmanager
def _locked(path: Path, how: str = "EXCLUSIVE") -> Iterator[None]:
    # An explicit factory: the holder's own connection is not one of those BusyTimeouts counts.
    holder = sqlite3.connect(path, isolation_level=None, factory=sqlite3.Connection)
    holder.execute(f"BEGIN {how}")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def _gives_up(call: Callable[[], object]) -> None:
    """``call`` raises BusyError, rather than waiting for the lock with no end."""
    with pytest.raises(BusyError):
        finishes(call)


def test_serve_reads_wait_the_urls_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _rollback_journal_file(tmp_path / "s.db")
    waits = BusyTimeouts(monkeypatch)
    source = open_source(f"sqlite:///{db}?timeout=0.1")
    try:
        with _locked(db):
            _gives_up(source.ping)
        assert set(waits.of(db)) == {100}
    finally:
        source.close()


def test_serve_waits_for_a_lock_no_longer_than_its_request_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _rollback_journal_file(tmp_path / "s.db")
    waits = BusyTimeouts(monkeypatch)
    source = open_source(f"sqlite:///{db}?timeout=30", statement_timeout=0.2)
    try:
        source.ping()
        # The URL's 30 s cut to the request's 0.2: a request does not wait past its deadline for the lock.
        assert set(waits.of(db)) == {200}
        with serving(create_app(source, limits=Limits(request_timeout=0.2))) as base, _locked(db):
            status, body = finishes(lambda: get(base, "/api/v1/sessions", table=TABLE))
            assert (status, body["error"]["code"]) == (503, "too_slow")
        assert set(waits.of(db)) == {200}  # the server's connections too
    finally:
        source.close()


def test_serve_answers_busy_while_a_writer_locks_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _rollback_journal_file(tmp_path / "s.db")
    waits = BusyTimeouts(monkeypatch)
    source = open_source(f"sqlite:///{db}?timeout=0.1")
    try:
        with serving(create_app(source)) as base, _locked(db):
            _gives_up(source.tables)
            status, body = finishes(lambda: get(base, "/api/v1/sessions", table=TABLE))
            assert (status, body["error"]["code"]) == (503, "busy")
        assert set(waits.of(db)) == {100}
    finally:
        source.close()


def test_backup_waits_the_urls_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _rollback_journal_file(tmp_path / "s.db")
    waits = BusyTimeouts(monkeypatch)
    with _locked(db):
        _gives_up(lambda: backup(f"sqlite:///{db}?timeout=0.1", tmp_path / "copy.db"))
    assert waits.of(db) == [100]
    assert not (tmp_path / "copy.db").exists()


def test_to_agno3_waits_the_src_and_dst_urls_timeouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _rollback_journal_file(tmp_path / "src.db")
    dst = tmp_path / "dst.db"
    waits = BusyTimeouts(monkeypatch)
    with _locked(src):
        _gives_up(lambda: to_agno3(f"sqlite:///{src}?timeout=0.1", str(dst), workers=0))
    assert set(waits.of(src)) == {100}
    assert not dst.exists()
    to_agno3(str(src), str(dst), workers=0)
    waits.clear()
    with _locked(dst, "IMMEDIATE"):  # another writer of DST (agno 3 itself, say)
        _gives_up(lambda: to_agno3(str(src), f"sqlite:///{dst}?timeout=0.1", workers=0, rewrite=True))
    assert set(waits.of(dst)) == {100}


def test_prunes_vacuum_waits_the_urls_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``prune --vacuum`` on a file another connection holds locked gives up after the URL's wait, as the deletes
    before it do (it waited 30 s whatever the URL said), and says so as they do: ``BusyError``."""
    db = _rollback_journal_file(tmp_path / "s.db")
    waits = BusyTimeouts(monkeypatch)
    with _locked(db), pytest.raises(BusyError, match=r"VACUUM .* failed \(the deletes stand\)"):
        finishes(lambda: vacuum(f"sqlite:///{db}?timeout=0.1", TABLE))
    assert waits.of(db) == [100]


def _hot_journal_file(path: Path) -> Path:
    """A rollback-journal sessions file whose writer was killed in the middle of a transaction, its changes
    spilled into the file (only the journal can undo them)."""
    with SqliteStorage(TABLE, db_file=path) as store:
        store.upsert_many(
            AgentSession(session_id=f"s{i}", agent_id="a", memory={"runs": ["x" * 4000]}) for i in range(50)
        )
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    kill_writer_midway(path)
    return path


def test_prunes_rollback_of_a_hot_journal_waits_the_urls_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prune`` rolls a killed writer's hot journal back before it deletes: that read-write open, and the read that
    finds the journal, wait the URL's ``?timeout=`` for another connection's lock, as the deletes after them do
    (they waited 30 s and 5 s whatever the URL said)."""
    db = _hot_journal_file(tmp_path / "s.db")
    waits = BusyTimeouts(monkeypatch)
    assert main(["prune", f"sqlite:///{db}?timeout=0.1", "--table", TABLE, "--older-than", "1d"]) == 0
    assert not Path(f"{db}-journal").exists()  # rolled back
    assert waits.of(db) and set(waits.of(db)) == {100}
