"""doctor, prune, backup and the read-only guarantee of tables / export / doctor, on real writers' files."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, SqliteStorage
from agno_storage.cli import main
from agno_storage.errors import ConnectionLostError
from agno_storage.ops.backup import backup
from agno_storage.ops.db import open_database
from agno_storage.ops.doctor import PROBLEM, diagnose
from agno_storage.ops.export import export_table
from agno_storage.ops.prune import prune, vacuum
from agno_storage.ops.tables import list_tables

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("name", "table"), [("agno_agent.db", "agent_sessions"), ("go_agent_conversation.db", "agent_sessions")]
)
def test_inspection_leaves_bytes_and_journal_mode_as_they_were(
    tmp_path: Path, name: str, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    before, mode = digest(path), journal_mode(path)
    assert mode == "delete"  # a rollback-journal file: opening it as the store does would switch it to WAL
    for argv in (["tables", str(path)], ["doctor", str(path)], ["export", str(path), "--table", table]):
        assert main(argv) == 0
    assert main(["export", str(path), "--table", "missing"]) == 1
    capsys.readouterr()
    assert (digest(path), journal_mode(path)) == (before, mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_read_only_folder_can_be_inspected(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(FIXTURES / "go_agent.db", folder / "go.db")
    (folder / "go.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        with open_database(str(folder / "go.db")) as db:
            assert [t.rows for t in list_tables(db).sessions] == [17]
            export_table(db, "agent_sessions", io.BytesIO())
    finally:
        folder.chmod(0o755)


def test_doctor_finds_each_kind_of_damage(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    with open_database(str(path), lenient_text=True) as db:
        assert diagnose(db, str(path)).ok
    conn = sqlite3.connect(path)
    conn.execute("UPDATE agent_sessions SET memory = '{not json' WHERE session_id = 'agent-existing'")
    conn.execute(
        "INSERT INTO agent_sessions (session_id, user_id, agent_id, agent_data, created_at) VALUES "
        "('s-list', 'u', 'a', '[1, 2]', 'yesterday')"
    )
    conn.execute(
        "INSERT INTO agent_sessions (session_id, user_id, agent_id, session_data) VALUES "
        "('s-bytes', 'u', 'a', CAST(x'ff00' AS TEXT))"
    )
    conn.execute("INSERT INTO agent_runs (id, session_id) VALUES ('r-x', 'nobody')")
    conn.commit()
    conn.close()
    with open_database(str(path), lenient_text=True) as db:
        report = diagnose(db, str(path))
    problems = {(f.session_id, f.column) for f in report.findings if f.severity == PROBLEM}
    assert problems == {
        ("agent-existing", "memory"),
        ("s-list", "agent_data"),
        ("s-list", "created_at"),
        ("s-bytes", "session_data"),
    }
    assert not report.ok
    orphans = [f for f in report.findings if f.kind == "orphaned_runs"]
    assert len(orphans) == 1 and "3 of 5" in orphans[0].message
    assert main(["doctor", str(path)]) == 3


def test_doctor_calls_an_old_table_a_problem() -> None:
    with open_database(str(FIXTURES / "agno_agent_pre12.db")) as db:
        report = diagnose(db)
    assert [f.kind for f in report.findings if f.severity == PROBLEM] == ["old_schema"]


def test_prune_removes_exactly_the_old_sessions_and_their_runs(tmp_path: Path) -> None:
    path = tmp_path / "conv.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    store = SqliteStorage("agent_sessions", db_file=path)
    now = 1_800_000_000
    for sid, user in (("old-ada", "ada"), ("old-bob", "bob"), ("new-ada", "ada"), ("no-update", "ada")):
        store.upsert(AgentSession(session_id=sid, user_id=user, agent_id="a"))
    store.close()
    conn = sqlite3.connect(path)
    stamps = {
        "old-ada": (1, now - 40 * 86400),
        "old-bob": (1, now - 31 * 86400),
        "new-ada": (1, now - 86400),
        "no-update": (now - 50 * 86400, None),
        "agent-existing": (now, now),
    }
    for sid, (created, updated) in stamps.items():
        conn.execute(
            "UPDATE agent_sessions SET created_at = ?, updated_at = ? WHERE session_id = ?", (created, updated, sid)
        )
    conn.execute(
        "INSERT INTO agent_runs (id, session_id) VALUES ('r1', 'old-ada'), ('r2', 'old-ada'), ('r3', 'new-ada')"
    )
    conn.commit()
    conn.close()
    url = str(path)
    with open_database(url) as db:
        dry = prune(db, url, "agent_sessions", 30 * 86400, dry_run=True, now=now)
        assert dry.session_ids == ("no-update", "old-ada", "old-bob") and dry.run_sessions == ("agent-new",)
        assert dry.runs == 2 + 2  # old-ada's, and the Go Agent's two runs of agent-new (no session row)
        only_ada = prune(db, url, "agent_sessions", 30 * 86400, user="ada", now=now)
    assert only_ada.session_ids == ("no-update", "old-ada") and only_ada.runs == 2
    assert only_ada.run_sessions == ()  # agent-new's runs are user-1's
    conn = sqlite3.connect(path)
    assert sorted(r[0] for r in conn.execute("SELECT session_id FROM agent_sessions")) == [
        "agent-existing",
        "new-ada",
        "old-bob",
    ]
    assert sorted(r[0] for r in conn.execute("SELECT id FROM agent_runs WHERE id LIKE 'r%'")) == ["r3"]
    # The Go Agent's own runs of a session with no row are another user's: left alone.
    assert conn.execute("SELECT COUNT(*) FROM agent_runs WHERE session_id = 'agent-new'").fetchone()[0] == 2
    conn.close()


def _writer(path: str, prefix: str, stop: Any) -> None:
    """Write batches of 20 sessions until ``stop`` is set (two minutes at most, should the test die)."""
    store = SqliteStorage("agent_sessions", db_file=path)
    end = time.monotonic() + 120
    i = 0
    while not stop.is_set() and time.monotonic() < end:
        store.upsert_many(
            AgentSession(session_id=f"{prefix}-{i}-{j}", user_id=prefix, agent_id="a", memory={"pad": "x" * 500})
            for j in range(20)
        )
        i += 1
    store.close()


@pytest.mark.slow
def test_backup_while_three_processes_write(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    SqliteStorage("agent_sessions", db_file=path).create()
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    writers = [ctx.Process(target=_writer, args=(str(path), f"w{n}", stop)) for n in range(3)]
    for w in writers:
        w.start()
    try:
        committed: set[str] = set()
        deadline = time.monotonic() + 60
        while len({sid.split("-")[0] for sid in committed}) < 3:  # until all three write
            assert all(w.is_alive() for w in writers), [w.exitcode for w in writers]
            assert time.monotonic() < deadline, f"not all three writers committed: {sorted(committed)[:5]}"
            time.sleep(0.2)
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            committed = {r[0] for r in conn.execute("SELECT session_id FROM agent_sessions")}
            conn.close()
        summary = backup(str(path), tmp_path / "snap.db")
        # Still writing when the backup ended: they stop only when told to.
        assert all(w.is_alive() for w in writers), [w.exitcode for w in writers]
    finally:
        stop.set()
        for w in writers:
            w.join(30)
    assert [w.exitcode for w in writers] == [0, 0, 0]
    snap = sqlite3.connect(tmp_path / "snap.db")
    assert snap.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    held = {r[0] for r in snap.execute("SELECT session_id FROM agent_sessions")}
    snap.close()
    assert committed <= held
    assert summary.pages > 0
    with pytest.raises(Exception, match="exists"):
        backup(str(path), tmp_path / "snap.db")


# --- what the file system refuses ---------------------------------------------------


def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=path)
    store.upsert_many([AgentSession(session_id=f"s{i}", agent_id="x") for i in range(5)])
    store.close()
    return path


def test_an_output_the_file_system_refuses_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = small_file(tmp_path)
    missing = tmp_path / "no_such_folder"
    assert main(["export", str(path), "--table", "agent_sessions", "-o", str(missing / "x.jsonl")]) == 2
    assert main(["export", str(path), "--table", "agent_sessions", "-o", str(tmp_path)]) == 2  # a folder
    assert main(["backup", str(path), str(missing / "b.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("agno-storage: error: ") for line in err), err
    assert not missing.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["s.db", "s.db-shm", "s.db-wal"]


def test_numbers_past_any_calendar_are_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_file(tmp_path)
    for args in (
        ["prune", str(path), "--table", "agent_sessions", "--older-than", "99999999999999999999d"],
        ["prune", str(path), "--table", "agent_sessions", "--older-than", "9999999w"],
        ["export", str(path), "--table", "agent_sessions", "--since", "99999999999999999999"],
        ["export", str(path), "--table", "agent_sessions", "--until", "999999999999"],
    ):
        with pytest.raises(SystemExit) as caught:
            main(args)
        assert caught.value.code == 2, args
    assert "Traceback" not in capsys.readouterr().err
    assert len(SqliteStorage("agent_sessions", db_file=path).list()) == 5  # nothing pruned


def test_a_vacuum_that_fails_after_the_deletes_says_what_was_removed_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_file(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE agent_sessions SET created_at = 1, updated_at = 1")
    real = sqlite3.connect

    class Full(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql == "VACUUM":
                raise sqlite3.OperationalError("database or disk is full")
            return super().execute(sql, *args)

    import agno_storage.ops.prune as prune_module

    real_vacuum = prune_module.vacuum

    def vacuum(*args: Any) -> None:
        monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, factory=Full, **k))
        try:
            real_vacuum(*args)
        finally:
            monkeypatch.setattr(sqlite3, "connect", real)

    monkeypatch.setattr(prune_module, "vacuum", vacuum)
    code = main(["prune", str(path), "--table", "agent_sessions", "--older-than", "0s", "--vacuum"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out.startswith("removed 5 sessions") and "s4" in out
    assert err.startswith("agno-storage: error: VACUUM of ") and "the deletes stand" in err


@pytest.mark.parametrize("leftover", ["-wal", "-journal"])
def test_backup_refuses_a_destination_beside_another_databases_wal_or_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], leftover: str
) -> None:
    """SQLite pairs such a file with the copy on its first open: the backup would not be the source's."""
    from agno_storage.errors import StorageError

    source = tmp_path / "src.db"
    shutil.copy(FIXTURES / "go_agent.db", source)
    dest = tmp_path / "copy.db"
    stale = tmp_path / f"copy.db{leftover}"
    stale.write_bytes(b"another database's " + leftover.encode())
    with pytest.raises(StorageError, match="left by another database"):
        backup(str(source), dest)
    assert not dest.exists() and stale.read_bytes() == b"another database's " + leftover.encode()
    assert main(["backup", str(source), str(dest)]) == 2


