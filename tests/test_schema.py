"""Table DDL, version detection and upgrades on SQLite."""

from __future__ import annotations

import multiprocessing
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from agno_storage import Mode, SchemaMismatchError, SchemaVersionError, SqliteStorage
from agno_storage.modes import spec
from agno_storage.schema import CURRENT_VERSION, Flavor
from tests.sessions import make_session

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

_NOW = "INTEGER DEFAULT (strftime('%s', 'now'))"
_COMMON = (
    "session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, memory TEXT, session_data TEXT, extra_data TEXT, "
    f"created_at {_NOW}, updated_at {_NOW}"
)
# The Go port's Create() statements, written out by hand from its source.
GO_DDL = {
    Mode.AGENT: (
        f"CREATE TABLE IF NOT EXISTS s ({_COMMON}, agent_id TEXT NOT NULL, agent_data TEXT, team_session_id TEXT)",
        ["user_id", "created_at", "agent_id", "team_session_id"],
    ),
    Mode.TEAM: (
        f"CREATE TABLE IF NOT EXISTS s ({_COMMON}, team_id TEXT NOT NULL, team_data TEXT, team_session_id TEXT)",
        ["user_id", "created_at", "team_id", "team_session_id"],
    ),
    Mode.WORKFLOW: (
        f"CREATE TABLE IF NOT EXISTS s ({_COMMON}, workflow_id TEXT NOT NULL, workflow_data TEXT)",
        ["user_id", "created_at", "workflow_id"],
    ),
    Mode.WORKFLOW_V2: (
        f"CREATE TABLE IF NOT EXISTS s ({_COMMON}, workflow_id TEXT NOT NULL, workflow_name TEXT NOT NULL, "
        "workflow_data TEXT, runs TEXT)",
        ["user_id", "created_at", "workflow_id", "workflow_name"],
    ),
}


