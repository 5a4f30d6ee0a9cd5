"""Hypothesis round trips of arbitrary JSON-compatible sessions through the store, every mode."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agno_storage import Mode, SqliteStorage
from agno_storage.modes import SPECS

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=25,
)
json_objects = st.none() | st.dictionaries(st.text(), json_values, max_size=5)
ids = st.text(min_size=1, max_size=30)
optional_ids = st.none() | st.text(min_size=1, max_size=30)


def sessions(mode: Mode) -> st.SearchStrategy[Any]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "session_id": ids,
        "user_id": optional_ids,
        "memory": json_objects,
        "session_data": json_objects,
        "extra_data": json_objects,
        "created_at": st.none() | st.integers(min_value=0, max_value=2**40),
    }
    if mode is Mode.AGENT:
        fields.update(agent_id=optional_ids, agent_data=json_objects, team_session_id=optional_ids)
    elif mode is Mode.TEAM:
        fields.update(team_id=optional_ids, team_data=json_objects, team_session_id=optional_ids)
    elif mode is Mode.WORKFLOW:
        fields.update(workflow_id=optional_ids, workflow_data=json_objects)
    else:
        fields.update(
            workflow_id=optional_ids,
            workflow_name=optional_ids,
            workflow_data=json_objects,
            runs=st.none() | st.lists(json_values, max_size=3) | st.dictionaries(st.text(), json_values, max_size=3),
        )
    return st.builds(SPECS[mode].session_class, **fields)


@pytest.mark.parametrize("mode", list(Mode))
def test_any_session_reads_back_as_written(tmp_path: Path, mode: Mode) -> None:
    store = SqliteStorage("s", db_file=tmp_path / "rt.db", mode=mode, allow_owner_change=True)
    #: session_id -> created_at of its first upsert: the session's own, or the clock's when it has none.
    created: dict[str, int] = {}

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(sessions(mode))
    def check(session: Any) -> None:
        before = int(time.time())
        stored = store.upsert(session)
        after = int(time.time())
        got = store.read(session.session_id)
        assert got == stored
        assert attrs.evolve(got, created_at=None, updated_at=None) == attrs.evolve(
            session, created_at=None, updated_at=None
        )
        # created_at is the session's own on insert, and kept by every later upsert of the session.
        if session.session_id not in created and session.created_at is None:
            assert got.created_at is not None and before <= got.created_at <= after
        created.setdefault(session.session_id, got.created_at if session.created_at is None else session.created_at)
        assert got.created_at == created[session.session_id]

    check()
    store.close()
