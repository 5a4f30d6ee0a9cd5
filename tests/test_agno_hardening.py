"""The agno adapter on both engines: owner scoping, typed settings, and the core store refused as storage=."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agno")
pytest.importorskip("agno_storage.agno")

from agno.storage.session.agent import AgentSession as AgnoAgentSession

from agno_storage import InvalidInputError
from agno_storage import SqliteStorage as CoreSqliteStorage
from agno_storage.agno import PostgresStorage, SqliteStorage
from devkit.fake_model import FakeModel
from tests.agno_runner import make_agent

_tables = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def make_agno_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Build agno adapter storages on one table of the current engine; dropped and closed after."""
    made: list[Any] = []
    table = f"agent_sessions_{next(_tables)}"
    dsn = request.getfixturevalue("pg_server").dsn if request.param == "postgres" else None

    def factory(**options: Any) -> Any:
        storage: Any
        if dsn is None:
            storage = SqliteStorage(table_name=table, db_file=str(tmp_path / "agno.db"), **options)
        else:
            storage = PostgresStorage(table_name=table, db_url=dsn, **options)
        made.append(storage)
        return storage

    yield factory
    for storage in made:
        storage.close()
    if dsn is not None:
        cleaner = PostgresStorage(table_name=table, db_url=dsn)
        cleaner.drop()
        cleaner.close()


def test_a_storage_scoped_to_bob_never_returns_alices_session(make_agno_storage: Any) -> None:
    alice = make_agno_storage(user_id="alice")
    alice.upsert(AgnoAgentSession(session_id="A1", user_id="alice", memory={"runs": []}))
    bob = make_agno_storage(user_id="bob")
    bob.upsert(AgnoAgentSession(session_id="B1", user_id="bob", memory={"runs": []}))
    # Asking for alice by name does not widen bob's scope.
    assert bob.read("A1", user_id="alice") is None
    assert bob.read("A1") is None
    assert bob.get_all_sessions(user_id="alice") == []
    assert bob.get_all_session_ids(user_id="alice") == []
    assert bob.get_recent_sessions(user_id="alice") == []
    # Asking for no user in particular gives bob's own sessions only.
    assert bob.get_all_session_ids() == ["B1"]
    assert [s.session_id for s in bob.get_all_sessions()] == ["B1"]
    assert [s.session_id for s in bob.get_recent_sessions()] == ["B1"]
    # Alice's own storage still sees it.
    found = alice.read("A1", user_id="alice")
    assert found is not None and found.user_id == "alice"
    assert alice.get_all_session_ids(user_id="alice") == ["A1"]
    assert [s.session_id for s in alice.get_all_sessions()] == ["A1"]


@pytest.mark.parametrize(
    "setting", [{"allow_owner_change": "false"}, {"auto_upgrade_schema": "yes"}, {"recency_indexes": 1}]
)
def test_a_setting_that_is_not_a_bool_is_refused(make_agno_storage: Any, setting: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as info:
        storage = make_agno_storage(**setting)
        storage.create()
    assert next(iter(setting)) in str(info.value)


def test_the_core_store_given_to_an_agno_agent_says_which_class_to_use(tmp_path: Path) -> None:
    core = CoreSqliteStorage("agent_sessions", db_file=tmp_path / "agno.db")
    with pytest.raises(InvalidInputError) as info:
        agent = make_agent(core, "s1", "alice", FakeModel())  # type: ignore[arg-type]
        agent.run("hello")
    assert "agno_storage.agno" in str(info.value)