def _master(path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()


@pytest.mark.parametrize("mode", list(Mode))
def test_created_table_is_byte_identical_to_the_go_ports(tmp_path: Path, mode: Mode) -> None:
    table_sql, indexed = GO_DDL[mode]
    go_db = tmp_path / "go.db"
    with sqlite3.connect(go_db) as conn:
        conn.execute(table_sql)
        for col in indexed:
            conn.execute(f"CREATE INDEX IF NOT EXISTS idx_s_{col} ON s ({col})")
    ours = tmp_path / "ours.db"
    store = SqliteStorage("s", db_file=ours, mode=mode, recency_indexes=False)
    store.create()
    store.close()
    assert _master(ours) == _master(go_db)


@pytest.mark.parametrize("mode", list(Mode))
def test_recency_indexes_sit_beside_the_go_ddl(tmp_path: Path, mode: Mode) -> None:
    plain = tmp_path / "plain.db"
    SqliteStorage("s", db_file=plain, mode=mode, recency_indexes=False).create()
    indexed = tmp_path / "indexed.db"
    store = SqliteStorage("s", db_file=indexed, mode=mode)
    store.create()
    extra = [row for row in _master(indexed) if row not in _master(plain)]
    assert [name for _, name, _ in extra] == sorted(name for _, name, _ in extra)
    assert {name for _, name, _ in extra} == {
        "rx_s_user_id_recent",
        f"rx_s_{spec(mode).entity_column}_recent",
        "rx_s_all_recent",
    }
    # The store's own "newest first" statements, for a user, an entity and all: each an index walk.
    statements: list[tuple[str, list[object]]] = []
    store.tracer = lambda sql, params: statements.append((sql, list(params or [])))
    store.list(user_id="u", limit=20)
    store.list(entity_id="e", limit=20)
    store.list(limit=20)
    store.list_summaries(limit=20)
    assert len(statements) == 4
    with sqlite3.connect(indexed) as conn:
        for sql, params in statements:
            plan = " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "USING INDEX rx_s_" in plan and "TEMP B-TREE" not in plan, (sql, plan)


def test_recency_indexes_can_be_added_to_a_go_table_later(tmp_path: Path) -> None:
    path = tmp_path / "go.db"
    table_sql, _ = GO_DDL[Mode.AGENT]
    with sqlite3.connect(path) as conn:
        conn.execute(table_sql)
    store = SqliteStorage("s", db_file=path)
    store.create_recency_indexes()
    store.create_recency_indexes()
    names = {name for kind, name, _ in _master(path) if kind == "index"}
    assert {"rx_s_user_id_recent", "rx_s_agent_id_recent", "rx_s_all_recent"} <= names
    assert next(sql for kind, name, sql in _master(path) if kind == "table") == table_sql.replace(" IF NOT EXISTS", "")


@pytest.mark.parametrize("mode", list(Mode))
def test_new_table_reports_current_version_and_go_flavor(tmp_path: Path, mode: Mode) -> None:
    store = SqliteStorage("s", db_file=tmp_path / "x.db", mode=mode)
    assert store.schema_shape() is None
    store.create()
    shape = store.schema_shape()
    assert shape is not None
    assert (shape.mode, shape.version, shape.flavor) == (mode, CURRENT_VERSION, Flavor.GO)


@pytest.mark.parametrize("mode", [Mode.AGENT, Mode.TEAM])
def test_an_upgraded_go_table_gets_the_go_ports_index_on_the_added_column(tmp_path: Path, mode: Mode) -> None:
    """A Go-made table from before team_session_id, upgraded, is what the Go port's Create() makes today."""
    table_sql, indexed = GO_DDL[mode]
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute(table_sql.replace(", team_session_id TEXT", ""))
        for col in indexed[:-1]:
            conn.execute(f"CREATE INDEX IF NOT EXISTS idx_s_{col} ON s ({col})")
    go_db = tmp_path / "go.db"
    with sqlite3.connect(go_db) as conn:
        conn.execute(table_sql)
        for col in indexed:
            conn.execute(f"CREATE INDEX IF NOT EXISTS idx_s_{col} ON s ({col})")
    store = SqliteStorage("s", db_file=old, mode=mode, recency_indexes=False)
    store.upgrade_schema()
    store.close()
    assert _master(old) == _master(go_db)


def _pre12_copy(tmp_path: Path) -> Path:
    """agno 1.1's agent table: no team_session_id column (it has team_id instead)."""
    path = tmp_path / "pre12.db"
    shutil.copy(FIXTURES / "agno_agent_v110.db", path)
    return path


def test_old_agent_table_needs_an_explicit_upgrade(tmp_path: Path) -> None:
    path = _pre12_copy(tmp_path)
    before = _master(path)
    store = SqliteStorage("agent_sessions", db_file=path, mode="agent")
    shape = store.schema_shape()
    assert shape is not None and shape.version == 1 and shape.missing == {"team_session_id"}
    with pytest.raises(SchemaVersionError, match=r"upgrade_schema\(\)") as info:
        store.read("anything")
    assert info.value.found_version == 1
    with pytest.raises(SchemaVersionError):
        store.upsert(make_session(Mode.AGENT, "new"))
    assert _master(path) == before, "a refused open must not touch the file"


def test_upgrade_adds_the_column_and_keeps_every_row(tmp_path: Path) -> None:
    path = _pre12_copy(tmp_path)
    with sqlite3.connect(path) as conn:
        rows_before = conn.execute("SELECT session_id, memory FROM agent_sessions ORDER BY session_id").fetchall()
    assert rows_before, "the fixture holds sessions"
    store = SqliteStorage("agent_sessions", db_file=path, mode="agent")
    store.upgrade_schema()
    shape = store.schema_shape()
    assert shape is not None and shape.version == CURRENT_VERSION and shape.flavor is Flavor.AGNO
    with sqlite3.connect(path) as conn:
        rows_after = conn.execute("SELECT session_id, memory FROM agent_sessions ORDER BY session_id").fetchall()
    indexes = _index_names(path)
    assert rows_after == rows_before
    assert not any(name.startswith("idx_") for name in indexes), "like agno's own upgrade: the column only"
    sessions = store.list()
    assert len(sessions) == len(rows_before)
    assert all(s.team_session_id is None for s in sessions)
    store.upsert(make_session(Mode.AGENT, "new", team_session_id="ts"))
    got = store.read("new")
    assert got is not None and got.team_session_id == "ts"
    store.upgrade_schema()  # idempotent
    table = sqlite_utils.Database(path)["agent_sessions"]
    assert isinstance(table, sqlite_utils.db.Table)
    assert table.columns_dict["team_session_id"] is str
    assert list(table.columns_dict).count("team_session_id") == 1
    assert table.pks == ["session_id"]


def _columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]


