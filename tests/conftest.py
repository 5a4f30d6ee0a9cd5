"""Fixtures shared by the test modules.

``make_store`` is the conformance fixture: tests that take it run once per
backend (SQLite, and PostgreSQL when a server can be started), so a
guarantee cannot hold on one backend only. ``tests/test_conformance.py``
runs them a third time on PostgreSQL with ``prepared_statements=True``.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from agno_storage import BaseStorage, Mode, SqliteStorage

StoreFactory = Callable[..., BaseStorage]

_table_ids = itertools.count()


COMPAT = Path(__file__).resolve().parent.parent / "compat"


@pytest.fixture(scope="session")
def go_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go commands of compat/ (writer, reader, hammer), built once per test run."""
    from tests.support import require

    go = shutil.which("go")
    require(go is not None, "the go toolchain is not installed (https://go.dev/dl/)", "AGNO_STORAGE_REQUIRE_GO")
    assert go is not None
    out = tmp_path_factory.mktemp("gobin")
    proc = subprocess.run(
        [go, "build", "-o", str(out) + os.sep, "./cmd/writer", "./cmd/reader", "./cmd/hammer"],
        cwd=COMPAT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"go build failed:\n{proc.stderr}"
    return out


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One throwaway PostgreSQL server for the whole run."""
    from tests.pgserver import require_pg, running_server

    require_pg()
    with running_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Build stores of the current backend; each call gets a fresh table unless one is named."""
    made: list[BaseStorage] = []
    db_file = tmp_path / "sessions.db"

    if backend.startswith("postgres"):
        from tests.support import require

        require(
            importlib.util.find_spec("agno_storage.backends.postgres") is not None,
            "the PostgreSQL backend is not built",
            "AGNO_STORAGE_REQUIRE_PG",
        )
        server = request.getfixturevalue("pg_server")

    def factory(mode: Mode | str = Mode.AGENT, **kwargs: Any) -> BaseStorage:
        name = kwargs.pop("table_name") if "table_name" in kwargs else f"t{next(_table_ids)}_{mode}"
        store: BaseStorage
        if backend == "sqlite":
            store = SqliteStorage(table_name=name, db_file=db_file, mode=mode, **kwargs)
        else:
            from agno_storage.backends.postgres import PostgresStorage

            if backend == "postgres-prepared":
                kwargs.setdefault("prepared_statements", True)
            store = PostgresStorage(table_name=name, db_url=server.dsn, mode=mode, **kwargs)
        made.append(store)
        return store

    yield factory
    for store in made:
        if backend.startswith("postgres"):
            store.drop()
        store.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under ``AGNO_STORAGE_FORBID_SKIPS=1`` (CI), a skipped test fails the run."""
    import os

    if os.environ.get("AGNO_STORAGE_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        for report in skipped:
            print(f"\nskipped in CI: {report.nodeid}: {report.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def serve() -> Iterator[Callable[..., AbstractContextManager[str]]]:
    """Serve a database (path or URL) with ``agno-storage serve``'s app on a free loopback port; yields its base URL."""
    from agno_storage.web.app import create_app
    from agno_storage.web.run import serving
    from agno_storage.web.source import Source, open_source

    sources: list[Source] = []

    @contextmanager
    def start(url: str, tokens: Any = None, **kwargs: Any) -> Iterator[str]:
        source = open_source(url, **kwargs)
        sources.append(source)
        with serving(create_app(source, tokens)) as base:
            yield base

    yield start
    for source in sources:
        source.close()


@pytest.fixture
def one_session(tmp_path: Path) -> Path:
    """A SQLite file holding one agent session, ``a-1`` (alice's): what the web tests serve."""
    from tests.sessions import make_session

    db = tmp_path / "one.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "a-1"))
    return db
