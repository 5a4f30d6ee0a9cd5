"""PostgreSQL connections: the pool, transactions, retries and typed errors.

This module knows nothing of sessions or tables' shapes: it hands a
connection to a callable, in a transaction or not, reruns it after a
transient failure when that is safe, and turns driver errors into
:class:`~agno_storage.errors.StorageError` subclasses. Statements are not
prepared unless asked (``prepare_threshold``), so by default it also works
behind a pooler in transaction mode.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from agno_storage.backends import process
from agno_storage.errors import (
    BusyError,
    ConnectionLostError,
    DatabaseCorruptError,
    DiskFullError,
    InvalidInputError,
    ReadOnlyDatabaseError,
    SchemaMismatchError,
    StorageError,
    TableNotFoundError,
)
from agno_storage.urls import misread_userinfo

T = TypeVar("T")

# SQLSTATEs after which the server rolled the transaction back and a rerun is safe.
_RETRYABLE_CONFLICTS = frozenset({"40001", "40P01"})
# The server is going away or not there yet: the connection is as good as lost.
_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})
# The server closed the connection for idling past idle_session_timeout (an idle pooled one: nothing of a call
# ran on it) or idle_in_transaction_session_timeout (its transaction rolled back): lost as well.
_IDLED_OUT_STATES = frozenset({"57P05", "25P03"})
_BUSY_STATES = frozenset({"40001", "40P01", "55P03", "57014"})
_DISK_FULL_STATE = "53100"
#: read_only_sql_transaction: a write in a read-only transaction (default_transaction_read_only, a hot standby).
_READ_ONLY_STATE = "25006"
_CORRUPT_STATES = frozenset({"XX001", "XX002"})  # data_corrupted, index_corrupted
#: check_violation: a value a CHECK constraint (of the table, or of a column's domain) refuses.
_CHECK_VIOLATION_STATE = "23514"
#: Seconds to wait before the first rerun; each later wait is three times the one before, up to the longest.
_FIRST_WAIT = 0.05
_LONGEST_WAIT = 2.0

# The pool logs every failed connection attempt, several lines each, which
# Python's last-resort handler prints to stderr. The error this module raises
# says the same once; a program that configured logging still gets the lines.
_pool_log = logging.getLogger("psycopg.pool")
if not _pool_log.handlers:
    _pool_log.addHandler(logging.NullHandler())

#: The connection whose pipeline this thread is in (:func:`pipeline`), if any.
_in_pipeline = threading.local()


class _LostPipelineFilter(logging.Filter):
    """Drops psycopg's warning that it could not close the pipeline of a connection that was lost in it.

    Only for a connection in :func:`pipeline` on this thread, and only once
    the connection is broken: the error this module raises (or the rerun)
    says the connection was lost; the warning, which Python's last-resort
    handler prints to stderr, says it again. Any other psycopg line stays.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        conn = getattr(_in_pipeline, "conn", None)
        return conn is None or not conn.broken or record.msg != "error ignored terminating %r: %s"


logging.getLogger("psycopg").addFilter(_LostPipelineFilter())


@contextmanager
def pipeline(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Pipeline]:
    """``conn.pipeline()``, without psycopg's warning when the connection is lost in it (the error is raised)."""
    outer = getattr(_in_pipeline, "conn", None)
    _in_pipeline.conn = conn
    try:
        with conn.pipeline() as p:
            yield p
    finally:
        _in_pipeline.conn = outer