def test_auto_upgrade_schema_upgrades_on_open(tmp_path: Path) -> None:
    path = _pre12_copy(tmp_path)
    assert "team_session_id" not in _columns(path, "agent_sessions")
    store = SqliteStorage("agent_sessions", db_file=path, mode="agent", auto_upgrade_schema=True)
    # Upgraded by the constructor, before any read or write.
    assert _columns(path, "agent_sessions").count("team_session_id") == 1
    assert store.list(), "the old rows read after the automatic upgrade"
    shape = store.schema_shape()
    assert shape is not None and shape.version == CURRENT_VERSION
    store.close()


def test_old_team_table_is_upgraded_in_place(tmp_path: Path) -> None:
    # agno before 1.2 made team tables without team_session_id, as it did agent tables.
    path = tmp_path / "team_pre12.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE team_sessions (session_id VARCHAR NOT NULL, user_id VARCHAR, memory JSON, "
            "session_data JSON, extra_data JSON, created_at INTEGER, updated_at INTEGER, team_id VARCHAR, "
            "team_data JSON, PRIMARY KEY (session_id))"
        )
        conn.execute("CREATE INDEX ix_team_sessions_team_id ON team_sessions (team_id)")
        conn.execute(
            "INSERT INTO team_sessions VALUES ('t1', 'u1', '{\"runs\": []}', null, null, 5, null, 'team-a', "
            '\'{"name": "crew"}\')'
        )
    store = SqliteStorage("team_sessions", db_file=path, mode="team")
    with pytest.raises(SchemaVersionError, match=r"upgrade_schema\(\)"):
        store.read("t1")
    store.upgrade_schema()
    assert _columns(path, "team_sessions")[-1] == "team_session_id"
    old = store.read("t1")
    assert old is not None
    assert (old.team_id, old.team_data, old.memory, old.team_session_id) == (
        "team-a",
        {"name": "crew"},
        {"runs": []},
        None,
    )
    store.upsert(make_session(Mode.TEAM, "t2", team_session_id="parent"))
    new = store.read("t2")
    assert new is not None and new.team_session_id == "parent"
    assert _index_names(path) == {"ix_team_sessions_team_id", "sqlite_autoindex_team_sessions_1"}, "no index added"
    store.close()


def _upgrade(path: str, ready: Any, go: Any, arrived: Any) -> None:
    store = SqliteStorage("agent_sessions", db_file=path, mode="agent")
    real = store.transaction

    def announced() -> Any:
        arrived.set()  # on the way to the write lock the test holds
        return real()

    store.transaction = announced  # type: ignore[method-assign]
    ready.set()
    go.wait()
    store.upgrade_schema()
    store.close()


def test_two_processes_upgrade_the_same_file_at_once(tmp_path: Path) -> None:
    """Both processes read the old table and queue for the write lock before either adds the column: the
    second to get the lock must see the column the first added, not add it again."""
    path = _pre12_copy(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    events = [(ctx.Event(), ctx.Event()) for _ in range(2)]
    procs = [ctx.Process(target=_upgrade, args=(str(path), ready, go, arrived)) for ready, arrived in events]
    for p in procs:
        p.start()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        assert all(ready.wait(60) for ready, _ in events)
        holder.execute("BEGIN IMMEDIATE")
        go.set()
        assert all(arrived.wait(60) for _, arrived in events)
    finally:
        holder.close()  # ends its transaction: the lock goes
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(agent_sessions)")]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert columns.count("team_session_id") == 1


@pytest.mark.parametrize("auto_upgrade", [False, True])
def test_a_v1_workflow_table_is_never_made_a_workflow_v2_table_on_sqlite(tmp_path: Path, auto_upgrade: bool) -> None:
    """agno's SQLite storage never made a workflow_v2 table without workflow_name and runs (1.7.4, its first with
    v2, has both): a table of that shape is a v1 workflow table (agno 1.8.4 wrote this one). Opened as workflow_v2
    it is refused, not upgraded, so its v1 sessions stay readable and their memory is never written over."""
    import shutil

    from tests.test_compat_go import FIXTURES

    path = tmp_path / "agno_workflow.db"
    shutil.copy(FIXTURES / "agno_workflow.db", path)

    def rows() -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT session_id, memory FROM workflow_sessions ORDER BY session_id").fetchall()

    before = (_columns(path, "workflow_sessions"), rows())
    assert any(memory for _, memory in before[1])
    with pytest.raises(SchemaMismatchError, match="is a workflow table, not a workflow_v2 table"):
        SqliteStorage("workflow_sessions", db_file=path, mode="workflow_v2", auto_upgrade_schema=auto_upgrade)
    assert (_columns(path, "workflow_sessions"), rows()) == before
    assert len(SqliteStorage("workflow_sessions", db_file=path, mode="workflow").list()) == len(before[1])


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE s (id INTEGER PRIMARY KEY, payload TEXT)",
        # An agent table without its memory column.
        "CREATE TABLE s (session_id TEXT PRIMARY KEY, user_id TEXT, agent_id TEXT, created_at INTEGER)",
    ],
)
def test_unknown_shapes_are_refused_and_left_alone(tmp_path: Path, ddl: str) -> None:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
    before = path.read_bytes()
    with pytest.raises(SchemaMismatchError):
        SqliteStorage("s", db_file=path, mode="agent")
    assert path.read_bytes() == before, "not even the journal mode changes"
    assert not Path(f"{path}-wal").exists()