def test_backup_of_a_file_another_connection_holds_locked_is_busy_not_a_hang(tmp_path: Path) -> None:
    """A rollback-journal file under an EXCLUSIVE lock (agno 1.x's writer, a VACUUM): SQLite's backup() would
    retry for ever; the read transaction taken first fails after the busy timeout."""
    from agno_storage.errors import BusyError

    source = tmp_path / "src.db"
    shutil.copy(FIXTURES / "go_agent.db", source)
    holder = sqlite3.connect(source, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode = DELETE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(BusyError):
            backup(str(source), tmp_path / "copy.db")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("copy.db*"))
    assert backup(str(source), tmp_path / "copy.db").pages > 0  # once it is free


@pytest.mark.parametrize("dry_run", [True, False])
def test_prune_reports_a_blob_session_id_it_removes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    """A session_id another program stored as a BLOB: the report sorted it with text and failed, after the
    deletes were committed (exit 1, nothing said)."""
    import json

    path = tmp_path / "blob.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO agent_sessions (session_id, user_id, agent_id, created_at, updated_at)"
            " VALUES (x'4142', 'u', 'a', 1, 1)"
        )
        (before,) = conn.execute("SELECT count(*) FROM agent_sessions").fetchone()
    argv = ["prune", str(path), "--table", "agent_sessions", "--older-than", "1d", "--json"]
    assert main(argv + (["--dry-run"] if dry_run else [])) == 0
    report = json.loads(capsys.readouterr().out)
    assert "b'AB'" in report["session_ids"] and len(report["session_ids"]) == before
    assert (
        main(
            ["prune", str(path), "--table", "agent_sessions", "--older-than", "1d"] + (["--dry-run"] if dry_run else [])
        )
        == 0
    )
    assert "b'AB'" in capsys.readouterr().out or not dry_run


