"""The ``agno-storage`` command: outputs checked against what the store itself reads.

Every test works on copies of fixtures/ files: opening a file switches it to
WAL mode, so the originals are never opened.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shlex
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from agno_storage import AgentSession, Mode, SqliteStorage, TeamSession
from agno_storage.cli import main
from tests.support import BusyTimeouts, finishes

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
DOC = ROOT / "docs" / "cli.md"

#: fixture file -> (table, mode its writer used, layout)
FIXTURE_TABLES = {
    "go_agent.db": ("agent_sessions", Mode.AGENT, "go"),
    "go_team.db": ("team_sessions", Mode.TEAM, "go"),
    "go_workflow.db": ("workflow_sessions", Mode.WORKFLOW, "go"),
    "go_workflow_v2.db": ("workflow_v2_sessions", Mode.WORKFLOW_V2, "go"),
    "agno_agent.db": ("agent_sessions", Mode.AGENT, "agno"),
    "agno_team.db": ("team_sessions", Mode.TEAM, "agno"),
    "agno_workflow.db": ("workflow_sessions", Mode.WORKFLOW, "agno"),
    "agno_workflow_v2.db": ("workflow_v2_sessions", Mode.WORKFLOW_V2, "agno"),
    "agno_team_default_mode.db": ("team_sessions", Mode.TEAM, "agno"),
    "agno_workflow_default_mode.db": ("workflow_sessions", Mode.WORKFLOW, "agno"),
    "agno_workflow_v2_default_mode.db": ("workflow_v2_sessions", Mode.WORKFLOW_V2, "agno"),
}
OLD_FIXTURES = ["agno_agent_pre12.db", "agno_agent_v110.db"]

Copy = Callable[[str], Path]


@pytest.fixture
def copy(tmp_path: Path) -> Copy:
    """Copy a fixtures/ file into tmp_path and return the copy's path."""

    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copy(FIXTURES / name, target)
        return target

    return make


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def info_fields(out: str) -> dict[str, str]:
    """``info``'s "key: value" lines as a dict."""
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines())}


