"""The throwaway PostgreSQL server of devkit/pgserver.py, with the tests' skip-or-fail check.

Fixtures live in the test modules (``pytest_plugins`` is only allowed in
the root conftest); the pattern is::

    @pytest.fixture(scope="session")
    def pg_server() -> Iterator[PgServer]:
        require_pg()
        with running_server() as server:
            yield server
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from devkit.pgserver import (
    SERVER_USER,
    SUPERUSER,
    PgServer,
    create_database,
    find_bindir,
    free_port,
    missing_requirement,
    running_server,
    start_server,
)
from tests.support import require

__all__ = [
    "REQUIRE_ENV",
    "SERVER_USER",
    "SUPERUSER",
    "PgServer",
    "create_database",
    "find_bindir",
    "free_port",
    "login_role",
    "missing_requirement",
    "require_pg",
    "running_server",
    "start_server",
]

#: Set to ``1`` (as CI does) to turn a missing server or driver into a failure.
REQUIRE_ENV = "AGNO_STORAGE_REQUIRE_PG"


def require_pg() -> None:
    """Skip the calling test (or fail, under ``AGNO_STORAGE_REQUIRE_PG=1``)
    when the server binaries or the driver are missing."""
    reason = missing_requirement()
    require(reason is None, reason or "", env=REQUIRE_ENV)


_roles = itertools.count()


@contextmanager
def login_role(dsn: str, prefix: str) -> Iterator[tuple[str, str]]:
    """A login role of its own on the server of ``dsn`` (its name, its DSN), given only what the caller
    grants it; dropped with what it owns afterwards."""
    role = f"{prefix}_{next(_roles)}_{os.getpid()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        yield role, make_conninfo(dsn, user=role)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