def test_doctor_of_a_file_another_connection_holds_locked_is_busy_not_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 (nothing was checked), as every other command says of a locked file; exit 3 read as corruption."""
    path = tmp_path / "locked.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode = DELETE")
        holder.execute("BEGIN EXCLUSIVE")
        assert main(["doctor", str(path)]) == 2
        assert "locked" in capsys.readouterr().err
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert main(["doctor", str(path)]) == 0


@pytest.mark.parametrize("dropped", ["memory", "updated_at"])
def test_doctor_reports_a_sessions_table_that_lost_a_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dropped: str
) -> None:
    """`tables` files it with other programs' tables and `list` refuses it: it was "all is well"."""
    path = tmp_path / "dropped.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"ALTER TABLE agent_sessions DROP COLUMN {dropped}")
    assert main(["doctor", str(path)]) == 3
    assert f"agent_sessions: agent sessions table without {dropped}" in capsys.readouterr().out


def test_doctor_leaves_agno3s_tables_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file to_agno3 wrote into (agno 3's agno_sessions has session_id, agent_id, workflow_id, ...)."""
    assert main(["doctor", str(FIXTURES / "agno3_stamped_fcbec24_go_agent_conversation.db")]) == 0


_STALLED_BACKUP = """
import os, sys, time
from agno_storage.cli import main

def stalled(src, dst):
    print("written", flush=True)
    time.sleep(60)  # killed here, the checked copy not yet moved in place

os.link = stalled
sys.exit(main(sys.argv[1:]))
"""


def test_a_backup_killed_with_sigterm_leaves_no_temporary_file(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    source = tmp_path / "src.db"
    shutil.copy(FIXTURES / "go_agent.db", source)
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", _STALLED_BACKUP, "backup", str(source), str(out / "copy.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
        (partial,) = out.iterdir()  # there while it runs, a hidden name of its own
        assert partial.name.startswith(".copy.db.") and partial.name.endswith(".partial")
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 143
    finally:
        child.kill()
    assert list(out.iterdir()) == []


class _PausedSource:
    """A backup's source connection whose copy step first runs ``before`` (the interleaving to test)."""

    def __init__(self, conn: sqlite3.Connection, before: Any) -> None:
        self._conn = conn
        self._before = before

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def backup(self, target: sqlite3.Connection) -> None:
        self._before()
        self._conn.backup(target)


def test_two_backups_to_one_destination_at_once_each_move_in_only_the_file_they_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron job's backup overlapping one started by hand. The second begins while the first copies, and
    copies while the first checks and moves its copy in place: the first's DEST is the source's, whole; the
    second neither removes the first's file nor moves its own over DEST, and says DEST exists."""
    from agno_storage.errors import StorageError
    from agno_storage.ops import backup as backup_module

    source = tmp_path / "src.db"  # a WAL file: its copy has a -wal and -shm while it is checked
    store = SqliteStorage("agent_sessions", db_file=source)
    store.upsert_many([AgentSession(session_id=f"s{i}", agent_id="a", memory={"pad": "x" * 3000}) for i in range(50)])
    store.close()
    dest = tmp_path / "out" / "b.db"
    dest.parent.mkdir()
    second_copies, first_done = threading.Event(), threading.Event()
    second: list[BaseException | None] = []

    def run_second() -> None:
        try:
            backup(str(source), dest)
            second.append(None)
        except BaseException as exc:
            second.append(exc)
        finally:
            second_copies.set()  # also when it stopped before its copy

    thread = threading.Thread(target=run_second)

    def first_copies() -> None:
        thread.start()
        assert second_copies.wait(60)

    def second_copy() -> None:
        second_copies.set()
        assert first_done.wait(60)

    real = backup_module.connect_readonly
    opened: list[int] = []

    def connect_readonly(path: Any, timeout: float | None = None) -> Any:
        opened.append(1)
        return _PausedSource(real(path, timeout), first_copies if len(opened) == 1 else second_copy)

    monkeypatch.setattr(backup_module, "connect_readonly", connect_readonly)
    try:
        summary = backup(str(source), dest)
        # What the first said it checked is what DEST holds, before the second ends. (immutable: a read-only
        # connection to a WAL file would leave a -wal and -shm of its own beside it.)
        conn = sqlite3.connect(f"file:{dest}?mode=ro&immutable=1", uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT COUNT(*) FROM agent_sessions").fetchone()[0] == 50
        finally:
            conn.close()
        assert summary.pages > 0
    finally:
        first_done.set()
        thread.join(60)
    (error,) = second
    assert isinstance(error, StorageError) and "exists" in str(error)
    assert [p.name for p in dest.parent.iterdir()] == ["b.db"]
    conn = sqlite3.connect(f"file:{dest}?mode=ro&immutable=1", uri=True)
    try:
        assert conn.execute("SELECT COUNT(*) FROM agent_sessions").fetchone()[0] == 50
    finally:
        conn.close()


def test_a_vacuum_on_a_server_that_cannot_be_reached_is_a_lost_connection() -> None:
    """``prune --vacuum`` on PostgreSQL raised a bare StorageError when it could not reach the server after the
    deletes; it is ``ConnectionLostError``, as the deletes' own would be, still saying the deletes stand."""
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ConnectionLostError, match=r"VACUUM of table .* failed \(the deletes stand\)"):
        vacuum(f"postgresql://u@127.0.0.1:{port}/db?connect_timeout=2", "agent_sessions")
