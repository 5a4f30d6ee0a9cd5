"""The agno 3 records' converter is strict both ways."""

from __future__ import annotations

import pytest

from agno_storage.agno3.records import Agno3Run, make_converter


def _row() -> dict[str, object]:
    return {
        "run_id": "r1",
        "session_id": "s1",
        "run_type": "agent",
        "agent_id": "a",
        "team_id": None,
        "workflow_id": None,
        "user_id": "u",
        "parent_run_id": None,
        "status": "COMPLETED",
        "run_index": 0,
        "run_data": {"content": "hi"},
        "created_at": 1,
        "updated_at": None,
    }


def test_a_row_round_trips() -> None:
    converter = make_converter()
    run = converter.structure(_row(), Agno3Run)
    assert converter.unstructure(run) == _row()


@pytest.mark.parametrize(("key", "value"), [("run_id", 5), ("run_index", "0"), ("created_at", 1.5), ("run_data", [])])
def test_nothing_is_coerced(key: str, value: object) -> None:
    with pytest.raises(Exception):  # noqa: B017 - cattrs wraps the hook's TypeError in its own group
        make_converter().structure({**_row(), key: value}, Agno3Run)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(Exception):  # noqa: B017
        make_converter().structure({**_row(), "extra": 1}, Agno3Run)
