"""export, import and copy carry a Go Agent's agent_runs with the agent sessions they belong to."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from agno_storage import AgentSession, Mode, SqliteStorage
from agno_storage.cli import main
from agno_storage.errors import CorruptRowError, InvalidInputError, SchemaMismatchError, StorageError
from agno_storage.ops import runs
from agno_storage.ops.copy import copy_table
from agno_storage.ops.db import Database, open_database, open_store
from agno_storage.ops.errors import ExportFormatError, RowsKeptError
from agno_storage.ops.export import export_table
from agno_storage.ops.load import import_lines
from agno_storage.ops.select import Filters

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLE = "agent_sessions"


@pytest.fixture
def conv(tmp_path: Path) -> Path:
    """A file a real Go Agent wrote: agent-existing (a row and runs) and agent-new (runs only, no row)."""
    path = tmp_path / "conv.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    return path


def runs_of(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM agent_runs ORDER BY id").fetchall()


def conversations(path: Path) -> dict[str, list[tuple[str, str | None]]]:
    store = SqliteStorage(TABLE, db_file=path)
    try:
        ids = [s.session_id for s in store.list()] + store.runs_only_session_ids()
        return {sid: [(m.role, m.content) for m in store.history(sid)] for sid in sorted(ids)}
    finally:
        store.close()


def exported(path: Path, filters: Filters = Filters()) -> bytes:  # noqa: B008
    out = io.BytesIO()
    with open_database(str(path)) as db:
        export_table(db, TABLE, out, filters=filters)
    return out.getvalue()


def test_copy_into_sqlite_carries_the_runs_and_every_conversation(conv: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    for _ in range(2):  # a rerun gives the same table
        with open_database(str(conv)) as db:
            summary = copy_table(db, TABLE, str(target))
        assert (summary.sessions, summary.runs, summary.runs_left) == (1, 4, 0)
        assert runs_of(target) == runs_of(conv)
    assert conversations(target) == conversations(conv)
    assert set(conversations(conv)) == {"agent-existing", "agent-new"}
    with sqlite3.connect(target) as a, sqlite3.connect(conv) as b:
        ddl = "SELECT sql FROM sqlite_master WHERE name = 'agent_runs'"
        assert a.execute(ddl).fetchone() == b.execute(ddl).fetchone()  # agno-golang's own DDL


def test_an_export_holds_the_runs_and_an_import_puts_them_back(conv: Path, tmp_path: Path) -> None:
    data = exported(conv)
    lines = data.splitlines()
    header = orjson.loads(lines[0])
    assert (header["version"], header["agent_runs"]) == (2, True)
    assert [sorted(orjson.loads(line)) for line in lines[-4:]] == [["agent_run"]] * 4
    target = tmp_path / "imported.db"
    summary = import_lines(iter(lines), str(target), TABLE)
    assert (summary.sessions, summary.runs, summary.runs_left) == (1, 4, 0)
    assert runs_of(target) == runs_of(conv)
    assert conversations(target) == conversations(conv)
    assert exported(target) == data


def test_without_runs_the_file_is_version_1_as_before(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    header = orjson.loads(exported(path).splitlines()[0])
    assert header["version"] == 1 and "agent_runs" not in header


def test_filters_take_the_runs_of_the_sessions_they_select(conv: Path) -> None:
    """A user's export takes that user's runs, of a session with a row (its owner's) and of one without
    (agent-new, whose runs are all there is of it), and never another user's runs under either id."""
    nothing = exported(conv, Filters(since=2**40)).splitlines()
    assert len(nothing) == 1  # the header alone: no session, and no run of any
    with sqlite3.connect(conv) as conn:  # the fixture's runs are all user-1's: user-2 adds one to each session
        conn.executemany(
            "INSERT INTO agent_runs (id, session_id, user_id, created_at, updated_at) VALUES (?, ?, 'user-2', 9, 9)",
            [("user-2-in-existing", "agent-existing"), ("user-2-in-new", "agent-new")],
        )
    fixture_runs = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(4)]
    for user, expected in (("user-1", fixture_runs), ("user-2", ["user-2-in-new"])):
        lines = [orjson.loads(x) for x in exported(conv, Filters(user=user)).splitlines()[1:]]
        assert sorted(x["agent_run"]["id"] for x in lines if "agent_run" in x) == expected, user


