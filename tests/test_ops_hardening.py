"""The operations never destroy what they read, keep what another table or user still has, hide passwords,
and say what is wrong with a damaged file."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, SqliteStorage
from agno_storage.cli import main
from tests.support import kill_writer_midway

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DAY = 86400


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def two_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A file with an agent table (and agent_runs) and a team table."""
    path = tmp_path / "f.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    assert main(["copy", str(FIXTURES / "go_team.db"), "--table", "team_sessions", str(path)]) == 0
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").connection.close()
    capsys.readouterr()
    return path


def table_names(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    finally:
        conn.close()


# --- an output that is the database read ------------------------------------------


@pytest.mark.parametrize("how", ["same path", "symbolic link", "hard link", "its -wal", "its -journal"])
def test_export_refuses_an_output_that_is_the_database_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    path = two_tables(tmp_path, capsys)
    output = {
        "same path": path,
        "symbolic link": tmp_path / "link.db",
        "hard link": tmp_path / "hard.db",
        "its -wal": Path(f"{path}-wal"),
        "its -journal": tmp_path / "hard.db-journal",  # the journal of the same file by another name
    }[how]
    if how == "symbolic link":
        output.symlink_to(path)
    if how in ("hard link", "its -journal"):
        os.link(path, tmp_path / "hard.db")
    before = digest(path)
    code = main(["export", str(path), "--table", "agent_sessions", "-o", str(output)])
    err = capsys.readouterr().err
    assert code == 2
    assert "is the database" in err
    assert digest(path) == before
    assert "team_sessions" in table_names(path)
    assert not Path(f"{output}.partial").exists()


def test_export_never_takes_a_database_named_like_a_temporary_file_for_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Export's temporary file has a name no file had (mkstemp): ``sessions.partial`` is left as it is."""
    path = tmp_path / "sessions.partial"
    shutil.copy(FIXTURES / "go_agent.db", path)
    before = digest(path)
    assert main(["export", str(path), "--table", "agent_sessions", "-o", str(tmp_path / "sessions")]) == 0
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions", "sessions.partial"]


def test_backup_never_writes_nor_removes_the_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "sessions.partial"
    shutil.copy(FIXTURES / "go_agent.db", source)
    before = digest(source)
    # Named as DEST.partial: the backup's temporary file has a name no file had, and this one is left as it is.
    assert main(["backup", str(source), str(tmp_path / "sessions")]) == 0
    assert digest(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions", "sessions.partial"]
    # The source's journal: a database written there would be read as the source's journal.
    assert main(["backup", str(source), f"{source}-journal"]) == 2
    assert not Path(f"{source}-journal").exists()
    assert digest(source) == before
    # ... also through a link to it (dangling, as a journal that is not there leaves it).
    for side in ("-journal", "-wal", "-shm"):
        link = tmp_path / f"link{side}.db"
        link.symlink_to(f"{source}{side}")
        assert main(["backup", str(source), str(link)]) == 2
        assert main(["copy", str(source), "--table", "agent_sessions", str(link)]) == 2
        assert "is the database" in capsys.readouterr().err
        assert not Path(f"{source}{side}").exists()
    assert digest(source) == before
    assert main(["backup", str(source), str(tmp_path / "copy.db")]) == 0


def test_copy_refuses_the_sources_own_files_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    before = digest(path)
    assert main(["copy", str(path), "--table", "agent_sessions", f"{path}-journal"]) == 2
    assert "is the database" in capsys.readouterr().err
    assert not Path(f"{path}-journal").exists()
    assert main(["copy", str(path), "--table", "agent_sessions", str(path)]) == 2
    assert "source table" in capsys.readouterr().err
    assert digest(path) == before
    # Another table of the same file is a copy like any other.
    assert main(["copy", str(path), "--table", "agent_sessions", str(path), "--to-table", "archive_sessions"]) == 0


def test_copy_refuses_the_source_table_spelled_in_another_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    before = digest(path)
    assert main(["copy", str(path), "--table", "agent_sessions", str(path), "--to-table", "AGENT_SESSIONS"]) == 2
    assert "the source table" in capsys.readouterr().err
    assert digest(path) == before


def test_import_refuses_reading_the_database_it_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    before = digest(path)
    assert main(["import", str(path), "--table", "agent_sessions", str(path)]) == 2
    assert "is the database" in capsys.readouterr().err
    assert digest(path) == before


# --- prune keeps the runs another table or another user still has -------------------


def history_lines(path: Path, session_id: str, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert main(["history", str(path), "--table", "agent_sessions", session_id]) == 0
    return len(capsys.readouterr().out.splitlines())


def test_prune_keeps_the_runs_of_a_session_another_table_still_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    assert main(["copy", str(path), "--table", "agent_sessions", str(path), "--to-table", "archive_sessions"]) == 0
    lines = history_lines(path, "agent-existing", capsys)
    assert lines > 1
    assert main(["prune", str(path), "--table", "archive_sessions", "--older-than", "1d", "--dry-run"]) == 0
    assert "and 2 agent_runs rows" in capsys.readouterr().out  # agent-new's only: it has no session row
    assert main(["prune", str(path), "--table", "archive_sessions", "--older-than", "1d"]) == 0
    assert "and 2 agent_runs rows" in capsys.readouterr().out
    assert history_lines(path, "agent-existing", capsys) == lines


@pytest.mark.parametrize("table", ["agent_sessions", "AGENT_SESSIONS"])  # SQLite folds the case of names
def test_prune_of_one_user_leaves_another_users_runs_under_the_same_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str
) -> None:
    path = tmp_path / "f.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO agent_sessions (session_id, user_id, memory, session_data, extra_data, created_at, updated_at,"
        " agent_id, agent_data) VALUES ('shared', 'alice', '{}', '{}', '{}', 1000, 1000, 'ag', '{}')"
    )
    conn.executemany(
        "INSERT INTO agent_runs (id, session_id, user_id, created_at, updated_at) VALUES (?, 'shared', ?, 1000, 1000)",
        [("alice-run", "alice"), ("unowned-run", None), ("bob-run", "bob")],
    )
    conn.commit()
    conn.close()
    args = ["prune", str(path), "--table", table, "--older-than", "1d", "--user", "alice"]
    assert main([*args, "--dry-run"]) == 0
    assert "and 2 agent_runs rows" in capsys.readouterr().out
    assert main(args) == 0
    assert "and 2 agent_runs rows" in capsys.readouterr().out
    conn = sqlite3.connect(path)
    left = [r[0] for r in conn.execute("SELECT id FROM agent_runs WHERE session_id = 'shared'")]
    conn.close()
    assert left == ["bob-run"]


def test_prune_refuses_a_mode_the_table_is_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    before = digest(path)
    assert main(["prune", str(path), "--table", "agent_sessions", "--mode", "team", "--older-than", "1d"]) == 2
    assert "not a team table" in capsys.readouterr().err
    assert digest(path) == before


# --- passwords ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "password"),
    [
        (["tables", "postgresql://app:Tr0ub%dor@db.invalid/app"], "Tr0ub%dor"),
        (["info", "postgresql://app:Tr0ub%dor@db.invalid/app", "--table", "agent_sessions"], "Tr0ub%dor"),
        (
            [
                "copy",
                str(FIXTURES / "go_agent.db"),
                "--table",
                "agent_sessions",
                "postgresql://app:q8/Zx+Tr0ub@db.invalid/app",
            ],
            "Zx+Tr0ub",
        ),
    ],
)
def test_a_url_libpq_cannot_read_is_refused_at_once_without_its_password(
    args: list[str], password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cannot read the PostgreSQL URL" in err  # said before any attempt to connect
    assert password not in err
    assert password.replace("%", "") not in err


# --- doctor on a damaged file -------------------------------------------------------


def test_doctor_reports_a_damaged_page_as_an_integrity_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    with path.open("r+b") as f:  # zeros inside a page of agent_sessions' b-tree
        f.seek(253914)
        f.write(b"\0" * 200)
    assert main(["doctor", str(path)]) == 3
    out = capsys.readouterr().out
    assert "problem: integrity_check:" in out
    assert "reading table agent_sessions stopped: database disk image is malformed" in out
    assert out.rstrip().endswith("problems found")


def hot_journal(tmp_path: Path) -> Path:
    """A rollback-journal file whose writer was killed in the middle of a transaction."""
    path = tmp_path / "h.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    kill_writer_midway(path)
    return path


def test_a_hot_journal_is_named_with_how_to_recover(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hot_journal(tmp_path)
    assert main(["doctor", str(path)]) == 3
    out = capsys.readouterr().out
    assert "has a hot journal" in out
    assert "PRAGMA quick_check" in out
    session = "agent-existing"
    for args in (
        ["backup", str(path), str(tmp_path / "b.db")],
        ["export", str(path), "--table", "agent_sessions", "-o", str(tmp_path / "e.jsonl")],
        # The inspecting commands on the store read-only too: not "cannot be written".
        ["info", str(path), "--table", "agent_sessions"],
        ["list", str(path), "--table", "agent_sessions"],
        ["show", str(path), "--table", "agent_sessions", session],
        ["history", str(path), "--table", "agent_sessions", session],
        ["search", str(path), "--table", "agent_sessions", "hello"],
        ["usage", str(path), "--table", "agent_sessions"],
    ):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "has a hot journal" in err, args
        assert "readonly database" not in err
    assert not (tmp_path / "b.db").exists()
    assert Path(f"{path}-journal").stat().st_size > 0  # nothing rolled it back


def test_prune_rolls_a_hot_journal_back_and_prunes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hot_journal(tmp_path)
    before, journal = digest(path), digest(Path(f"{path}-journal"))
    # A dry run writes nothing, the journal's rollback included: it says what is wrong.
    assert main(["prune", str(path), "--table", "agent_sessions", "--older-than", "1d", "--dry-run"]) == 2
    assert "has a hot journal" in capsys.readouterr().err
    assert (digest(path), digest(Path(f"{path}-journal"))) == (before, journal)
    assert main(["prune", str(path), "--table", "agent_sessions", "--older-than", "1d"]) == 0
    assert "removed 17 sessions" in capsys.readouterr().out  # the rows the killed writer had deleted were back


def test_a_live_writers_journal_is_not_rolled_back(tmp_path: Path) -> None:
    """A -journal beside a file another process is writing is no hot journal: it is left to that writer."""
    from agno_storage.ops.db import roll_back_hot_journal

    path = tmp_path / "live.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode = DELETE")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM agent_sessions")
    assert Path(f"{path}-journal").exists()
    roll_back_hot_journal(path)  # no error, and nothing of the writer's is undone
    writer.execute("COMMIT")
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM agent_sessions").fetchone()[0] == 0


def test_doctor_finds_agent_runs_values_export_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE agent_runs SET created_at = 1700000002.5 WHERE id LIKE '%2'")
    conn.commit()
    conn.close()
    assert main(["doctor", str(path)]) == 3
    out = capsys.readouterr().out
    assert "problem: agent_runs.created_at session 'agent-new'" in out
    assert "1700000002.5" in out
    assert main(["export", str(path), "--table", "agent_sessions", "-o", str(tmp_path / "r.jsonl")]) == 2


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:SECRET/x?y@127.0.0.1:1/postgres",
        "postgresql://postgres:SECRET/x%zz@127.0.0.1:1/postgres",
        "postgresql://postgres:SECRET/x@127.0.0.1:1/postgres?sslpassword=SSLSECRET",
        "postgresql://postgres:Pw@SECRETPART@127.0.0.1:1/postgres",
    ],
)
def test_a_password_libpq_would_misread_is_never_shown(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["tables", url], ["info", url, "--table", "agent_sessions"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "cannot read the PostgreSQL URL" in err and "SECRET" not in err, err


@pytest.mark.parametrize(
    "url", ["postgresql://app@db.example/team%40prod", "postgresql://app@db.example/postgres?dbname=team@prod"]
)
def test_a_database_name_holding_an_at_sign_is_a_url_libpq_reads(url: str) -> None:
    from agno_storage.backends.pg_conn import describe_server
    from agno_storage.ops.db import check_conninfo

    check_conninfo(url)
    assert describe_server(url) == "db.example:5432/team@prod"


def test_the_server_a_url_names_never_shows_a_password_libpq_read_as_its_host() -> None:
    from agno_storage.backends.pg_conn import describe_server

    shown = describe_server("postgresql://app:q8/Zx+Tr0ub@db.invalid:5432/app")
    assert "q8" not in shown
    assert "Zx+Tr0ub" not in shown
    assert describe_server("postgresql://app:secret@db.example:6432/app") == "db.example:6432/app"


def test_a_file_whose_name_is_not_utf8_is_opened_read_only_by_the_ops_commands(tmp_path: Path) -> None:
    """A file name of bytes that are not UTF-8 (os.fsdecode gives surrogate escapes) opens read-only (``mode=ro``
    URI of its bytes), as the commands that only read it open it; a str quote of it raised UnicodeEncodeError."""
    from agno_storage import AgentSession, SqliteStorage
    from agno_storage.ops.db import connect_readonly

    db = Path(os.fsdecode(bytes(tmp_path) + b"/s\xff.db"))
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a"))
    store.close()
    conn = connect_readonly(db)
    assert conn.execute("SELECT session_id FROM agent_sessions").fetchall() == [("s1",)]
    conn.close()


# --- PostgreSQL: what the server refuses or ends while a command reads is one line, exit 2 -------------------------


@pytest.fixture
def pg_db(pg_server: Any, capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    """A fresh database (its URL) holding ai.agent_sessions, copied from a Go fixture; dropped afterwards."""
    import psycopg

    from tests.pgserver import create_database

    name = "ops_read_errors"
    url = create_database(pg_server, name)
    assert main(["copy", str(FIXTURES / "go_agent_conversation.db"), "--table", "agent_sessions", url]) == 0
    capsys.readouterr()
    try:
        yield url
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def session_ids(url: str, table: str = '"ai"."agent_sessions"') -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(f"SELECT session_id FROM {table} ORDER BY session_id")]


def test_a_postgres_table_named_with_a_percent_sign_is_read_as_any_other(
    pg_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another program's ``ai."old_100%"``: a ``%`` in a name is no placeholder to the driver."""
    import psycopg

    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute('CREATE TABLE ai."old_100%" (LIKE ai.agent_sessions INCLUDING ALL)')
        conn.execute('INSERT INTO ai."old_100%" SELECT * FROM ai.agent_sessions')
    expected = session_ids(pg_db)
    assert main(["tables", pg_db]) == 0
    assert "old_100%" in capsys.readouterr().out
    assert main(["doctor", pg_db]) == 0
    assert main(["export", pg_db, "--table", "old_100%", "--user", "", "-o", str(tmp_path / "empty.jsonl")]) == 0
    assert main(["export", pg_db, "--table", "old_100%", "-o", str(tmp_path / "all.jsonl")]) == 0
    assert len((tmp_path / "all.jsonl").read_bytes().splitlines()) == 1 + len(expected)  # the header, each session
    capsys.readouterr()
    # The store that deletes takes plain SQL names only: prune refuses the table, its dry run too.
    assert main(["prune", pg_db, "--table", "old_100%", "--older-than", "1d", "--dry-run"]) == 2
    assert "plain SQL identifier" in capsys.readouterr().err
    copied = tmp_path / "copied.db"
    assert main(["copy", pg_db, "--table", "old_100%", str(copied), "--to-table", "archive_sessions"]) == 0
    assert session_ids(pg_db, 'ai."old_100%"') == expected
    conn = sqlite3.connect(copied)
    assert [r[0] for r in conn.execute("SELECT session_id FROM archive_sessions ORDER BY session_id")] == expected
    conn.close()


def test_prune_on_postgres_keeps_the_runs_of_a_session_a_table_named_with_a_percent_sign_holds(
    pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The statements prune writes with name ``ai."old_100%"`` too (the runs another table still has stay)."""
    import psycopg

    (session,) = session_ids(pg_db)
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE ai.agent_runs (id text PRIMARY KEY, session_id text NOT NULL, user_id text, run_name text,"
            " run_data text, user_message text, agent_message text, messages text, metrics text, created_at bigint,"
            " updated_at bigint)"
        )
        conn.execute('CREATE TABLE ai."old_100%" (LIKE ai.agent_sessions INCLUDING ALL)')
        conn.execute('INSERT INTO ai."old_100%" SELECT * FROM ai.agent_sessions')
        conn.execute(
            "INSERT INTO ai.agent_runs (id, session_id, created_at, updated_at) VALUES (%s, %s, 1000, 1000)",
            ("its-run", session),
        )
    assert main(["prune", pg_db, "--table", "agent_sessions", "--older-than", "1d"]) == 0
    assert "removed 1 sessions" in capsys.readouterr().out
    assert session_ids(pg_db) == []
    assert session_ids(pg_db, "ai.agent_runs") == [session]  # old_100% still has the session


def test_a_postgres_role_that_may_not_read_a_table_is_told_so_by_every_command(
    pg_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """USAGE on the schema, no SELECT on the table: not "no sessions table", "all is well" or a traceback."""
    import psycopg

    role = "ops_no_select"
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA ai TO {role}")
    limited = pg_db.replace("postgres@", f"{role}@", 1)
    try:
        for argv in (
            ["tables", limited],
            ["doctor", limited],
            ["export", limited, "--table", "agent_sessions", "-o", str(tmp_path / "out.jsonl")],
            ["prune", limited, "--table", "agent_sessions", "--older-than", "1d", "--dry-run"],
            ["copy", limited, "--table", "agent_sessions", str(tmp_path / "out.db")],
        ):
            assert (argv[0], main(argv)) == (argv[0], 2)
            err = capsys.readouterr().err
            assert "permission denied for table agent_sessions" in err
            assert len(err.splitlines()) == 1
        assert list(tmp_path.iterdir()) == []
    finally:
        with psycopg.connect(pg_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


class EndsTheReader:
    """A progress that has the server end every other connection to ``url`` once the first batch is done."""

    def __init__(self, url: str) -> None:
        self.url = url

    def start(self, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            others = "datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            conn.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}")
            while conn.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {others}").fetchone()[0]:
                conn.execute("SELECT pg_sleep(0.01)")  # until the server has ended them


@pytest.mark.parametrize("command", ["export", "copy"])
def test_a_postgres_connection_the_server_ends_midway_is_one_connection_lost_error(
    pg_db: str, tmp_path: Path, command: str
) -> None:
    """The rest of the read is a ConnectionLostError (exit 2 from the command), and closing the ended connection
    raises nothing more."""
    import psycopg

    from agno_storage.errors import ConnectionLostError
    from agno_storage.ops.copy import copy_table
    from agno_storage.ops.db import open_database
    from agno_storage.ops.export import export_table

    with psycopg.connect(pg_db, autocommit=True) as conn:  # 2,500 more sessions: read in batches of 1,000
        conn.execute(
            "INSERT INTO ai.agent_sessions (session_id, agent_id, memory, created_at, updated_at) "
            "SELECT 'bulk-' || i, 'agent-1', '{}', 1700000000, 1700000000 FROM generate_series(1, 2500) AS i"
        )
    with pytest.raises(ConnectionLostError), open_database(pg_db) as db:
        if command == "export":
            export_table(db, "agent_sessions", io.BytesIO(), progress=EndsTheReader(pg_db))
        else:
            copy_table(db, "agent_sessions", str(tmp_path / "out.db"), progress=EndsTheReader(pg_db))


# --- ids another program declared case-blind ----------------------------------------

_CASE_BLIND = (
    "CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY, user_id TEXT COLLATE NOCASE, memory TEXT,"
    " session_data TEXT, extra_data TEXT, created_at INTEGER, updated_at INTEGER, agent_id TEXT, agent_data TEXT,"
    " team_session_id TEXT)"
)


def test_a_user_filter_on_a_table_whose_owners_compare_case_blind_is_refused_not_widened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'ALICE' = 'alice' there: export --user alice would hand over ALICE's sessions, and the dry run of a prune
    would list them though the prune itself is refused."""
    path = tmp_path / "f.db"
    conn = sqlite3.connect(path)
    conn.execute(_CASE_BLIND)
    conn.executemany(
        "INSERT INTO agent_sessions VALUES (?, ?, '{}', '{}', '{}', 1000, 1000, 'ag', '{}', NULL)",
        [("a", "alice"), ("b", "ALICE")],
    )
    conn.commit()
    conn.close()
    before = digest(path)
    assert main(["export", str(path), "--table", "agent_sessions", "--user", "alice"]) == 2
    out, err = capsys.readouterr()
    assert "ALICE" not in out and "user_id compares by collation NOCASE" in err
    for dry in (["--dry-run"], []):
        assert main(["prune", str(path), "--table", "agent_sessions", "--older-than", "1d", *dry]) == 2
        out, err = capsys.readouterr()
        assert "would remove" not in out and "user_id compares by collation NOCASE" in err
    assert digest(path) == before
    assert main(["export", str(path), "--table", "agent_sessions"]) == 0  # no user asked for: every row, as stored


def test_prune_never_takes_the_runs_of_another_session_whose_id_differs_in_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """agent_runs.session_id declared COLLATE NOCASE: pruning session 'a' would delete the conversation of 'A'."""
    path = tmp_path / "f.db"
    store = SqliteStorage("agent_sessions", db_file=path)
    store.upsert(AgentSession(session_id="A", agent_id="ag", user_id="bob"))  # live
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE agent_runs (id TEXT PRIMARY KEY, session_id TEXT COLLATE NOCASE, user_id TEXT, run_name TEXT,"
        " run_data TEXT, user_message TEXT, agent_message TEXT, messages TEXT, metrics TEXT, created_at INTEGER,"
        " updated_at INTEGER)"
    )
    conn.execute(
        "INSERT INTO agent_sessions (session_id, user_id, memory, session_data, extra_data, created_at, updated_at,"
        " agent_id, agent_data) VALUES ('a', 'alice', '{}', '{}', '{}', 1000, 1000, 'ag', '{}')"
    )
    conn.execute("INSERT INTO agent_runs (id, session_id, user_id, created_at) VALUES ('r1', 'A', 'bob', 1000)")
    conn.commit()
    conn.close()
    assert main(["prune", str(path), "--table", "agent_sessions", "--older-than", "1d"]) == 2
    assert "agent_runs" in capsys.readouterr().err
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT id FROM agent_runs")] == ["r1"]
    assert sorted(r[0] for r in conn.execute("SELECT session_id FROM agent_sessions")) == ["A", "a"]
    conn.close()