#: An agent table as the Go port declares it, column by column (a test swaps one declaration).
_AGENT_COLUMNS = {
    "session_id": "session_id TEXT PRIMARY KEY",
    "user_id": "user_id TEXT NOT NULL",
    "memory": "memory TEXT",
    "session_data": "session_data TEXT",
    "extra_data": "extra_data TEXT",
    "created_at": f"created_at {_NOW}",
    "updated_at": f"updated_at {_NOW}",
    "agent_id": "agent_id TEXT NOT NULL",
    "agent_data": "agent_data TEXT",
    "team_session_id": "team_session_id TEXT",
}


@pytest.mark.parametrize(
    ("declared", "column"),
    [
        # SQLite converts a value to the column's affinity: the store would write what it cannot read back.
        ("created_at TEXT", "created_at"),  # integers kept as text
        ("updated_at REAL", "updated_at"),  # integers kept as floats
        ("user_id INTEGER NOT NULL", "user_id"),  # "42" kept as 42
        ("agent_id NUMERIC NOT NULL", "agent_id"),  # "1e3" kept as 1000
        ("session_id INTEGER PRIMARY KEY", "session_id"),  # the rowid: no text at all
    ],
)
def test_a_column_whose_type_sqlite_would_convert_values_to_is_refused(
    tmp_path: Path, declared: str, column: str
) -> None:
    columns = _AGENT_COLUMNS
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE s ({', '.join({**columns, column: declared}.values())})")
    before = path.read_bytes()
    with pytest.raises(SchemaMismatchError, match=f"{column} is declared") as info:
        SqliteStorage("s", db_file=path, mode="agent")
    assert info.value.table == "s"
    assert path.read_bytes() == before
    # Types that keep the store's values as written still open: agno's VARCHAR and JSON, a bare column.
    agno_types = {**columns, column: columns[column].replace(" TEXT", " VARCHAR").replace(" INTEGER", " BIGINT")}
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE s")
        conn.execute(
            f"CREATE TABLE s ({', '.join({**agno_types, 'memory': 'memory JSON', 'extra_data': 'extra_data'}.values())})"
        )
    store = SqliteStorage("s", db_file=path, mode="agent")
    assert store.read(store.upsert(make_session(Mode.AGENT, "1e3", user_id="42")).session_id) is not None


@pytest.mark.parametrize(
    ("declared", "column"),
    [
        ("user_id TEXT NOT NULL COLLATE NOCASE", "user_id"),  # 'ALICE' would read and write alice's sessions
        ("user_id TEXT NOT NULL COLLATE rtrim", "user_id"),  # and so would 'alice '
        ("session_id TEXT COLLATE NOCASE PRIMARY KEY", "session_id"),
        ('"agent_id" TEXT NOT NULL COLLATE "NoCase"', "agent_id"),
    ],
)
def test_a_text_column_that_compares_other_than_exactly_is_refused(tmp_path: Path, declared: str, column: str) -> None:
    """Owner scoping rests on exact comparison: a table whose user_id compared case-blind made ``'ALICE'`` the
    owner of alice's sessions in every read, list and write of the store."""
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE s ({', '.join({**_AGENT_COLUMNS, column: declared}.values())})")
        conn.execute("INSERT INTO s (session_id, user_id, agent_id) VALUES ('s1', 'alice', 'a')")
    before = path.read_bytes()
    with pytest.raises(SchemaMismatchError, match=f"{column} compares by collation") as info:
        SqliteStorage("s", db_file=path, mode="agent")
    assert info.value.table == "s"
    assert path.read_bytes() == before
    # BINARY spelled out, and a collation on a column the store never compares, still open.
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE s")
        spelled_out = re.sub(r"COLLATE \S+", "COLLATE BINARY", declared)
        binary = {**_AGENT_COLUMNS, column: spelled_out, "memory": "memory TEXT COLLATE NOCASE"}
        conn.execute(f"CREATE TABLE s ({', '.join(binary.values())})")
    store = SqliteStorage("s", db_file=path, mode="agent")
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    assert store.read("s1", user_id="ALICE") is None


