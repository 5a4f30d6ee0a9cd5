"""Open a store from one URL, so switching engines is a configuration change."""

from __future__ import annotations

from typing import Any

from agno_storage.backends.base import BaseStorage
from agno_storage.errors import InvalidInputError, StorageError
from agno_storage.models import Mode


def open_storage(url: str, table_name: str, mode: Mode | str | None = Mode.AGENT, **kwargs: Any) -> BaseStorage:
    """A store for ``url``: ``sqlite:///path.db`` or ``postgresql://user@host/db``.

    Extra keyword arguments go to the backend's constructor (for PostgreSQL,
    ``schema``, ``pool_size``, ``connect_timeout``...). The PostgreSQL
    backend is imported only when asked for, so SQLite needs no driver.
    Raises InvalidInputError for any other scheme.
    """
    if not isinstance(url, str):
        raise InvalidInputError(f"url must be a str, got {url!r}")
    scheme = url.partition("://")[0].split("+")[0].lower()
    if scheme == "sqlite":
        from agno_storage.backends.sqlite import SqliteStorage

        return SqliteStorage(table_name, db_url=url, mode=mode, **kwargs)
    if scheme in ("postgresql", "postgres"):
        try:
            from agno_storage.backends.postgres import PostgresStorage
        except ImportError as exc:
            raise StorageError(
                f"PostgreSQL needs psycopg: pip install 'agno_storage[postgres]' ({exc})", table=table_name
            ) from exc

        return PostgresStorage(table_name, db_url=url, mode=mode, **kwargs)
    raise InvalidInputError(f"url must start with sqlite:// or postgresql://, got {url!r}")


__all__ = ["open_storage"]
