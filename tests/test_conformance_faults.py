"""Bad input every backend must refuse the same way: data that contains itself, settings that are not bools."""

from __future__ import annotations

from typing import Any

import pytest

from agno_storage import AgentSession, InvalidInputError
from tests.conftest import StoreFactory
from tests.support import finishes


def _self_containing() -> list[Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    items: list[Any] = []
    items.append(items)
    return [loop, {"items": items}, {"deep": [{"a": loop}]}]


@pytest.mark.parametrize("data", _self_containing(), ids=["dict", "list", "nested"])
def test_data_that_contains_itself_is_refused_without_hanging(make_store: StoreFactory, data: Any) -> None:
    store = make_store()
    with pytest.raises(InvalidInputError) as info:
        finishes(lambda: store.upsert(AgentSession(session_id="c", session_data=data)), within=20)
    assert (info.value.session_id, info.value.column) == ("c", "session_data")
    with pytest.raises(InvalidInputError):
        finishes(
            lambda: store.upsert_many([AgentSession(session_id="ok"), AgentSession(session_id="c", memory=data)]),
            within=20,
        )
    assert store.count() == 0, "a refused batch wrote nothing"


@pytest.mark.parametrize(
    "setting", [{"allow_owner_change": "false"}, {"auto_upgrade_schema": "yes"}, {"recency_indexes": 1}]
)
def test_a_setting_that_is_not_a_bool_is_refused(make_store: StoreFactory, setting: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as info:
        make_store(**setting)
    assert next(iter(setting)) in str(info.value)
