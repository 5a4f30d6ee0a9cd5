# ruff: noqa: S608 - every identifier here is the index's own (schema.quote); every value is bound.
"""Filling a SQLite search index with a worker process beside the writing one, while the index is being made.

Reading the conversations (decoding, extracting, fingerprinting) is
Python work; writing the index is SQLite's. While an index is being made
(``enable_search()``, a table made again, an earlier layout's index made
anew: the log then holds every session), :func:`catch_up` hands the
log's sessions to one worker process (:class:`agno_storage.workers.Pool`)
a batch at a time, by id: the worker reads their rows from the file with
a read-only store of its own (:class:`ReadTask`), and this process writes
each batch's messages in a write transaction of its own, as
:meth:`~agno_storage.search_sqlite.SqliteIndex.catch_up` does in one
process. What the worker read is kept only where nothing was committed by
another connection since the batch was handed over.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agno_storage import agent_runs, conversation_go
from agno_storage.backends.sqlite_errors import translate
from agno_storage.errors import StorageError
from agno_storage.search_index import EXTRACT_BATCH, EXTRACT_BYTES, Doc, Unwatched, docs_of, mark

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.search_sqlite import SqliteIndex

_log = logging.getLogger("agno_storage")

#: (after this log entry, up to this one, the batch's sessions in the log's order)
Batch = tuple[int, int, builtins.list[str]]
#: (session_id, stored row or None, agent_runs rows) of one session the worker reads.
Item = tuple[Any, "Sequence[Any] | None", "builtins.list[conversation_go.RunRow]"]


def catch_up(index: SqliteIndex, top: int) -> tuple[int, set[str]]:
    """Catch ``index`` up with its log up to entry ``top`` with a worker process reading the conversations
    beside this one's writes; the last log entry taken, and the sessions. A batch of at most
    :data:`~agno_storage.search_index.EXTRACT_BATCH` sessions to a write transaction, as in one process.

    The worker reads rows a batch or two ahead of the transaction that indexes them: a session written
    meanwhile is on the log again, after ``top``, and reindexed by the next catch-up. Where no worker can
    start (one core, no interpreter, a database in memory, a path that names another file by now) or one
    fails, returns where it stopped, for the caller to do the rest in this process. A corrupt row is raised
    as it is, with the batches before it kept.
    """
    from agno_storage import workers

    store = index.store
    if store.db_path is None or store._in_transaction() or not workers.default_count(1, start_from=1, most=1):
        # A database in memory is this process's alone; inside a caller's transaction the rows it wrote are
        # not committed, so a worker would read them as they were, and no other connection's commit shows it.
        return 0, set()
    batches = plan(index, top)  # before the worker starts: an error here leaves none behind
    try:
        args = (store.spec.mode.value, store.table_name, index._marked, store.db_path, store._thread_handle().file_id)
        pool = workers.Pool(1, f"{__name__}:ReadTask", args, "a search index worker")
    except StorageError:
        return 0, set()  # none can start here (no interpreter, a path without this package, the file replaced)
    #: PRAGMA data_version before the worker read each batch's rows: it moves when another connection commits.
    versions: builtins.list[int] = []

    def handed(sessions: builtins.list[str]) -> builtins.list[str]:
        versions.append(store._query("PRAGMA data_version", ())[0][0])  # before the worker has the batch
        return sessions

    seen: set[str] = set()
    last = 0
    try:
        results = pool.map(handed(sessions) for _, _, sessions in batches)
        for k, ((after, upto, planned), (docs, marks)) in enumerate(zip(batches, results, strict=True)):
            with store.transaction() as conn:
                index._require_enabled()
                if index._unwatched():  # dropped or renamed meanwhile: see SqliteIndex.catch_up()
                    raise Unwatched(store.table_name)
                entries = conn.execute(
                    f"SELECT session_id FROM {index.queue} WHERE id > ? AND id <= ? ORDER BY id", (after, upto)
                ).fetchall()
                sessions = builtins.list(dict.fromkeys(sid for (sid,) in entries))
                (version,) = conn.execute("PRAGMA data_version").fetchone()
                if sessions == planned and version == versions[k]:
                    # Nothing committed by another connection since the batch was handed over, and the log
                    # holds what was planned: the worker's docs are the sessions' as they are now.
                    by_session: dict[str, builtins.list[Doc]] = {sid: [] for sid in sessions}
                    for doc in docs:
                        by_session[doc[0]].append(doc)
                    gone, new = index._diff(conn, by_session)
                    found = dict(marks)
                    new_marks = [(sid, found.get(sid)) for sid in sessions]
                else:
                    # Another writer (or catch-up) committed meanwhile: a session may have changed since it
                    # was read, or the log's entries in this range be others' now (ids start over once the
                    # log empties). These sessions are read again here, under the lock.
                    gone, new, new_marks, _ = index._changes(conn, sessions)
                index._forget(conn, gone)
                index._insert(conn, new)
                index._put_marks(conn, new_marks)
                conn.execute(f"DELETE FROM {index.queue} WHERE id > ? AND id <= ?", (after, upto))
            last = upto
            seen.update(sessions)
    except workers.WorkerError as exc:
        _log.warning("search index of %r: %s; catching up in this process instead", store.table_name, exc)
    finally:
        pool.close()
    return last, seen


def plan(index: SqliteIndex, top: int) -> builtins.list[Batch]:
    """The log's entries up to ``top`` as batches, at most :data:`~agno_storage.search_index.EXTRACT_BATCH`
    sessions each, fewer where their conversations hold over :data:`~agno_storage.search_index.EXTRACT_BYTES`
    (a reply is about twice its text, and a frame is at most 1 GiB)."""
    store = index.store
    batches: builtins.list[Batch] = []
    sessions: dict[str, None] = {}
    after = last = held = 0
    try:
        for entry, sid, text in index._entries(store._thread_handle().conn, 0, top):
            if sid not in sessions and sessions and (len(sessions) >= EXTRACT_BATCH or held >= EXTRACT_BYTES):
                batches.append((after, last, builtins.list(sessions)))
                sessions, after, held = {}, last, 0
            if sid not in sessions:
                held += text or 0
            sessions[sid] = None
            last = entry
    except sqlite3.Error as exc:
        if not store.table_exists():  # dropped or renamed by another program since the log was read
            raise Unwatched(store.table_name) from None
        raise translate(exc, store.table_name) from exc
    if sessions:
        batches.append((after, top, builtins.list(sessions)))
    return batches


def read_items(store: BaseStorage, sessions: builtins.list[str]) -> builtins.list[Item]:
    """(session_id, stored row, agent_runs rows) of each of ``sessions`` that has a row or runs of this table."""
    places = "(" + ", ".join("?" for _ in sessions) + ")"
    select = f"{store.statements.select} WHERE {store.statements.id_column} IN "
    rows = {raw[0]: raw for raw in store._query(select + places, sessions)}
    runs = agent_runs.runs_of(store, sessions) if agent_runs.exists(store) else {}
    for sid in agent_runs.held_elsewhere(store, [s for s in runs if s not in rows]):
        del runs[sid]  # another agent table's session (an archive copy): not this table's to index
    return [(sid, rows.get(sid), runs.get(sid, [])) for sid in sessions if sid in rows or sid in runs]


class ReadTask:
    """The worker's task: each batch of session ids to their docs and marks, the rows read from the file by a
    read-only store of the worker's own (so the building process neither reads them nor ships them over),
    decoded with that store's codec, and extracted and fingerprinted.

    Refuses to start (StorageError) where the path no longer names the building store's file (``file_id``).
    """

    def __init__(self, mode: str, table: str, marked: Sequence[int], path: str, file_id: tuple[int, int]) -> None:
        from agno_storage.backends.sqlite import SqliteStorage

        store = None
        try:
            store = SqliteStorage(table, db_file=path, mode=mode, read_only=True)
            if store._thread_handle().file_id != tuple(file_id):
                raise StorageError(f"{path!r} was replaced since the index's store opened it", table=table)
        except BaseException as exc:
            if store is not None:
                store.close()
            if isinstance(exc, StorageError) or not isinstance(exc, Exception):
                raise
            # Whatever else keeps it from reading the file: the builder does the work itself instead.
            raise StorageError(f"a search index worker cannot read {path!r}: {exc!r}", table=table) from exc
        self._store = store
        self._marked = builtins.list(marked)

    def __call__(
        self, sessions: builtins.list[str]
    ) -> tuple[builtins.list[Doc], builtins.list[tuple[str, int | None]]]:
        docs: builtins.list[Doc] = []
        marks: builtins.list[tuple[str, int | None]] = []
        decode, table = self._store.row_codec.decode, self._store.table_name
        for sid, raw, runs in read_items(self._store, sessions):
            marks.append((sid, mark(self._marked, raw, runs)))
            docs += docs_of(sid, decode(raw) if raw is not None else None, runs, table)
        return docs, marks

    def close(self) -> None:
        self._store.close()


__all__ = ["ReadTask", "catch_up", "plan", "read_items"]
