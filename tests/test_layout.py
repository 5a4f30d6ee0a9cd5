"""A table's layout (columns, indexes, DDL) reads the same through the store and through the operations."""

from __future__ import annotations

import pytest

from agno_storage import SqliteStorage
from agno_storage.models import Mode
from agno_storage.ops.db import open_database
from tests.conftest import StoreFactory
from tests.sessions import make_session


@pytest.mark.parametrize("mode", [Mode.AGENT, Mode.WORKFLOW_V2])
def test_the_operations_read_the_layout_the_store_reads(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode)
    store.upsert(make_session(mode, "s"))
    if isinstance(store, SqliteStorage):
        assert store.db_path is not None
        url, db_schema = store.db_path, None
    else:
        from agno_storage import PostgresStorage

        assert isinstance(store, PostgresStorage)
        url, db_schema = store.db_url, store.schema
    with open_database(url, db_schema) as db:
        layout = db.layout(store.table_name)
        assert db.layout("no_such_table") is None
    assert layout is not None and layout == store._table_layout()
    columns, indexes, _ = layout
    assert sorted(columns) == sorted(store.spec.names)
    # agno's index names as the core tells who made a table: ix_<table>_..., with no schema in between.
    assert f"{'ix' if db_schema else 'idx'}_{store.table_name}_user_id" in indexes