def test_a_run_line_of_the_wrong_shape_names_its_line(conv: Path, tmp_path: Path) -> None:
    lines = exported(conv).splitlines()
    bad = orjson.loads(lines[-1])
    bad["agent_run"]["created_at"] = "yesterday"
    lines[-1] = orjson.dumps(bad)
    with pytest.raises(ExportFormatError) as caught:
        import_lines(iter(lines), str(tmp_path / "t.db"), TABLE)
    assert caught.value.line == len(lines)


def test_into_postgres_the_runs_left_behind_are_counted_and_said(
    conv: Path, tmp_path: Path, pg_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(pg_server.dsn)
    schema = f"runs_{tmp_path.name[-12:].replace('-', '_').lower()}"
    try:
        with open_database(str(conv)) as db:
            summary = copy_table(db, TABLE, url, to_table="runs_copy", schema=schema)
        assert (summary.sessions, summary.runs, summary.runs_left) == (1, 0, 4)
        export = tmp_path / "x.jsonl"
        export.write_bytes(exported(conv))
        code = main(["import", url, str(export), "--table", "runs_import", "--schema", schema])
        assert code == 0
        err = capsys.readouterr().err
        assert "warning: 4 agent_runs rows (Go Agent conversations) were not imported" in err
    finally:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_a_user_filter_never_carries_another_users_runs_under_the_same_id(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert(AgentSession(session_id="shared", user_id="alice", agent_id="a"))
    store.append_run("shared", "alice's question", "answer", user_id="alice")
    store.append_run("shared", "BOB SECRET", "noted", user_id="bob")
    store.close()
    lines = [orjson.loads(x) for x in exported(path, Filters(user="alice")).splitlines()[1:]]
    assert [x["agent_run"]["user_message"] for x in lines if "agent_run" in x] == ["alice's question"]
    everything = [orjson.loads(x) for x in exported(path).splitlines()[1:]]
    assert len([x for x in everything if "agent_run" in x]) == 2  # an unfiltered export keeps every row


def test_an_empty_agent_runs_leaves_the_file_version_1(tmp_path: Path) -> None:
    """enable_changes() makes agent_runs beside every agent table in SQLite: with no run in it, an earlier
    build still reads the export."""
    path = tmp_path / "s.db"
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    store.enable_changes()
    store.close()
    header = orjson.loads(exported(path).splitlines()[0])
    assert header["version"] == 1 and "agent_runs" not in header


def test_a_session_a_go_agent_went_on_with_counts_as_updated_by_its_runs(conv: Path) -> None:
    """``--since`` (an incremental export) takes a session whose row is old but whose newest run is not, with
    its runs; ``--until`` leaves it out, as prune keeps it."""
    with sqlite3.connect(conv) as conn:
        (row_time,) = conn.execute(
            "SELECT COALESCE(updated_at, created_at) FROM agent_sessions WHERE session_id = 'agent-existing'"
        ).fetchone()
        conn.execute(
            "INSERT INTO agent_runs (id, session_id, user_id, user_message, agent_message, messages, metrics, "
            "created_at) SELECT 'late', 'agent-existing', user_id, 'later', 'ok', '[]', '{}', ? FROM agent_runs "
            "WHERE session_id = 'agent-existing' LIMIT 1",
            (row_time + 1000,),
        )
    since = [orjson.loads(x) for x in exported(conv, Filters(since=row_time + 500)).splitlines()[1:]]
    assert [x["session_id"] for x in since if "session_id" in x] == ["agent-existing"]
    # All its runs, the old ones too: an import of this file alone gives the whole conversation.
    assert sorted(x["agent_run"]["id"] for x in since if "agent_run" in x) == [
        "00000000-0000-4000-8000-000000000000",
        "00000000-0000-4000-8000-000000000001",
        "late",
    ]
    until = [orjson.loads(x) for x in exported(conv, Filters(until=row_time + 500)).splitlines()[1:]]
    assert "agent-existing" not in [x.get("session_id") for x in until]


@pytest.mark.parametrize("table", ["agent_sessions", "r", "R"])
def test_time_filters_count_a_sessions_own_runs_whatever_the_tables_name(tmp_path: Path, table: str) -> None:
    """alice's row and run are old; bob's run under her id is new: her session was not updated by it
    (it is not her conversation's), whatever the table is called (an alias must not hide it)."""
    path = tmp_path / "s.db"
    store = SqliteStorage(table, db_file=path)
    store.upsert(AgentSession(session_id="alice-s", user_id="alice", agent_id="a"))
    store.upsert(AgentSession(session_id="other", user_id="carol", agent_id="a"))
    store.append_run("alice-s", "old question", "old answer", user_id="alice")
    store.append_run("alice-s", "bob's", "noted", user_id="bob")
    store.append_run("other", "fresh", "ok", user_id="carol")
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f'UPDATE "{table}" SET created_at = 100, updated_at = 100')
        conn.execute("UPDATE agent_runs SET created_at = 100, updated_at = 100 WHERE user_message != 'bob''s'")
        conn.execute("UPDATE agent_runs SET created_at = 5000, updated_at = 5000 WHERE user_message = 'bob''s'")
        conn.execute("UPDATE agent_runs SET created_at = 6000, updated_at = 6000 WHERE session_id = 'other'")

    def sessions(filters: Filters) -> list[str]:
        out = io.BytesIO()
        with open_database(str(path)) as db:
            export_table(db, table, out, filters=filters)
        return [x["session_id"] for x in map(orjson.loads, out.getvalue().splitlines()[1:]) if "session_id" in x]

    assert sessions(Filters(since=1000)) == ["other"]
    assert sessions(Filters(until=1000)) == ["alice-s"]


def test_a_copy_into_another_table_of_the_same_file_never_writes_agent_runs_back(conv: Path) -> None:
    """agent_runs is the file's one table, beside the copy as beside the source: the runs stay as they are.
    Written back from the copy's snapshot, the runs of a session deleted while the copy ran would come back."""

    class DeleteWhileCopying:
        def start(self, total: int | None) -> None:
            pass

        def advance(self, count: int) -> None:
            store = SqliteStorage(TABLE, db_file=conv)
            try:
                store.delete("agent-new")  # a session only agent_runs holds: its runs go
            finally:
                store.close()

    with open_database(str(conv)) as db:
        summary = copy_table(db, TABLE, str(conv), to_table="archive_sessions", progress=DeleteWhileCopying())
    assert (summary.sessions, summary.runs, summary.runs_left) == (1, 0, 0)
    assert "agent-new" not in {run[1] for run in runs_of(conv)}
    assert "agent-existing" in {run[1] for run in runs_of(conv)}


def test_runs_are_never_written_into_an_agent_runs_whose_ids_compare_case_blind(conv: Path, tmp_path: Path) -> None:
    """Another program's agent_runs with ``id ... COLLATE NOCASE``: run 'r1' would replace its run 'R1'."""
    target = tmp_path / "t.db"
    SqliteStorage(TABLE, db_file=target).close()
    with sqlite3.connect(target) as conn:
        conn.execute(
            "CREATE TABLE agent_runs (id TEXT PRIMARY KEY COLLATE NOCASE, session_id TEXT, user_id TEXT,"
            " run_name TEXT, run_data TEXT, user_message TEXT, agent_message TEXT, messages TEXT, metrics TEXT,"
            " created_at INTEGER, updated_at INTEGER)"
        )
        other = runs_of(conv)[0][0].swapcase()  # a UUID: its letters in the other case
        conn.execute("INSERT INTO agent_runs (id, session_id) VALUES (?, 'another')", (other,))
    before = runs_of(target)
    with pytest.raises(SchemaMismatchError, match="agent_runs"):
        import_lines(iter(exported(conv).splitlines()), str(target), TABLE)
    assert runs_of(target) == before


def test_a_copy_into_another_table_of_the_same_postgres_schema_leaves_no_run_behind(
    tmp_path: Path, pg_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """agent_runs of a schema is beside every table of it, as in one SQLite file: the copy's sessions have their
    runs there already. The copy said they were left behind (a warning, ``runs_left``); into another schema
    they are."""
    import psycopg

    url = str(pg_server.dsn)
    schema = f"runs_{tmp_path.name[-12:].replace('-', '_').lower()}"
    store = open_store(url, TABLE, Mode.AGENT, schema)
    store.upsert(AgentSession(session_id="s1", agent_id="a"))
    store.close()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                f"CREATE TABLE {schema}.agent_runs (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, user_id TEXT,"
                " run_name TEXT, run_data TEXT, user_message TEXT, agent_message TEXT, messages TEXT, metrics TEXT,"
                " created_at BIGINT, updated_at BIGINT)"
            )
            conn.execute(f"INSERT INTO {schema}.agent_runs (id, session_id) VALUES ('r1', 's1'), ('r2', 'go-only')")
        command = ["copy", url, "--schema", schema, "--table", TABLE, url]
        assert main([*command, "--to-table", "archive_sessions"]) == 0
        out, err = capsys.readouterr()
        assert "copied 1 sessions of table" in out and "warning" not in err
        with open_database(url, schema) as db:
            assert copy_table(db, TABLE, url, to_table="archive_sessions", schema=schema).runs_left == 0
            assert copy_table(db, TABLE, url, schema=f"{schema}_other").runs_left == 2
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"DROP SCHEMA IF EXISTS {schema}_other CASCADE")