class Connections:
    """One store's pool in this process, and the transaction each thread has open.

    Thread-safe; a forked child makes its own pool and leaves the parent's
    alone. ``table`` only names the table in the errors raised.
    ``configure`` runs on every new connection. ``prepare_threshold`` is
    psycopg's: a statement run that many times on a connection is prepared
    there (None: never).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        table: str,
        pool_size: int,
        connect_timeout: float,
        retries: int,
        configure: Callable[[psycopg.Connection[Any]], None],
        prepare_threshold: int | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._prepare_threshold = prepare_threshold
        self._table = table
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._retries = retries
        self._configure = configure
        self._pool: ConnectionPool | None = None
        self._pool_pid = 0
        self._pool_lock = process.ForkLock()  # a child forked while another thread held it makes its pool
        self._local = threading.local()
        #: The server, as errors name it: host, port and database, never the password.
        self.server = describe_server(conninfo)
        #: Why the pool's last attempt to connect failed (None after one succeeded).
        self.last_connect_error: BaseException | None = None

    def _get_pool(self) -> ConnectionPool:
        pid = process.current.pid
        pool = self._pool
        if pool is not None and self._pool_pid == pid:
            return pool
        with self._pool_lock:
            if self._pool is None or self._pool_pid != pid:
                # A pool inherited over fork is the parent's: its sockets are shared
                # with the parent and its worker threads did not survive, so it is
                # left alone (psycopg does not close a parent's connection on GC).
                self._pool = ConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=self._pool_size,
                    kwargs={
                        "autocommit": True,
                        # The codec's text is UTF-8, whatever client_encoding a URL asks for: another
                        # encoding would fail in the driver (a raw UnicodeEncodeError) on any other text.
                        "client_encoding": "utf8",
                        # None (the default): no prepared statements, which break behind a pooler in
                        # transaction mode (docs/postgres.md).
                        "prepare_threshold": self._prepare_threshold,
                        "connect_timeout": max(2, round(self._connect_timeout)),
                        "application_name": "agno_storage",
                        # Notice a dead peer within about 30 s instead of the kernel's hours.
                        "keepalives": 1,
                        "keepalives_idle": 10,
                        "keepalives_interval": 5,
                        "keepalives_count": 3,
                    },
                    configure=self._configure,
                    connection_class=_recording_connection_class(self),
                    timeout=self._connect_timeout,
                    # The pool's own reconnect backoff grows to minutes; give up on
                    # it early so that the next call after an outage connects at once.
                    reconnect_timeout=2 * self._connect_timeout,
                    name=f"agno_storage:{self._table}",
                    open=False,
                )
                self._pool.open(wait=False)
                self._pool_pid = pid
            return self._pool

    def held(self) -> psycopg.Connection[Any] | None:
        """The connection of a transaction open on this thread (in this process), if any."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid != process.current.pid:
            # Forked inside the parent's transaction(): the thread-local copy is the parent's
            # connection, and joining it would write into (and race on) the parent's socket.
            return None
        return conn

    @contextmanager
    def _checkout(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._get_pool()
        try:
            conn = pool.getconn(timeout=self._connect_timeout)
        except PoolTimeout as exc:
            raise self._unreachable(exc) from exc
        pid = process.current.pid
        self._local.conn, self._local.pid, self._local.depth = conn, pid, 0
        try:
            yield conn
        except Exception as exc:
            if stale_plan(exc) and process.current.pid == pid:
                # A statement prepared on this connection no longer fits its table (another program changed a
                # column's type): it would fail on every later run here, so the pool gets a fresh connection.
                conn.close()
            raise
        finally:
            self._local.conn = None
            if process.current.pid == pid:  # a child forked in the block leaves its parent's pool alone
                pool.putconn(conn)

    def _unreachable(self, exc: PoolTimeout) -> ConnectionLostError:
        """The error for a pool that found no connection in time: which server, and why."""
        last = self.last_connect_error
        if last is not None:
            reason = " ".join(str(last).split()) or type(last).__name__
            why = f"cannot connect to the PostgreSQL server at {self.server}: {reason}"
        else:
            why = (
                f"every connection of this store's pool to the PostgreSQL server at {self.server} "
                f"(pool_size={self._pool_size}) stayed in use"
            )
        return ConnectionLostError(f"no connection within {self._connect_timeout:g} s; {why}", table=self._table)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction that commits only if the block finishes; nested use opens a savepoint.

        It begins on a live connection (a pooled one the server closed is
        replaced). Once begun it is not retried: a lost connection raises
        ConnectionLostError. A statement that failed inside the block, its
        error caught there, leaves PostgreSQL's transaction (or savepoint)
        aborted: the block's end then rolls it back and raises StorageError.
        """
        held = self.held()
        if held is not None:
            with self._savepoint(held):
                yield held
            return
        stage = _Stage()
        try:
            with self._checkout_begun() as conn, _atomic(conn, stage, self._table, begun=True):
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise translate(exc, self._table, committing=stage.committing) from exc

    @contextmanager
    def _checkout_begun(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection with a transaction begun on it.

        After a server restart every idle connection in the pool is dead, and
        the first statement on one fails: a BEGIN that fails so (nothing of
        the caller's has run yet) is sent again on a fresh connection, up to
        ``retries`` times, as :meth:`run` reruns its body.
        """
        for attempt in itertools.count():
            with self._checkout() as conn:
                try:
                    conn.execute("BEGIN")
                except psycopg.Error as exc:
                    if not (_is_lost(exc) and attempt < self._retries):
                        raise
                else:
                    yield conn
                    return
            self._discard_broken()
            time.sleep(retry_wait(attempt))

    @contextmanager
    def _savepoint(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """A savepoint in this thread's transaction: released if the block finishes, rolled back to if not."""
        depth = self._local.depth
        savepoint = sql.Identifier(f"sp{depth}")
        with _errors(self._table):
            conn.execute(sql.SQL("SAVEPOINT {}").format(savepoint))
        self._local.depth = depth + 1
        owner = process.current.pid
        try:
            yield
        except BaseException:
            self._local.depth = depth
            if process.current.pid != owner:
                raise
            # After a lost connection, or a ROLLBACK the block ran itself, there is no
            # savepoint left to go back to: the original error is the one to see.
            if not (conn.broken or conn.closed) and conn.info.transaction_status != pq.TransactionStatus.IDLE:
                with _errors(self._table):
                    conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(savepoint))
                    conn.execute(sql.SQL("RELEASE SAVEPOINT {}").format(savepoint))
            raise
        self._local.depth = depth
        if process.current.pid != owner:
            raise _forked_inside(self._table)
        with _errors(self._table):
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                # A statement of the block failed and its error was caught: RELEASE would fail
                # ("commands ignored"). Undo the block, leaving the enclosing transaction usable.
                conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(savepoint))
                conn.execute(sql.SQL("RELEASE SAVEPOINT {}").format(savepoint))
                raise _failed_inside(self._table, "nested transaction (savepoint)")
            conn.execute(sql.SQL("RELEASE SAVEPOINT {}").format(savepoint))

    def run(
        self,
        body: Callable[[psycopg.Connection[Any]], T],
        *,
        write: bool,
        replayable: Callable[[], bool] = lambda: True,
        single: bool = False,
    ) -> T:
        """Run ``body`` on a pooled connection, in a transaction if ``write``.

        ``single`` says ``body`` runs one statement, atomic on its own in
        autocommit mode, so no BEGIN/COMMIT is sent. Inside a caller's
        transaction, ``body`` joins it in a savepoint (a read too: a failed
        statement aborts a PostgreSQL transaction, and the savepoint leaves
        the caller's usable after a typed error it catches; two more round
        trips) and is not retried.
        Otherwise a lost connection or a serialization failure before COMMIT
        is sent reruns ``body`` on a fresh connection, up to ``retries``
        times, while ``replayable()`` says the inputs can be replayed (a
        single upsert is idempotent, so it is rerun even if it may have
        committed). A pooler's ``query_wait_timeout`` is never rerun: the
        call has waited already.
        """
        held = self.held()
        if held is not None:
            if not write and held.info.transaction_status == pq.TransactionStatus.IDLE:
                # A read made from another call's body on its autocommit connection (an error's message
                # looking the row up): no transaction for it to abort, and no savepoint outside one.
                with _errors(self._table):
                    return body(held)
            with self.transaction() as conn, _errors(self._table):
                return body(conn)
        for attempt in itertools.count():
            stage = _Stage()
            try:
                with self._checkout() as conn:
                    if not write or single:
                        return body(conn)
                    with _atomic(conn, stage, self._table):
                        return body(conn)
            except PoolTimeout as exc:
                # The pool already waited connect_timeout for a connection: no rerun.
                raise translate(exc, self._table) from exc
            except psycopg.Error as exc:
                # A pooler's wait timeout already waited: a rerun would only queue again. A stale prepared
                # statement's connection was closed above: the rerun prepares it anew on another.
                transient = (
                    (_is_lost(exc) and not _pooler_gave_up(exc))
                    or exc.sqlstate in _RETRYABLE_CONFLICTS
                    or stale_plan(exc)
                )
                if transient and not stage.committing and attempt < self._retries and replayable():
                    if _is_lost(exc):
                        self._discard_broken()
                    time.sleep(retry_wait(attempt))
                    continue
                raise translate(exc, self._table, committing=stage.committing) from exc
        raise AssertionError("unreachable")

    def _discard_broken(self) -> None:
        # After a server restart every idle connection is dead; test them all
        # now rather than failing on each in turn.
        pool = self._pool
        if pool is not None and self._pool_pid == process.current.pid:
            try:
                pool.check()
            except (psycopg.Error, PoolTimeout):
                pass

    def close(self) -> None:
        """Close this process's pool; the next call opens a new one."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
            owned = self._pool_pid == process.current.pid
        if pool is not None and owned:
            pool.close()


class _Stage:
    """How far a transaction got: ``committing`` once COMMIT was sent (its outcome is then unknown)."""

    __slots__ = ("committing",)

    def __init__(self) -> None:
        self.committing = False


def retry_wait(attempt: int) -> float:
    """Seconds to wait before rerun ``attempt + 1``: 0.05, 0.15, 0.45, 1.35, then 2 each time."""
    return min(_FIRST_WAIT * 3.0 ** min(attempt, 8), _LONGEST_WAIT)


@contextmanager
def _atomic(conn: psycopg.Connection[Any], stage: _Stage, table: str, *, begun: bool = False) -> Iterator[None]:
    """BEGIN (unless ``begun``), then COMMIT if the block finishes or ROLLBACK on any exception: the one
    transaction body.

    Raises StorageError, with everything rolled back, if the block finished
    with the transaction aborted by a failed statement whose error it caught.
    """
    if not begun:
        conn.execute("BEGIN")
    owner = process.current.pid
    try:
        yield
    except BaseException:
        if process.current.pid == owner:
            _rollback(conn)
        raise
    if process.current.pid != owner:
        raise _forked_inside(table)
    if conn.info.transaction_status == pq.TransactionStatus.INERROR:
        # The server would answer COMMIT with a ROLLBACK and no error: the block must not look committed.
        _rollback(conn)
        raise _failed_inside(table, "transaction")
    stage.committing = True
    conn.execute("COMMIT")


def _failed_inside(table: str, what: str) -> StorageError:
    """The error for a block that finished after a statement in it failed (its error caught in the block)."""
    return StorageError(
        f"the {what} had failed: a statement inside the block raised an error that was caught there, and "
        "PostgreSQL aborts the transaction after any failed statement; it was rolled back and nothing of the "
        "block was committed",
        table=table,
    )


def _forked_inside(table: str) -> StorageError:
    """The error for a forked child leaving a transaction block its parent opened (nothing is sent)."""
    return StorageError(
        "a process forked inside transaction() cannot end it: the transaction and its connection are the "
        "parent's, so nothing was committed or rolled back here",
        table=table,
    )


def _rollback(conn: psycopg.Connection[Any]) -> None:
    if conn.broken or conn.closed:
        return  # the server rolls back a transaction whose connection died
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass  # the original error matters more; the pool discards a bad connection


def stale_plan(exc: BaseException) -> bool:
    """A prepared statement whose result no longer fits its table ("cached plan must not change result type"):
    another program changed a column's type since it was prepared (``prepared_statements=True`` only)."""
    cause: BaseException | None = exc
    while cause is not None:  # a StorageError raised for it (inside a transaction()) names it as its cause
        if isinstance(cause, psycopg.Error) and cause.sqlstate == "0A000" and "cached plan must not" in str(cause):
            return True
        cause = cause.__cause__
    return False