def one_error_line(err: str) -> str:
    """The single stderr line of a failed command (no traceback)."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("agno-storage: ")
    return lines[0]


# --- info -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_TABLES))
def test_info_detects_mode_and_layout_of_every_fixture(
    name: str, copy: Copy, capsys: pytest.CaptureFixture[str]
) -> None:
    table, mode, layout = FIXTURE_TABLES[name]
    path = copy(name)
    code, out, err = run(capsys, "info", path, "--table", table)
    assert code == 0, err
    fields = info_fields(out)
    with SqliteStorage(table, db_file=path, mode=mode) as store:
        shape = store.schema_shape()
        ids = store.get_all_session_ids()
    assert shape is not None
    assert fields["table"] == table
    assert fields["mode"] == f"{mode.value} (detected)"
    assert fields["layout"].split()[0] == layout == shape.flavor.value
    assert fields["schema version"] == str(shape.version) == "2"
    assert fields["needs upgrade"] == "no"
    assert fields["sessions"] == str(len(ids))
    # Every fixture is a rollback-journal file, and info reads it read-only: it stays one.
    assert fields["durability"].startswith(
        "journal_mode=delete (WAL from the first write), synchronous=FULL, busy_timeout=10s"
    )


@pytest.mark.parametrize("name", OLD_FIXTURES)
def test_info_on_an_old_table_says_it_needs_an_upgrade(
    name: str, copy: Copy, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy(name)
    code, out, err = run(capsys, "info", path, "--table", "agent_sessions", "--mode", "agent")
    assert code == 0, err
    fields = info_fields(out)
    assert fields["mode"] == "agent (given)"
    assert fields["schema version"] == "1"
    assert fields["needs upgrade"].startswith("yes: adds team_session_id")
    assert fields["sessions"].startswith("unknown")


# --- list -------------------------------------------------------------------


def test_list_prints_sessions_newest_first_as_the_store_lists_them(
    copy: Copy, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy("go_agent.db")
    code, out, _ = run(capsys, "list", path, "--table", "agent_sessions")
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["session_id", "user_id", "agent_id", "created_at", "updated_at"]
    with SqliteStorage("agent_sessions", db_file=path) as store:
        sessions = store.list()
    assert [line.split()[0] for line in lines] == [s.session_id for s in sessions]
    for line, s in zip(lines, sessions, strict=True):
        assert line.split()[1:3] == [s.user_id or "-", s.entity_id or "-"]
    # A session with no owner shows '-', timestamps are UTC.
    assert "agent-09    -" in out
    assert "2023-11-14T22:13:20Z" in out  # created_at 1700000000


def test_list_filters_and_json_match_the_store(copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy("agno_team.db")
    url = f"sqlite:///{path}"  # an absolute path: sqlite:////tmp/...
    code, out, _ = run(capsys, "list", url, "--table", "team_sessions", "--user", "user-1", "--json")
    assert code == 0
    with SqliteStorage("team_sessions", db_file=path, mode="team") as store:
        expected = store.list(user_id="user-1")
        some = store.list()[0]
        by_entity = store.list(entity_id=some.team_id, limit=1)
    assert expected
    assert json.loads(out) == [
        {
            "session_id": s.session_id,
            "user_id": s.user_id,
            "team_id": s.team_id,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }
        for s in expected
    ]
    code, out, _ = run(capsys, "list", url, "--table", "team_sessions", "--entity", str(some.team_id), "--limit", "1")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == [s.session_id for s in by_entity]


def test_list_of_sessions_with_no_owner_and_an_empty_result(copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy("go_workflow_v2.db")
    code, out, _ = run(capsys, "list", path, "--table", "workflow_v2_sessions", "--user", "", "--json")
    assert code == 0
    with SqliteStorage("workflow_v2_sessions", db_file=path, mode="workflow_v2") as store:
        assert [s["session_id"] for s in json.loads(out)] == [s.session_id for s in store.list(user_id="")]
    code, out, _ = run(capsys, "list", path, "--table", "workflow_v2_sessions", "--user", "nobody-at-all")
    assert code == 0
    assert out.splitlines() == ["session_id  user_id  workflow_id  created_at  updated_at"]


def test_list_escapes_control_characters_to_keep_one_line_per_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.db"
    with SqliteStorage("agent_sessions", db_file=path) as store:
        store.upsert(AgentSession(session_id="two\nlines", user_id="tab\there", agent_id="a", created_at=5))
    code, out, _ = run(capsys, "list", path, "--table", "agent_sessions")
    assert code == 0
    assert out.splitlines()[1].split() == [
        "two\\nlines",
        "tab\\there",
        "a",
        "1970-01-01T00:00:05Z",
        out.splitlines()[1].split()[4],
    ]


# --- show -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["go_agent.db", "agno_workflow_v2.db"])
def test_show_prints_the_session_the_store_reads(name: str, copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    table, mode, _ = FIXTURE_TABLES[name]
    path = copy(name)
    session_id = "id-\U0001f600-<&>"  # the corpus's awkward id, astral character included
    code, out, err = run(capsys, "show", path, "--table", table, session_id)
    assert code == 0, err
    with SqliteStorage(table, db_file=path, mode=mode) as store:
        stored = store.read(session_id)
    assert stored is not None
    assert json.loads(out) == attrs.asdict(stored)
    code, out, _ = run(capsys, "show", path, "--table", table, session_id, "--user", str(stored.user_id))
    assert code == 0
    assert json.loads(out)["session_id"] == session_id


def test_show_of_a_missing_or_foreign_session_exits_1(copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy("go_agent.db")
    code, out, err = run(capsys, "show", path, "--table", "agent_sessions", "no-such-session")
    assert (code, out) == (1, "")
    assert one_error_line(err) == "agno-storage: no session 'no-such-session' in table 'agent_sessions'"
    code, out, err = run(capsys, "show", path, "--table", "agent_sessions", "agent-05", "--user", "user-1")
    assert (code, out) == (1, "")
    assert "for user 'user-1'" in one_error_line(err)


# --- upgrade ----------------------------------------------------------------


@pytest.mark.parametrize("name", OLD_FIXTURES)
def test_upgrade_adds_the_missing_column_once(name: str, copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy(name)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        ids_by_sql = [r[0] for r in conn.execute("SELECT session_id FROM agent_sessions")]
    code, out, err = run(capsys, "upgrade", path, "--table", "agent_sessions")
    assert code == 0, err
    assert out == "upgraded table 'agent_sessions' from schema version 1 to 2: added team_session_id\n"
    with SqliteStorage("agent_sessions", db_file=path) as store:
        shape = store.schema_shape()
        assert shape is not None and shape.version == 2 and not shape.missing
        assert sorted(store.get_all_session_ids()) == sorted(ids_by_sql)
    code, out, _ = run(capsys, "upgrade", path, "--table", "agent_sessions")
    assert code == 0
    assert out == "table 'agent_sessions' is at schema version 2; nothing to upgrade\n"
    code, out, _ = run(capsys, "info", path, "--table", "agent_sessions")
    assert info_fields(out)["sessions"] == str(len(ids_by_sql))


def test_reading_an_old_table_fails_with_a_hint_to_upgrade(copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy("agno_agent_pre12.db")
    code, out, err = run(capsys, "list", path, "--table", "agent_sessions")
    assert (code, out) == (2, "")
    line = one_error_line(err)
    assert "schema version 1" in line
    assert f"agno-storage upgrade {path} --table agent_sessions" in line


def test_a_v1_workflow_table_is_not_upgraded_to_workflow_v2_on_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # agno's SQLite storage never made a workflow_v2 table without workflow_name and runs: this is a v1 table.
    path = tmp_path / "early.db"
    with SqliteStorage("wf", db_file=path, mode="workflow") as store:
        store.create()
    code, out, _ = run(capsys, "info", path, "--table", "wf")
    assert info_fields(out)["mode"] == "workflow (detected)"
    code, _, err = run(capsys, "upgrade", path, "--table", "wf", "--mode", "workflow_v2")
    assert code == 2
    assert "is a workflow table, not a workflow_v2 table" in one_error_line(err)
    code, out, _ = run(capsys, "info", path, "--table", "wf")
    assert info_fields(out)["mode"] == "workflow (detected)"


# --- delete -----------------------------------------------------------------


def test_delete_removes_only_the_named_session(copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy("go_team.db")
    with SqliteStorage("team_sessions", db_file=path, mode="team") as store:
        before = store.get_all_session_ids()
        victim = store.list()[3]
    assert victim.user_id
    code, _, err = run(capsys, "delete", path, "--table", "team_sessions", victim.session_id, "--user", "someone-else")
    assert code == 1
    assert "for user 'someone-else'" in one_error_line(err)
    code, out, _ = run(capsys, "delete", path, "--table", "team_sessions", victim.session_id, "--user", victim.user_id)
    assert code == 0
    assert out == f"deleted session {victim.session_id!r} from table 'team_sessions'\n"
    with SqliteStorage("team_sessions", db_file=path, mode="team") as store:
        assert store.read(victim.session_id) is None
        assert store.get_all_session_ids() == [i for i in before if i != victim.session_id]
    code, _, err = run(capsys, "delete", path, "--table", "team_sessions", victim.session_id)
    assert code == 1
    one_error_line(err)


# --- errors -----------------------------------------------------------------


def test_a_missing_file_or_table_exits_1_and_creates_nothing(
    tmp_path: Path, copy: Copy, capsys: pytest.CaptureFixture[str]
) -> None:
    for target in (tmp_path / "absent.db", f"sqlite:///{tmp_path}/sub/absent.db"):
        code, out, err = run(capsys, "info", target, "--table", "agent_sessions")
        assert (code, out) == (1, "")
        assert one_error_line(err).startswith("agno-storage: no database file")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    path = copy("go_agent.db")
    for command in (["info"], ["list"], ["upgrade"], ["show", "x"], ["delete", "x"]):
        code, _, err = run(capsys, command[0], path, "--table", "other_table", *command[1:])
        assert code == 1
        assert one_error_line(err) == f"agno-storage: no table 'other_table' in {path}; tables there: agent_sessions"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [("agent_sessions",)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "{db}", "--table", "agent_sessions", "--mode", "team"], "is an agent table, not a team table"),
        (["list", "{db}", "--table", "select"], "reserved word"),
        (["list", "mysql://h/db", "--table", "t"], "a database URL must look like sqlite:///path.db"),
        (["list", "sqlite://", "--table", "t"], "in-memory database"),
        (["list", "sqlite:///{db}?mode=ro", "--table", "agent_sessions"], "query parameters"),
        (["list", "{db}", "--table", "agent_sessions", "--schema", "ai"], "PostgreSQL URLs only"),
        (["tables", "{db}", "--schema", "ai"], "--schema applies to PostgreSQL URLs only"),
        (["doctor", "{db}", "--schema", ""], "--schema applies to PostgreSQL URLs only"),
        (["export", "{db}", "--table", "agent_sessions", "--schema", "x"], "--schema applies to PostgreSQL URLs only"),
        (["copy", "{db}", "--table", "agent_sessions", "{notes}", "--to-schema", "x"], "--to-schema applies to"),
        (["list", "{notes}", "--table", "notes"], "not a sessions table"),
        (["show", "{db}", "--table", "agent_sessions", "bad\udcffid"], "session_id must be"),
    ],
)
def test_storage_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, copy: Copy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = copy("go_agent.db")
    notes = tmp_path / "notes.db"
    with contextlib.closing(sqlite3.connect(notes)) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    code, out, err = run(capsys, *(a.format(db=db, notes=notes) for a in argv))
    assert (code, out) == (2, "")
    line = one_error_line(err)
    assert line.startswith("agno-storage: error: ")
    assert message in line


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["list", "x.db"],  # no --table
        ["list", "x.db", "--table", "t", "--mode", "robot"],
        ["list", "x.db", "--table", "t", "--limit", "-1"],
        ["list", "x.db", "--table", "t", "--limit", "ten"],
        ["show", "x.db", "--table", "t"],  # no SESSION_ID
    ],
)
def test_bad_arguments_exit_2_from_argparse(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: agno-storage" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["{url}", "--table", "t"],  # the command left out: the URL is read as one
        ["list", "{url}", "{url}", "--table", "t"],  # the URL twice
        ["list", "x.db", "--table", "t", "--mode", "{url}"],
        ["list", "x.db", "--table", "t", "--mode={url}"],
        ["export", "x.db", "--table", "t", "--since", "{url}"],
        ["backup", "x.db", "y.db", "{url}"],
    ],
    ids=["no-command", "twice", "choice", "choice=", "type", "extra"],
)
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cr3tPW@db.example/appdb",
        "postgresql://app@db.example/appdb?password=s3cr3tPW",
        "postgresql://app:s3cr%33tPW@db.example/appdb",
        "host=db.example user=app password=s3cr3tPW",
    ],
    ids=["userinfo", "query", "encoded", "conninfo"],
)
def test_a_bad_argument_error_masks_a_password(argv: list[str], url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse repeats the argument it refuses: a URL's password in it is masked, as in every other error."""
    with pytest.raises(SystemExit) as exc:
        main([a.format(url=url) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "***" in err
    assert "s3cr3tPW" not in err and "s3cr%33tPW" not in err


# --- the real command -------------------------------------------------------


def test_python_dash_m_runs_the_command(copy: Copy) -> None:
    path = copy("go_workflow.db")

    def cli(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agno_storage", *map(str, argv)],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            cwd=ROOT,
        )

    proc = cli("list", path, "--table", "workflow_sessions", "--limit", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    with SqliteStorage("workflow_sessions", db_file=path, mode="workflow") as store:
        assert [s["session_id"] for s in json.loads(proc.stdout)] == [s.session_id for s in store.list(limit=2)]
    proc = cli("show", path, "--table", "workflow_sessions", "no-such-session")
    assert (proc.returncode, proc.stdout) == (1, "")
    one_error_line(proc.stderr)
    proc = cli("list", path, "--table", "workflow_sessions", "--mode", "agent")
    assert proc.returncode == 2
    one_error_line(proc.stderr)
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("agno-storage ")


def test_an_unreachable_server_is_one_line_on_stderr() -> None:
    pytest.importorskip("psycopg_pool")
    with socket.socket() as sock:  # a port nobody listens on once it is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "agno_storage", "info", f"postgresql://nobody:pw@127.0.0.1:{port}/db", "--table", "t"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert one_error_line(proc.stderr).startswith("agno-storage: error: ")


def test_pyproject_installs_the_command() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"agno-storage": "agno_storage.cli:main"}


# --- PostgreSQL ---------------------------------------------------------------


def test_postgres_url(pg_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from agno_storage import PostgresStorage

    url = pg_server.dsn
    with PostgresStorage("cli_team_sessions", db_url=url, mode="team") as store:
        store.upsert_many(
            TeamSession(session_id=f"s{i}", user_id="ada" if i % 2 else "bob", team_id="crew", created_at=100 + i)
            for i in range(5)
        )
        try:
            code, out, err = run(capsys, "info", url, "--table", "cli_team_sessions")
            assert code == 0, err
            fields = info_fields(out)
            assert fields["engine"] == "postgresql (schema ai)"
            assert fields["mode"] == "team (detected)"
            assert fields["sessions"] == "5"
            assert re.fullmatch(r"the server's: synchronous_commit=\w+, fsync=\w+", fields["durability"])

            code, out, _ = run(capsys, "list", url, "--table", "cli_team_sessions", "--user", "ada", "--json")
            assert [s["session_id"] for s in json.loads(out)] == [s.session_id for s in store.list(user_id="ada")]

            code, out, _ = run(capsys, "show", url, "--table", "cli_team_sessions", "s3")
            assert json.loads(out) == attrs.asdict(store.read("s3"))

            code, out, _ = run(capsys, "delete", url, "--table", "cli_team_sessions", "s3", "--user", "ada")
            assert code == 0
            assert store.read("s3") is None

            code, _, err = run(capsys, "list", url, "--table", "cli_team_sessions", "--schema", "elsewhere")
            assert code == 1
            one_error_line(err)

            # The test server trusts local connections: the password is ignored there, and kept out of messages.
            with_password = url.replace("postgres@", "postgres:s3cret@", 1)
            assert with_password != url
            code, _, err = run(capsys, "show", with_password, "--table", "no_such_table", "x")
            assert code == 1
            assert "s3cret" not in err and "postgres:***@" in one_error_line(err)
        finally:
            store.drop()


# --- docs/cli.md ------------------------------------------------------------


def test_every_command_and_option_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    """Fails when a subcommand, or an option of one, is missing from docs/cli.md."""
    doc = DOC.read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["--help"])
    choices = re.search(r"\{([a-z0-9_,-]+)\}", capsys.readouterr().out)
    assert choices is not None
    commands = choices.group(1).split(",")
    assert len(commands) >= 5
    sections = re.split(r"^### ", doc, flags=re.MULTILINE)
    for command in commands:
        titled = [s for s in sections if s.startswith(f"`{command}`\n")]
        assert titled, f"docs/cli.md has no '### `{command}`' section"
        section = titled[0]
        assert f"$ agno-storage {command} " in section, f"no example of {command!r} in its section"
        assert "Exit codes:" in section, f"the {command!r} section does not give its exit codes"
        with pytest.raises(SystemExit):
            main([command, "--help"])
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", capsys.readouterr().out)) - {"--help"}
        synopsis = next(line for line in doc.splitlines() if line.startswith(f"agno-storage {command} "))
        for option in options:
            assert option in synopsis, f"{option} of {command!r} is not in the synopsis of docs/cli.md"


def console_examples(doc: str, workdir: Path) -> list[tuple[str, str, str]]:
    """Run the ``$`` lines of the doc's console blocks in ``workdir``: (command, shown, actual).

    ``cp fixtures/X Y`` copies a fixture; ``agno-storage ...`` runs main() in
    process; a trailing ``; echo $?`` prints the exit code after the output.
    """
    results = []
    for block in re.findall(r"```console\n(.*?)```", doc, flags=re.DOTALL):
        chunks = re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]
        for chunk in chunks:
            command, _, shown = chunk.partition("\n")
            argv = shlex.split(command.removesuffix("; echo $?"))
            if argv[0] == "cp":
                shutil.copy(ROOT / argv[1], workdir / argv[2])
                continue
            assert argv[0] == "agno-storage", command
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(workdir):
                try:
                    code = main(argv[1:])
                except SystemExit as exc:
                    code = int(exc.code or 0)
            actual = out.getvalue() + err.getvalue()
            if command.endswith("; echo $?"):
                actual += f"{code}\n"
            results.append((command, shown, actual))
    return results


def shows(shown: str, actual: str) -> bool:
    """``actual`` is what ``shown`` shows; ``...`` there stands for any text (the store's own wording)."""
    pattern = ".*?".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, actual, flags=re.DOTALL) is not None