# --- one snapshot -----------------------------------------------------------------------------

WRITERS = {
    "runs deleted": ["DELETE FROM agent_runs"],
    "agent_runs dropped": ["DROP TABLE agent_runs"],
    "a session and its runs added": [
        f"INSERT INTO {TABLE} (session_id, user_id, agent_id, created_at, updated_at) VALUES ('late', 'u', 'a', 1, 1)",
        "INSERT INTO agent_runs (id, session_id, created_at) VALUES ('late-run', 'late', 1)",
    ],
}


@pytest.fixture(params=sorted(WRITERS))
def writer_between(request: pytest.FixtureRequest, conv: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``conv`` in WAL mode, and a writer that changes agent_runs the moment export or copy has looked for runs
    in it.

    For "added", agent_runs is first emptied: a session and its runs then appear where there were none.
    """
    with sqlite3.connect(conv) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        if "added" in request.param:
            conn.execute("DELETE FROM agent_runs")
    original, done = runs.any_rows, []

    def look_then_write(db: Any, info: Any, filters: Filters) -> bool:
        answer = original(db, info, filters)
        if db.path == str(conv.resolve()) and not done:  # once, in conv only
            done.append(True)
            with sqlite3.connect(conv) as conn:
                for statement in WRITERS[request.param]:
                    conn.execute(statement)
        return answer

    monkeypatch.setattr(runs, "any_rows", look_then_write)
    return conv


def before_the_writer(path: Path, tmp_path: Path) -> Path:
    """A copy of ``path`` as it is now, which the writer never touches."""
    before = tmp_path / "before.db"
    with sqlite3.connect(path) as source, sqlite3.connect(before) as copy:
        source.backup(copy)
    return before


def test_an_export_is_the_table_and_its_runs_of_one_moment_whatever_a_writer_does_meanwhile(
    writer_between: Path, tmp_path: Path
) -> None:
    """Whether the file carries runs (its version) is decided in the snapshot its lines are read in: never a
    version 2 file with the runs gone, nor a version 1 file holding a session without the runs it had."""
    expected = exported(before_the_writer(writer_between, tmp_path))
    assert exported(writer_between) == expected
    assert b'"late"' not in expected and (b'"agent_run"' in expected) != (b'"version":1' in expected)


def test_a_copy_is_the_table_and_its_runs_of_one_moment_whatever_a_writer_does_meanwhile(
    writer_between: Path, tmp_path: Path
) -> None:
    with open_database(str(before_the_writer(writer_between, tmp_path))) as db:
        expected = copy_table(db, TABLE, str(tmp_path / "expected.db"))
    with open_database(str(writer_between)) as db:
        summary = copy_table(db, TABLE, str(tmp_path / "copy.db"))
    assert summary == expected
    assert exported(tmp_path / "copy.db") == exported(tmp_path / "expected.db")


def test_a_run_on_several_lines_of_the_file_is_one_run_imported(conv: Path, tmp_path: Path) -> None:
    """As for a session: the later line's values, counted once, so the summary says what agent_runs holds."""
    lines = exported(conv).splitlines()
    again = orjson.loads(lines[-1])
    again["agent_run"]["agent_message"] = "said again"
    target = tmp_path / "imported.db"
    summary = import_lines(iter([*lines, orjson.dumps(again)]), str(target), TABLE)
    assert summary.runs == len(runs_of(target)) == 4
    assert next(r for r in runs_of(target) if r[0] == again["agent_run"]["id"])[6] == "said again"


def test_a_copy_into_the_same_file_reads_one_moment_whatever_a_writer_does_to_agent_runs(
    conv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into another table of the source's own file, with --since (a session counts as updated when a run of
    its was): agent_runs dropped once the copy has first looked at it changes nothing the copy reads, neither
    an error about the sessions table nor a session counted and then left out."""
    since = Filters(since=1_700_000_001)  # agent-existing's row is older; its second run is not
    before = before_the_writer(conv, tmp_path)
    with open_database(str(before)) as db:
        expected = copy_table(db, TABLE, str(before), to_table="archive", filters=since)
    assert expected.sessions == 1
    original, done = Database.layout, []

    def look_then_drop(db: Database, table: str) -> Any:
        answer = original(db, table)
        if table == "agent_runs" and db.path == str(conv.resolve()) and not done:
            done.append(True)
            with sqlite3.connect(conv) as conn:  # another program, at once after the copy looked
                conn.execute("DROP TABLE agent_runs")
            conn.close()
        return answer

    monkeypatch.setattr(Database, "layout", look_then_drop)
    with open_database(str(conv)) as db:
        assert copy_table(db, TABLE, str(conv), to_table="archive", filters=since) == expected
    assert done
    with sqlite3.connect(conv) as conn:
        assert conn.execute("SELECT session_id FROM archive").fetchall() == [("agent-existing",)]
    conn.close()


def test_runs_a_trigger_keeps_out_without_an_error_stop_copy_and_import(conv: Path, tmp_path: Path) -> None:
    """A run another program's trigger skips (``RAISE(IGNORE)``) is no run written: the count would say it was."""
    target = tmp_path / "copy.db"
    with open_database(str(conv)) as db:
        copy_table(db, TABLE, str(target))
    with sqlite3.connect(target) as conn:
        conn.execute(
            "CREATE TRIGGER skip BEFORE INSERT ON agent_runs WHEN NEW.id = '00000000-0000-4000-8000-000000000002'"
            " BEGIN SELECT RAISE(IGNORE); END"
        )
        conn.execute("DELETE FROM agent_runs")
    with open_database(str(conv)) as db, pytest.raises(RowsKeptError, match="kept 1 of the 4 agent_runs rows"):
        copy_table(db, TABLE, str(target))
    with pytest.raises(RowsKeptError, match="kept 1 of the 4 agent_runs rows"):
        import_lines(iter(exported(conv).splitlines()), str(target), TABLE)
    assert runs_of(target) == []  # the batch rolled back whole


@pytest.mark.parametrize("name", ["agent_runs", "Agent_Runs"])
def test_import_and_copy_refuse_a_sessions_table_named_agent_runs_and_make_nothing(
    conv: Path, tmp_path: Path, name: str
) -> None:
    """agent_runs is where a Go Agent keeps its runs, and where export, prune and doctor read them: sessions
    written into a table of that name (one table in SQLite, whatever the case) would be read as broken runs, and
    the runs carried with them would be written into the sessions themselves."""
    target = tmp_path / "t.db"
    with open_database(str(conv)) as db, pytest.raises(InvalidInputError, match="agent_runs"):
        copy_table(db, TABLE, str(target), to_table=name)
    with pytest.raises(InvalidInputError, match="agent_runs"):
        import_lines(iter(exported(conv).splitlines()), str(target), name)
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_a_run_batch_that_fails_says_the_sessions_before_it_were_written(conv: Path, tmp_path: Path) -> None:
    """The runs go in after every session is committed: a run batch that fails leaves those sessions written, and
    its error says so (it said only that the batch of runs was rolled back, as if nothing had been written)."""
    target = tmp_path / "copy.db"
    with open_database(str(conv)) as db:
        copy_table(db, TABLE, str(target))
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON agent_runs BEGIN SELECT RAISE(ABORT, 'refused'); END")
        conn.execute("DELETE FROM agent_runs")
        conn.execute(f"DELETE FROM {TABLE}")
    with open_database(str(conv)) as db, pytest.raises(StorageError) as refused:
        copy_table(db, TABLE, str(target))
    assert "1 sessions were written before the agent_runs batch that failed, none of that batch" in str(refused.value)
    assert "running it again completes it" not in str(refused.value)  # the trigger would refuse it again
    with pytest.raises(RowsKeptError) as kept:
        with sqlite3.connect(target) as conn:
            conn.execute("DROP TRIGGER refuse")
            conn.execute(
                "CREATE TRIGGER skip BEFORE INSERT ON agent_runs WHEN NEW.id = '00000000-0000-4000-8000-000000000002'"
                " BEGIN SELECT RAISE(IGNORE); END"
            )
        import_lines(iter(exported(conv).splitlines()), str(target), TABLE)
    assert "1 sessions were written before the agent_runs batch that failed" in str(kept.value)
    with sqlite3.connect(target) as conn:
        assert conn.execute(f"SELECT session_id FROM {TABLE}").fetchall() == [("agent-existing",)]
    conn.close()
    assert runs_of(target) == []


def _repeat_a_run_id_in_another_session(path: Path) -> str:
    """Rebuild ``agent_runs`` without its primary key (another program's DDL) and give a second session a run
    under an id the first holds; return that id."""
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(agent_runs)")]
        conn.execute("ALTER TABLE agent_runs RENAME TO old_runs")
        typed = ", ".join(f"{c} {'INTEGER' if c.endswith('_at') else 'TEXT'}" for c in columns)
        conn.execute(f"CREATE TABLE agent_runs ({typed})")
        conn.execute("INSERT INTO agent_runs SELECT * FROM old_runs")
        conn.execute("DROP TABLE old_runs")
        run = conn.execute("SELECT * FROM agent_runs WHERE session_id = 'agent-existing' LIMIT 1").fetchone()
        conn.execute(
            f"INSERT INTO agent_runs VALUES ({', '.join('?' for _ in columns)})", (run[0], "agent-new", *run[2:])
        )
    return str(run[0])


def test_a_run_id_two_sessions_hold_stops_copy_and_export_before_anything_is_written(
    conv: Path, tmp_path: Path
) -> None:
    """Written by id, one run would replace the other: a conversation would lose a run with the copy saying it went."""
    run_id = _repeat_a_run_id_in_another_session(conv)
    target = tmp_path / "copy.db"
    with open_database(str(conv)) as db, pytest.raises(CorruptRowError) as caught:
        copy_table(db, TABLE, str(target))
    assert run_id in str(caught.value) and "agent-existing" in str(caught.value) and "agent-new" in str(caught.value)
    assert (caught.value.table, caught.value.column) == ("agent_runs", "id")
    assert not target.exists()
    out = io.BytesIO()
    with open_database(str(conv)) as db, pytest.raises(CorruptRowError):
        export_table(db, TABLE, out)
    assert out.getvalue() == b""


def test_runs_are_never_written_into_an_agent_runs_that_does_not_key_them_by_id(conv: Path, tmp_path: Path) -> None:
    """Another program's agent_runs without agno-golang's primary key: a rerun would add every run again."""
    target = tmp_path / "copy.db"
    with sqlite3.connect(target) as conn:
        columns = ", ".join(f"{c} {'INTEGER' if c.endswith('_at') else 'TEXT'}" for c in runs.COLUMNS)
        conn.execute(f"CREATE TABLE agent_runs ({columns})")
    for _ in range(2):
        with open_database(str(conv)) as db, pytest.raises(SchemaMismatchError, match="primary key"):
            copy_table(db, TABLE, str(target))
        with pytest.raises(SchemaMismatchError, match="primary key"):
            import_lines(iter(exported(conv).splitlines()), str(target), TABLE)
    assert runs_of(target) == []