def _is_lost(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, psycopg.Error) and exc.sqlstate in _IDLED_OUT_STATES:
        return True  # 25P03 is no OperationalError to psycopg (class 25: invalid transaction state)
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _SHUTDOWN_STATES


def _pooler_gave_up(exc: BaseException) -> bool:
    """PgBouncer dropped a client that queued ``query_wait_timeout`` for a server connection."""
    return isinstance(exc, psycopg.OperationalError) and exc.sqlstate == "08P01" and "query_wait_timeout" in str(exc)


def invalid_value(
    exc: BaseException, table: str, session_id: str | None, column: str | None = None
) -> InvalidInputError:
    """The error for a value the server refused to store (bad or too big for it, or text it cannot encode)."""
    where = f"session {session_id!r}{f', column {column}' if column else ''}: " if session_id is not None else ""
    return InvalidInputError(
        f"{where}PostgreSQL cannot store this value: {exc}", table=table, session_id=session_id, column=column
    )


@contextmanager
def _errors(table: str) -> Iterator[None]:
    """Raise driver errors of the block as :func:`translate` names them."""
    try:
        yield
    except (psycopg.Error, PoolTimeout) as exc:
        raise translate(exc, table) from exc


def translate(exc: BaseException, table: str, *, committing: bool = False) -> StorageError:
    """The typed error for a driver error; ``committing`` means COMMIT was under way."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, PoolTimeout):
        return ConnectionLostError(f"no connection to the PostgreSQL server: {exc}", table=table)
    if _pooler_gave_up(exc):
        # PgBouncer cannot tell which: its pool is full, or the server is down.
        return ConnectionLostError(
            "the connection pooler found no server connection within its query_wait_timeout "
            f"(every server connection is busy, or the server is unreachable); not retried: {exc}",
            table=table,
        )
    if _is_lost(exc):
        outcome = " during COMMIT; the write may or may not have been saved" if committing else ""
        return ConnectionLostError(f"lost the connection to the PostgreSQL server{outcome}: {exc}", table=table)
    state = getattr(exc, "sqlstate", None) or ""
    if state in _BUSY_STATES:
        return BusyError(f"PostgreSQL gave up waiting for another transaction: {exc}", table=table)
    if state == _DISK_FULL_STATE:
        return DiskFullError(
            f"the PostgreSQL server's disk is full; nothing of this write was kept: {exc}", table=table
        )
    if state == _READ_ONLY_STATE:
        return ReadOnlyDatabaseError(
            f"this connection to PostgreSQL is read-only; nothing was written to table {table!r}: {exc}", table=table
        )
    if state in _CORRUPT_STATES:
        return DatabaseCorruptError(f"PostgreSQL found damaged data in table {table!r}: {exc}", table=table)
    if isinstance(exc, psycopg.DataError) or state.startswith("22") or state == _CHECK_VIOLATION_STATE:
        return InvalidInputError(f"PostgreSQL cannot store this value: {exc}", table=table)
    if isinstance(exc, pg_errors.UndefinedTable):
        return TableNotFoundError(f"table {table!r} is not there: {exc}", table=table)
    if isinstance(exc, pg_errors.UndefinedColumn):
        return SchemaMismatchError(f"table {table!r} changed shape under this store: {exc}", table=table)
    return StorageError(f"PostgreSQL error on table {table!r}: {exc}", table=table)


def describe_server(conninfo: str) -> str:
    """``host:port/dbname`` of a libpq connection string or URL, never its password; libpq's defaults where absent."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "(unparsable connection string)"
    advice = misread_userinfo(conninfo)
    if advice is not None:
        # libpq read (part of) the password as the host or the database name: none of it is fit to show.
        return f"(a URL libpq reads with its password as the host: {advice})"
    host = str(params.get("host") or os.environ.get("PGHOST") or "the local socket")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or "(default)")
    return f"{host}:{port}/{dbname}"


def _recording_connection_class(conns: Connections) -> type[psycopg.Connection[Any]]:
    """A connection class that keeps, on ``conns``, why the pool's last attempt to connect failed."""

    class RecordingConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            try:
                conn = super().connect(conninfo, **kwargs)
            except BaseException as exc:
                conns.last_connect_error = exc
                raise
            conns.last_connect_error = None
            return conn

    return RecordingConnection


__all__ = ["Connections", "describe_server", "invalid_value", "pipeline", "translate"]
