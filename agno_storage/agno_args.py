"""Where the arguments of an agno 1.x storage point: a URL's engine, a SQLAlchemy engine's URL or file, a
``db_file`` as agno's own ``SqliteStorage`` resolves it, and the options a core store takes.

:mod:`agno_storage.agno` builds its storages from these; nothing here imports agno.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, cast

from agno_storage import BaseStorage, urls
from agno_storage.errors import InvalidInputError
from agno_storage.schema import Engine

Backend = Literal["sqlite", "postgresql"]

#: The engine (as :mod:`agno_storage.schema` names it) whose core store each backend opens.
ENGINES: Final[Mapping[Backend, Engine]] = {"sqlite": "sqlite", "postgresql": "postgres"}

# Set by the adapter itself, so not accepted among the pass-through options.
_ADAPTER_OPTIONS = frozenset({"table_name", "db_url", "db_file", "mode", "schema", "auto_upgrade_schema"})


def backend_of_url(db_url: str) -> Backend:
    """Which core store a URL selects, as :func:`agno_storage.urls.parse` reads it.

    Raises InvalidInputError for a URL of no engine, before any connection is made.
    """
    return "sqlite" if isinstance(urls.parse(db_url, "db_url"), urls.SqliteTarget) else "postgresql"


def _engine_url(db_engine: Any, expected: Backend) -> Any:
    """The SQLAlchemy URL of ``db_engine``; InvalidInputError unless it is an ``expected`` engine."""
    url: Any = getattr(db_engine, "url", None)
    backend = url.get_backend_name() if url is not None and hasattr(url, "get_backend_name") else None
    if url is None or backend != expected:
        hint = {"sqlite": "SqliteStorage", "postgresql": "PostgresStorage"}.get(backend or "")
        instead = f"use agno_storage.agno.{hint} or pass db_url=" if hint else "pass db_url= instead"
        raise InvalidInputError(f"db_engine must be a SQLAlchemy {expected} engine here, got {url!r}; {instead}")
    return url


def sqlite_file_of_engine(db_engine: Any) -> str:
    """The database file behind a SQLAlchemy SQLite engine.

    Raises InvalidInputError for anything else: a non-SQLite engine, or an
    in-memory engine whose database no second connection could ever see.
    """
    database = cast(str | None, _engine_url(db_engine, "sqlite").database)
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise InvalidInputError(
            "db_engine points at an in-memory SQLite database, which only that engine can see; "
            "pass db_file= (or omit all three for a private in-memory store)"
        )
    return database


def postgres_url_of_engine(db_engine: Any) -> str:
    """The URL of a SQLAlchemy PostgreSQL engine, password included.

    Only the URL is used: the engine's pool, ``connect_args`` and event hooks
    are not. Raises InvalidInputError for any other engine.
    """
    return cast(str, _engine_url(db_engine, "postgresql").render_as_string(hide_password=False))


def as_agno_resolves(db_file: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
    """``db_file`` (a str or a ``Path``) as agno's SqliteStorage takes it: ``Path(db_file).resolve()`` at
    construction, so a relative name is the working directory's then, ``~`` is a folder of that name, not
    the home folder (the store would expand it: the file agno wrote would not be the one opened), and
    ``":memory:"`` is a file of that name (the store would keep its sessions in memory, and lose them)."""
    if not isinstance(db_file, str | os.PathLike) or db_file == "":
        return db_file
    try:
        return str(Path(db_file).resolve())
    except (OSError, ValueError):  # an embedded NUL, say: the store says why
        return db_file


def check_options(core_class: type[BaseStorage], options: dict[str, Any]) -> None:
    """Refuse pass-through options the chosen core store does not take, at construction."""
    accepted = {
        name
        for name, param in inspect.signature(core_class.__init__).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    } - _ADAPTER_OPTIONS
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidInputError(
            f"{core_class.__module__}.{core_class.__name__} takes no option {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(accepted))}"
        )


__all__ = [
    "ENGINES",
    "Backend",
    "as_agno_resolves",
    "backend_of_url",
    "check_options",
    "postgres_url_of_engine",
    "sqlite_file_of_engine",
]
