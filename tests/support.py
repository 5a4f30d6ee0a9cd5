"""Helpers shared by the test modules."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import pytest

#: How long a call may take before a test calls it hung. A liveness bound for
#: calls that must fail rather than block forever, far above any expected time.
HANG_S = 60.0


def require(available: bool, reason: str, env: str) -> None:
    """Skip the calling test when a tool is missing, or fail when ``env`` demands it.

    CI sets ``env`` (for example ``AGNO_STORAGE_REQUIRE_GO=1``) so that a
    missing toolchain fails the run instead of hiding behind a skip.
    """
    if available:
        return
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} ({env}=1 forbids skipping)")
    pytest.skip(reason)


def finishes(call: Callable[[], Any], within: float = HANG_S, hung: str = "the call hung") -> Any:
    """Return what ``call`` returns, or raise what it raises; fail the test if it hangs.

    ``call`` runs on a daemon thread; if it has not finished after ``within``
    seconds the test fails with ``hung`` (the thread is left behind).
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    if thread.is_alive():
        pytest.fail(f"{hung}: no result after {within:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def run_together(targets: Iterable[Callable[[], Any]], within: float = HANG_S) -> None:
    """Start a thread for each of ``targets`` and wait for them all; fail the test if any hangs.

    A thread still running ``within`` seconds after they started fails the test with "hung" (the threads
    are daemons, left behind).
    """
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + within
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = sum(thread.is_alive() for thread in threads)
    if hung:
        pytest.fail(f"{hung} of {len(threads)} threads hung: still running after {within:g} s")


def write_run_as_another_program(
    conn: sqlite3.Connection, run_id: str, verb: str = "INSERT OR REPLACE", **changes: Any
) -> None:
    """Write again the ``agent_runs`` row ``run_id`` with ``changes``, by a plain statement (``verb``), as a
    program that knows nothing of this store would."""
    row = conn.execute("SELECT * FROM agent_runs WHERE id = ?", (run_id,)).fetchone()
    columns = [r[1] for r in conn.execute("PRAGMA table_info(agent_runs)")]
    values = dict(zip(columns, row, strict=True)) | changes
    conn.execute(
        f"{verb} INTO agent_runs ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
        list(values.values()),
    )


def forked_while_held(lock: AbstractContextManager[Any], child: Callable[[], bool]) -> int:
    """The exit code of a child forked while another thread held ``lock``: 0 if ``child()`` was True in it,
    1 if False, 2 if it raised, killed by SIGALRM after 10 s if it hung."""
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:  # another thread opening (or closing) a connection as the process forks
        with lock:
            holding.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        holding.wait(30)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            signal.alarm(10)
            try:
                os._exit(0 if child() else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
    finally:
        done.set()
        holder.join()
    return os.waitstatus_to_exitcode(status)


class BoundedProgress:
    """A progress hook for a batched operation (prune) that fails the test once it advances more than ``most``
    times: one that chooses the same batch again and again would otherwise never end."""

    def __init__(self, most: int = 20) -> None:
        self.most = most
        self.batches = 0

    def start(self, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        self.batches += 1
        assert self.batches <= self.most, "the same batch was chosen again and again"


class _Watched(sqlite3.Connection):
    """A connection that reads its busy timeout back from SQLite as it is closed."""

    closed_with: int | None = None

    def busy_timeout(self) -> int | None:
        """``PRAGMA busy_timeout`` (milliseconds) now, or as it was when the connection was closed."""
        try:
            return int(self.execute("PRAGMA busy_timeout").fetchone()[0])
        except sqlite3.ProgrammingError:  # closed already (or another thread's)
            return self.closed_with

    def close(self) -> None:
        self.closed_with = self.busy_timeout()
        super().close()


def _file_of(database: str | os.PathLike[str]) -> str:
    """The file a ``sqlite3.connect`` argument names: a path, or a ``file:`` URI with a query."""
    name = os.fspath(database)
    if name.startswith("file:"):
        name = urllib.parse.unquote(urllib.parse.urlsplit(name).path)
    return os.path.realpath(name)


#: Threads whose SQLite connections never wait for a lock (see :class:`BusyTimeouts`).
_NEVER_WAITING = frozenset({"agno-storage-checkpointer"})


class BusyTimeouts:
    """Every SQLite connection opened from now on (by ``sqlite3.connect``), with the busy timeout SQLite itself
    has for it: what a URL's ``?timeout=`` reached, read back rather than timed.

    Not counted: a connection opened with an explicit ``factory=`` (a test's own lock holder), and the bulk
    loader's checkpointer's, whose PASSIVE checkpoints never wait for a lock.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._opened: list[tuple[str, _Watched]] = []
        self._lock = threading.Lock()
        connect = sqlite3.connect

        def watched(database: str | os.PathLike[str], *args: Any, **kwargs: Any) -> sqlite3.Connection:
            kwargs.setdefault("factory", _Watched)
            conn = connect(database, *args, **kwargs)
            if isinstance(conn, _Watched) and threading.current_thread().name not in _NEVER_WAITING:
                with self._lock:  # kept referenced: one the caller drops is still read at the end
                    self._opened.append((_file_of(database), conn))
            return conn

        monkeypatch.setattr(sqlite3, "connect", watched)

    def of(self, path: str | os.PathLike[str]) -> list[int | None]:
        """The busy timeouts (milliseconds) of the connections opened to ``path`` so far, in the order opened."""
        file = _file_of(path)
        with self._lock:
            return [conn.busy_timeout() for name, conn in self._opened if name == file]

    def clear(self) -> None:
        """Forget the connections opened so far."""
        with self._lock:
            self._opened.clear()


def kill_writer_midway(path: str | os.PathLike[str]) -> None:
    """Leave a hot journal beside the rollback-journal file ``path`` (its ``agent_sessions`` holding rows): a
    writer killed in the middle of a transaction that rewrote and deleted every row, its changes spilled into
    the file (only the journal can undo them)."""
    import subprocess
    import sys

    code = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA cache_size=10'); c.execute('BEGIN')\n"
        "c.execute(\"UPDATE agent_sessions SET memory = memory || ''\"); c.execute('DELETE FROM agent_sessions')\n"
        "os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code, os.fspath(path)], check=False)
    assert os.stat(f"{os.fspath(path)}-journal").st_size > 0


def refuse_checkpoint_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on the WAL checkpoint thread (``sqlite_bulk.Checkpointer``) cannot start, as at the process's thread
    limit; every other thread starts."""
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == "agno-storage-checkpointer":
            raise RuntimeError("can't start new thread")  # what threading raises at the limit
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)


def sessions_table_named_agent_runs(path: str | os.PathLike[str], name: str = "agent_runs", *, beside: bool) -> None:
    """A file as an earlier build let a store leave it: an agent sessions table made, in the store's own DDL,
    under the name ``name`` (``agent_runs`` in some case), where agno-golang keeps a Go Agent's runs.

    It holds sessions ``s1`` (alice's, one run about zebras) and ``s2``, updated long ago. ``beside``: an
    ``agent_sessions`` table too, holding a session ``s1`` of its own, as old.
    """
    from agno_storage.backends.sqlite_ddl import create_indexes, create_recency_indexes, create_table
    from agno_storage.models import Mode
    from agno_storage.modes import SPECS

    spec = SPECS[Mode.AGENT]
    memory = '{"runs": [{"message": {"role": "user", "content": "zebras"}, "response": {"content": "stripes"}}]}'
    with sqlite3.connect(path) as conn:
        for table in [name] + (["agent_sessions"] if beside else []):
            for statement in [
                create_table(table, spec),
                *create_indexes(table, spec),
                *create_recency_indexes(table, spec),
            ]:
                conn.execute(statement)
            conn.executemany(
                f"INSERT INTO {table} (session_id, user_id, agent_id, memory, created_at, updated_at) "
                "VALUES (?, ?, 'a', ?, 1, 1)",
                [("s1", "alice", memory)] + ([("s2", "", None)] if table == name else []),
            )
    conn.close()