def test_the_examples_in_the_docs_print_what_the_docs_show(tmp_path: Path) -> None:
    results = console_examples(DOC.read_text(encoding="utf-8"), tmp_path)
    assert len(results) >= 10
    for command, shown, actual in results:
        assert shows(shown, actual), f"docs/cli.md: `{command}` prints\n{actual}"


@pytest.mark.parametrize(
    "argv",
    [
        ("info", "{kv}", "--table", "agent_sessions"),
        ("list", "{kv}", "--table", "agent_sessions"),
        ("tables", "{kv}"),
        ("doctor", "{kv}"),
        ("import", "{kv}", "--table", "agent_sessions", "{lines}"),
        ("copy", "{db}", "--table", "agent_sessions", "{kv}"),
        ("prune", "{kv}", "--table", "agent_sessions", "--older-than", "1d", "--dry-run"),
        ("search-index", "{kv}", "--table", "agent_sessions", "enable"),
        ("backup", "{db}", "{kv}"),
    ],
    ids=lambda argv: argv[0],
)
def test_a_libpq_key_value_string_is_refused_masked_and_never_a_file(
    argv: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key=value connection string is no file's name: every command refuses it (exit 2) with its password
    masked, and nothing named after it is created."""
    monkeypatch.chdir(tmp_path)
    kv = "host=127.0.0.1 port=5432 dbname=appdb user=app password=s3cr3tPW"
    db = tmp_path / "src.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(AgentSession(session_id="s1", agent_id="a"))
    lines = tmp_path / "lines.jsonl"
    assert run(capsys, "export", db, "--table", "agent_sessions", "-o", lines)[0] == 0
    code, out, err = run(capsys, *(a.format(kv=kv, db=db, lines=lines) for a in argv))
    assert code == 2 and "key=value" in err and "password=***" in err
    assert "s3cr3tPW" not in out + err
    assert not [p.name for p in tmp_path.iterdir() if "host=" in p.name]
    assert "s3cr3tPW" not in " ".join(p.name for p in tmp_path.rglob("*"))


def test_backup_reads_dest_as_a_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """backup's DEST is read as every other location: a SQLite URL is its file; a PostgreSQL URL is refused
    (exit 2) with its password masked, and no file named after it is made."""
    db = tmp_path / "src.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(AgentSession(session_id="s1", agent_id="a"))
    code, out, err = run(capsys, "backup", db, f"postgresql://app:s3cr3tPW@{tmp_path}/appdb")
    assert code == 2 and "***" in err and "s3cr3tPW" not in out + err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.db"]
    assert run(capsys, "backup", db, f"sqlite:///{tmp_path / 'copy.db'}")[0] == 0
    with SqliteStorage("agent_sessions", db_file=tmp_path / "copy.db", read_only=True) as store:
        assert [s.session_id for s in store.get_all_sessions()] == ["s1"]


def test_stored_escape_sequences_reach_the_terminal_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Text another program stored (a role, a member, a table's name) may hold ESC sequences that a terminal
    would act on: every table, line and error the CLI prints shows them escaped."""
    esc = "\x1b"
    db = tmp_path / "evil.db"
    shutil.copyfile(FIXTURES / "go_agent_conversation.db", db)
    conn = sqlite3.connect(db)
    messages = [{"role": "user" + esc + "[2J", "content": "hello kestrel"}, {"role": "assistant", "content": "hi"}]
    conn.execute("UPDATE agent_runs SET messages = ?, user_message = 'hello kestrel'", (json.dumps(messages),))
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_sessions'").fetchone()[0]
    conn.execute(ddl.replace("agent_sessions", f'"evil{esc}[31mtbl"', 1))
    conn.commit()
    conn.close()
    session = next(iter(SqliteStorage("agent_sessions", db_file=db).runs_only_session_ids()))
    for argv in (
        ("history", db, "--table", "agent_sessions", session),
        ("search", db, "--table", "agent_sessions", "kestrel"),
        ("tables", db),
        ("doctor", db),
        ("list", db, "--table", "nosuch"),
        ("info", db, "--table", f"evil{esc}[31mtbl"),
    ):
        _, out, err = run(capsys, *argv)
        assert esc not in out + err, argv
        assert "\\x1b" in out + err, argv


def test_json_stays_json_on_an_ascii_console_and_a_closed_stdout_is_no_traceback(tmp_path: Path) -> None:
    """On an output whose encoding lacks a character (an ASCII or cp1252 console), --json escapes it as JSON
    does; with stdout closed (``>&-``) a command ends without a traceback."""
    db = tmp_path / "u.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(AgentSession(session_id="s-é-😀", user_id="ü", agent_id="a"))
    cli = [sys.executable, "-m", "agno_storage", "list", str(db), "--table", "agent_sessions"]
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([*cli, "--json"], capture_output=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert [s["session_id"] for s in json.loads(done.stdout)] == ["s-é-😀"]
    closed = subprocess.run(f"{shlex.join(cli)} >&-", shell=True, capture_output=True, text=True, check=False)
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr


def test_export_writes_through_a_link_and_into_a_pipe_instead_of_replacing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o`` naming a link writes the file it names (the link stays a link); naming a pipe (or a device,
    ``>(gzip)``) writes into it, where a file moved over it would leave its reader with nothing."""
    db = tmp_path / "src.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert_many(AgentSession(session_id=f"s{i}", agent_id="a") for i in range(3))
    (tmp_path / "keep").mkdir()
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "keep" / "real.jsonl")
    assert run(capsys, "export", db, "--table", "agent_sessions", "-o", link)[0] == 0
    assert link.is_symlink() and len((tmp_path / "keep" / "real.jsonl").read_bytes().splitlines()) == 4
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert run(capsys, "export", db, "--table", "agent_sessions", "-o", fifo)[0] == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and len(got[0].splitlines()) == 4
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")]


def test_export_to_a_link_naming_the_databases_wal_is_refused_and_to_a_closed_stdout_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link to the source's -wal (its uncheckpointed commits) is the source: refused before anything is
    written. With stdout closed (``>&-``) the lines have nowhere to go: one error line, not a traceback."""
    db = tmp_path / "src.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="s1", agent_id="a"))  # the store keeps its connection: the -wal stays
    wal = Path(f"{db}-wal")
    before = wal.read_bytes()
    link = tmp_path / "out.jsonl"
    link.symlink_to(wal)
    code, _, err = run(capsys, "export", db, "--table", "agent_sessions", "-o", link)
    assert code == 2 and "error:" in err
    assert wal.read_bytes() == before and not list(tmp_path.glob("*.partial"))
    store.close()
    cli = [sys.executable, "-m", "agno_storage", "export", str(db), "--table", "agent_sessions"]
    closed = subprocess.run(f"{shlex.join(cli)} >&-", shell=True, capture_output=True, text=True, check=False)
    assert closed.returncode == 2 and "stdout is closed" in closed.stderr and "Traceback" not in closed.stderr


def test_doctor_prints_integrity_checks_answer_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """integrity_check names an index of the file, whose name may hold ESC sequences: printed escaped."""
    db = tmp_path / "f.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(AgentSession(session_id="s1", agent_id="a"))
    evil = "ix\x1b]0;TITLE\x07\x1b[2J"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (a TEXT, b TEXT)")
    conn.execute("INSERT INTO notes VALUES ('x', 'y')")
    conn.execute(f'CREATE INDEX "{evil}" ON notes (a)')
    conn.commit()
    conn.execute("PRAGMA writable_schema = ON")  # the index's definition no longer fits its entries
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, '(a)', '(b)') WHERE type = 'index' AND tbl_name = 'notes'"
    )
    conn.commit()
    conn.close()
    code, out, _ = run(capsys, "doctor", db)
    assert code == 3 and "integrity_check: " in out and "\\x1b" in out
    assert "\x1b" not in out


