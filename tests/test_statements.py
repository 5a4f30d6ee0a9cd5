"""The engines' Statements: the pieces a reader composes (sort keys, columns) are the engines' own spelling."""

from __future__ import annotations

import attrs
import pytest

from agno_storage.models import Mode
from tests.conftest import StoreFactory


@pytest.mark.parametrize("mode", list(Mode))
def test_sort_keys_and_columns_are_spelled_as_the_statements_spell_them(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode)
    st = store.statements
    created, session_id = st.sort_keys()
    assert st.order.startswith(f" ORDER BY {created} DESC") and st.order.endswith(f", {session_id}")
    assert created == st.column("created_at") and session_id.startswith(st.id_column)
    assert (st.column("session_id"), st.column("user_id")) == (st.id_column, st.user_column)
    assert st.column(store.spec.entity_column) == st.entity_column
    for name in store.spec.names:
        assert st.column(name) in st.select.partition(" FROM ")[0]
    summary = ", ".join(st.column(n) for n in store.spec.summary_columns)
    assert st.select_summaries.startswith(f"SELECT {summary} FROM ")


def test_statements_of_another_order_are_refused_when_built(make_store: StoreFactory) -> None:
    st = make_store(Mode.AGENT).statements
    with pytest.raises(ValueError, match="order"):
        attrs.evolve(st, order=' ORDER BY "session_id"')
    with pytest.raises(ValueError, match="id_column"):
        attrs.evolve(st, id_column='"id"')