def _index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def _journal(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.mark.parametrize("read_only", [False, True])
def test_upgrade_schema_of_a_current_or_absent_table_leaves_the_file_as_it_was(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "agno.db"
    shutil.copy(FIXTURES / "agno_agent.db", path)  # agno 1.8.4's current table, rollback journal
    before = path.read_bytes()
    for table in ("agent_sessions", "absent_sessions"):
        store = SqliteStorage(table, db_file=path, read_only=read_only)
        store.upgrade_schema()
        store.close()
    assert path.read_bytes() == before and _journal(path) == "delete"


def test_reads_of_an_absent_table_leave_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    shutil.copy(FIXTURES / "agno_team.db", path)  # another program's file, rollback journal
    before = path.read_bytes()
    store = SqliteStorage("agent_sessions", db_file=path)
    assert (store.table_exists(), store.list(), store.read("x"), store.count()) == (False, [], None, 0)
    store.close()
    assert path.read_bytes() == before and _journal(path) == "delete"
    # The first write creates the table, and the store switches the file to WAL first.
    store = SqliteStorage("agent_sessions", db_file=path)
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert _journal(path) == "wal"
    store.close()


def test_a_table_created_inside_a_transaction_still_gets_wal(tmp_path: Path) -> None:
    # SQLite cannot change the journal mode inside a transaction: a transaction() is a
    # write, so the switch comes just before its BEGIN.
    path = tmp_path / "fresh.db"
    store = SqliteStorage("s", db_file=path)
    assert _journal(path) == "delete"
    with store.transaction():
        store.upsert(make_session(Mode.AGENT, "s1"))
        store.upsert(make_session(Mode.AGENT, "s2"))
    assert _journal(path) == "wal"
    assert store.count() == 2
    store.close()


def test_a_refused_store_closes_its_connection(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    shutil.copy(FIXTURES / "agno_team.db", path)

    def open_files() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if str(fd.readlink() if fd.is_symlink() else "") == str(path))

    refusals = []
    for _ in range(3):
        with pytest.raises(SchemaMismatchError) as info:
            SqliteStorage("team_sessions", db_file=path, mode="agent")
        refusals.append(info)  # kept alive: nothing may depend on garbage collection
    assert open_files() == 0


@pytest.mark.parametrize("fixture", ["agno_team.db", "go_workflow.db"])
def test_another_modes_table_is_refused_and_the_file_left_byte_for_byte(tmp_path: Path, fixture: str) -> None:
    path = tmp_path / fixture
    shutil.copy(FIXTURES / fixture, path)
    with sqlite3.connect(path) as conn:
        table, journal = (
            conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0],
            conn.execute("PRAGMA journal_mode").fetchone()[0],
        )
    before = path.read_bytes()
    with pytest.raises(SchemaMismatchError):
        SqliteStorage(table, db_file=path, mode="agent")
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal
    # The right mode opens and reads it as it is; its first write switches it to WAL.
    store = SqliteStorage(table, db_file=path, mode="team" if "team" in fixture else "workflow")
    sessions = store.list()
    assert sessions
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal
    store.upsert(sessions[0])
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_v2_table_is_not_a_v1_workflow_table(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    SqliteStorage("s", db_file=path, mode="workflow_v2").create()
    with pytest.raises(SchemaMismatchError) as info:
        SqliteStorage("s", db_file=path, mode="workflow")
    assert info.value.found_mode == "workflow_v2"


def test_columns_other_writers_added_survive_updates(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStorage("s", db_file=path, mode="agent")
    store.create()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE s ADD COLUMN note TEXT")
    store.upsert(make_session(Mode.AGENT, "s1"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE s SET note = 'keep me' WHERE session_id = 's1'")
        rowid = conn.execute("SELECT rowid FROM s WHERE session_id = 's1'").fetchone()
    store.upsert(make_session(Mode.AGENT, "s1", memory={"v": 2}))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT note, rowid FROM s WHERE session_id = 's1'").fetchone() == ("keep me", rowid[0])
