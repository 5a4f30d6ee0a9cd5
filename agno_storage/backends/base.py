"""BaseStorage: the public API, the core (:mod:`~agno_storage.backends.core`) with its features.

The features (conversations, search, usage, the change feed, a Go Agent's
runs) are modules of their own over the store's interface; their methods
here check their arguments and hand the store over. ``drop`` and ``delete``
are here too: a table's search index and change feed go with it, and a
session's ``agent_runs`` rows with it. Then agno 1.x's method names.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from agno_storage import agent_runs, changes, conversation, search, usage
from agno_storage.backends.core import StoreCore, check_id, check_user
from agno_storage.backends.statements import EQUALS, IDS, filter_kind
from agno_storage.errors import InvalidInputError, TableNotFoundError
from agno_storage.models import Session


class BaseStorage(StoreCore):
    """A sessions table of one mode.

    Thread-safe: one object may be shared by many threads. Every method
    raises a subclass of :class:`~agno_storage.errors.StorageError` on
    failure; none returns ``None`` to mean "something went wrong".

    ``tracer``, if set (a constructor argument or an attribute), is called as
    ``tracer(statement, params)`` before every statement the store runs on
    its own behalf, from the thread that runs it; for a batch, ``params`` is
    the list of parameter rows. Statements a caller runs on the connection
    ``transaction()`` yields are the caller's own and are not traced.
    """

    def drop(self) -> None:
        """Drop the table and its indexes if it exists, with its search index and change feed if enabled.

        The search index and the change feed are about this table (their
        triggers go with it): one transaction removes them all. A consumer of
        the feed then gets StorageError ("not enabled"), never a feed that
        stopped logging.
        """
        with self.transaction():
            search.disable_search(self)
            changes.disable_changes(self)
            self._drop()
        self._forget_shape()

    def delete(self, session_id: str, user_id: str | None = None) -> bool:
        """Delete a session; with ``user_id``, only if that user owns it. True if a row went.

        On an agent table in SQLite the session's ``agent_runs`` rows (a Go Agent's runs) go in the
        same transaction, also for a session only ``agent_runs`` holds; see :mod:`agno_storage.agent_runs`.
        ``''`` deletes a row another writer stored with an empty session_id (agno-golang takes one; this
        store never writes it, and ``read`` refuses it as it refuses writing it).
        """
        check_id(session_id, "session_id", self.table_name, empty=True)
        check_user(user_id, self.table_name)
        if self._unmatchable(session_id, user_id):
            return False
        if self._checked_shape(create=False) is None:
            # No sessions table: a Go Agent may have made agent_runs alone, holding the session's runs.
            return agent_runs.delete_runs_only(self, session_id, user_id) if agent_runs.applies(self) else False
        how = filter_kind(user_id)
        params = [session_id, user_id] if how == EQUALS else [session_id]
        try:
            if agent_runs.applies(self):
                return agent_runs.delete_session(self, session_id, user_id)
            return self._execute_write(self.statements.delete_for(how), params) > 0
        except TableNotFoundError:
            if not self._vanished():
                raise
            return False

    # --- conversations (agno_storage.conversation, agent_runs) -------------

    def history(self, session_id: str, user_id: str | None = None) -> builtins.list[conversation.Message]:
        """The session's conversation in order, each message once, whichever writer stored it.

        Owner-scoped as ``read``; ``[]`` for an unknown session or one with no
        conversation; CorruptRowError for one of the wrong shape. See
        :func:`agno_storage.conversation.history`.
        """
        check_id(session_id, "session_id", self.table_name)
        check_user(user_id, self.table_name)
        return conversation.history(self, session_id, user_id)

    def runs_only_session_ids(self, user_id: str | None = None) -> builtins.list[str]:
        """Sessions a Go Agent ran that have ``agent_runs`` rows but no session row (not in ``list()``)."""
        check_user(user_id, self.table_name)
        return agent_runs.runs_only_sessions(self, user_id)

    def search(
        self, query: str, user_id: str | None = None, entity_id: str | None = None, limit: int = 20
    ) -> builtins.list[search.SearchHit]:
        """Messages holding every word of ``query``, best first, from every session this table has.

        Scans every session unless :meth:`enable_search` built the index. See
        :func:`agno_storage.search.search` and docs/search.md.
        """
        check_user(user_id, self.table_name)
        check_user(entity_id, self.table_name, "entity_id")
        if self._unmatchable(user_id, entity_id):
            search.check_args(self, query, limit)
            return []
        return search.search(self, query, user_id, entity_id, limit)

    def enable_search(self) -> None:
        """Build the full-text index and the triggers that log changes for it (opt-in; docs/search.md)."""
        search.enable_search(self)

    def disable_search(self) -> None:
        """Remove the full-text index, its log and its triggers."""
        search.disable_search(self)

    def usage(
        self,
        user_id: str | None = None,
        entity_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> builtins.list[usage.Usage]:
        """Token and run figures per (entity, user, UTC day, model); ``None`` where no writer kept a figure.

        See :func:`agno_storage.usage.usage`.
        """
        check_user(user_id, self.table_name)
        check_user(entity_id, self.table_name, "entity_id")
        return usage.usage(self, user_id, entity_id, since, until)

    def append_run(
        self,
        session_id: str,
        user_message: str,
        agent_message: str,
        *,
        user_id: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> conversation.RunRow:
        """Append a run to ``agent_runs`` in agno-golang's exact format (agent tables in SQLite only).

        See :func:`agno_storage.agent_runs.append_run`.
        """
        return agent_runs.append_run(
            self, session_id, user_message, agent_message, user_id=user_id, messages=messages, metrics=metrics
        )

    def enable_changes(self, retention: int = changes.DEFAULT_RETENTION) -> None:
        """Start the change feed: every write to the table, by any program, is logged (opt-in; docs/search.md)."""
        changes.enable_changes(self, retention)

    def disable_changes(self) -> None:
        """Stop the change feed and drop its log."""
        changes.disable_changes(self)

    def changes(self, since: int = 0, limit: int = 1000, user_id: str | None = None) -> builtins.list[changes.Change]:
        """Changes after cursor ``since``, in cursor order; see :func:`agno_storage.changes.changes`.

        Cursor order is commit order on SQLite. On PostgreSQL it is the order
        in which the writers' transactions got their transaction id, which is
        not always the order they committed in (docs/search.md). On
        PostgreSQL this writes (it assigns cursors): a read-only connection
        or role cannot read the feed.
        """
        check_user(user_id, self.table_name)
        return changes.changes(self, since, limit, user_id)

    # --- agno 1.x names ----------------------------------------------------

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> builtins.list[str]:
        """Session ids newest first, optionally filtered by user and entity."""
        check_user(user_id, self.table_name)
        check_user(entity_id, self.table_name, "entity_id")
        if self._checked_shape(create=False) is None:
            return []
        rows = self._select(session_id=None, user_id=user_id, entity_id=entity_id, limit=None, projection=IDS)
        self.row_codec.check_ids(rows)
        return [r[0] for r in rows]

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> builtins.list[Session]:
        return self.list(user_id=user_id, entity_id=entity_id)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> builtins.list[Session]:
        """The ``limit`` newest sessions (all of them if ``limit`` is None)."""
        return self.list(user_id=user_id, entity_id=entity_id, limit=limit)

    def delete_session(self, session_id: str | None = None) -> bool:
        """Delete a session by id, whoever owns it. True if a row went."""
        if session_id is None:
            raise InvalidInputError("delete_session needs a session_id", table=self.table_name)
        return self.delete(session_id)

    # --- lifetime ----------------------------------------------------------

    def __enter__(self) -> BaseStorage:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["BaseStorage"]