def test_a_file_whose_name_looks_like_a_setting_still_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection string with a newer libpq's setting beside its password is refused too; an existing file
    named like a setting (``host=old.db``) opens, and ``./NAME`` makes a new one of such a name."""
    monkeypatch.chdir(tmp_path)
    newer = "host=db dbname=app require_auth=scram-sha-256 password=s3cret"
    code, out, err = run(capsys, "list", newer, "--table", "agent_sessions")
    assert code == 2 and "s3cret" not in out + err and not list(tmp_path.iterdir())
    with SqliteStorage("agent_sessions", db_file=tmp_path / "host=old.db") as store:
        store.upsert(AgentSession(session_id="s1", agent_id="a"))
    code, out, _ = run(capsys, "list", "host=old.db", "--table", "agent_sessions")
    assert code == 0 and "s1" in out
    lines = tmp_path / "lines.jsonl"
    assert run(capsys, "export", "host=old.db", "--table", "agent_sessions", "-o", lines)[0] == 0
    assert run(capsys, "import", "./host=new.db", "--table", "agent_sessions", lines)[0] == 0
    assert (tmp_path / "host=new.db").is_file()


def test_table_columns_line_up_on_a_terminal_after_wide_and_combining_characters() -> None:
    """A CJK character or an emoji takes two cells, a combining accent none: the next column starts at the same
    cell on every line."""
    from agno_storage.cli.common import columns, width

    lines = columns([["user", "day"], ["üser-😀", "2026"], ["中文", "x"], ["e\u0301", "y"], ["abc", "z"]])
    starts = {width(line[: line.rindex(" ") + 1]) for line in lines}
    assert starts == {9}
    assert (width("中"), width("😀"), width("\u0301"), width("a")) == (2, 2, 0, 1)
    # An emoji sequence is one emoji: a variation selector, a skin tone, a family joined with U+200D.
    assert [width(e) for e in ("❤️", "👍🏽", "👨\u200d👩\u200d👧", "a\u200db")] == [2, 2, 2, 2]


def test_since_after_until_is_a_bad_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(AgentSession(session_id="s1", agent_id="a"))
    for until in ("2026-12-01", "2026-12-02"):  # earlier, or the same: no time between them
        argv = ["export", db, "--table", "agent_sessions", "--since", "2026-12-02", "--until", until]
        code, out, err = run(capsys, *argv)
        assert code == 2 and "--since is not before --until" in err and out == ""


def test_a_sqlite_urls_timeout_is_how_long_a_command_waits_for_a_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///f.db?timeout=SECONDS`` is the commands' busy timeout, as it is the store's: info shows it, and
    delete and import into a file another connection holds locked give up after it (they waited the default 10 s
    whatever the URL said)."""
    db = tmp_path / "s.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(AgentSession(session_id="a", user_id="u", agent_id="x"))
    url = f"sqlite:///{db}?timeout=0.25"
    code, out, err = run(capsys, "info", url, "--table", "agent_sessions")
    assert code == 0, err
    assert info_fields(out)["durability"].endswith("busy_timeout=0.25s (agno_storage's connection settings)")
    dump = tmp_path / "a.jsonl"
    assert run(capsys, "export", url, "--table", "agent_sessions", "-o", dump)[0] == 0
    holder = sqlite3.connect(db, isolation_level=None, factory=sqlite3.Connection)  # not one BusyTimeouts counts
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for argv in (
            ("delete", url, "--table", "agent_sessions", "a"),
            ("import", url, "--table", "agent_sessions", dump),
        ):
            waits = BusyTimeouts(monkeypatch)
            code, _, err = finishes(functools.partial(run, capsys, *argv))
            assert code == 2, (argv, err)
            assert "locked" in err
            # SQLite itself waited the URL's 0.25 s for the lock, read back rather than timed.
            assert set(waits.of(db)) == {250}, argv
    finally:
        holder.rollback()
        holder.close()


def test_a_sqlite_urls_timeout_is_how_long_a_read_waits_for_a_writers_lock(
    copy: Copy, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a rollback-journal file (agno's) waits for its writer; export and tables wait the URL's
    ``?timeout=`` for it too (they waited sqlite3's 5 s whatever the URL said)."""
    db = copy("agno_agent.db")
    url = f"sqlite:///{db}?timeout=0.25"
    holder = sqlite3.connect(db, isolation_level=None, factory=sqlite3.Connection)  # not one BusyTimeouts counts
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for argv in (("export", url, "--table", "agent_sessions", "-o", tmp_path / "a.jsonl"), ("tables", url)):
            waits = BusyTimeouts(monkeypatch)
            code, _, err = finishes(functools.partial(run, capsys, *argv))
            assert code == 2, (argv, err)
            assert "locked" in err
            assert set(waits.of(db)) == {250}, argv
    finally:
        holder.rollback()
        holder.close()
