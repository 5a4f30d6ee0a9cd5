"""``agno-storage to-agno3`` as a shell runs it: its errors (one line, exit 2, no password), ``--workers``' bound.

The report and the tables it writes are tests/test_agno3*.py's; here the
command's edges: PostgreSQL URLs with a password where a step fails, a
source with an old schema version, worker counts, and paths holding
characters a URI escapes.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from agno_storage import AgentSession, StorageError
from agno_storage.agno3 import WORKERS_LIMIT
from agno_storage.agno3 import migrate as migrate_module
from agno_storage.agno3.workers import WorkerPool
from agno_storage.cli import main
from tests.pgserver import free_port

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SECRET = "s3cr3tPW-agno3"
#: Exit code of every to-agno3 error (docs/cli.md): bad arguments, a SRC that cannot be read, a storage error.
FAILED = 2


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _url(pg_server: Any, database: str = "postgres", *, port: int | None = None, query: str = "") -> str:
    """A URL of the test server holding a password (the server trusts local connections: any password goes)."""
    return f"postgresql://postgres:{SECRET}@127.0.0.1:{port or pg_server.port}/{database}{query}"


def _schemas(pg_server: Any) -> set[str]:
    import psycopg

    with psycopg.connect(pg_server.dsn) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}


def _failing_paths(pg_server: Any) -> dict[str, tuple[str, str, list[str]]]:
    """Each step of to-agno3 that fails on a PostgreSQL URL: (SRC, DST, more arguments); both URLs hold a password."""
    good = _url(pg_server)
    # SRC read first: a schema with none of the 1.x tables, so the run goes on to DST.
    empty = ["--schema", "agno3_cli_nothing_here"]
    return {
        "dst unreachable": (good, _url(pg_server, port=free_port()), empty),
        "dst database missing, dry run": (good, _url(pg_server, "agno3_cli_no_db"), [*empty, "--dry-run", "--json"]),
        "dst libpq cannot parse": (good, good.replace("@127.0.0.1:", "@[::1:"), empty),
        "dst bad setting": (good, _url(pg_server, query="?connect_timeout=x"), empty),
        "src libpq cannot parse": (good.replace("@127.0.0.1:", "@[::1:"), good, ["--dst-schema", "agno3_cli_unmade"]),
        "src bad setting": (_url(pg_server, query="?connect_timeout=x"), good, ["--dst-schema", "agno3_cli_unmade"]),
        "src unreachable": (_url(pg_server, port=free_port()), good, ["--dst-schema", "agno3_cli_unmade"]),
    }


@pytest.mark.parametrize(
    "path",
    [
        "dst unreachable",
        "dst database missing, dry run",
        "dst libpq cannot parse",
        "dst bad setting",
        "src libpq cannot parse",
        "src bad setting",
        "src unreachable",
    ],
)
def test_an_error_never_shows_a_password_of_src_or_dst(
    pg_server: Any, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    """libpq's own message quotes a URL it cannot parse whole; a bad setting raised past the command (a traceback)."""
    src, dst, more = _failing_paths(pg_server)[path]
    code, out, err = _run(capsys, "to-agno3", src, dst, *more)
    assert code == FAILED, err
    assert SECRET not in out + err
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("agno-storage: error: "), err
    if path.startswith("src"):
        assert "agno3_cli_unmade" not in _schemas(pg_server)  # DST untouched: SRC is read first
    if path.endswith("unreachable"):  # both URLs name the same host: the message says which one failed
        assert path.split()[0].upper() in err, err


def test_a_message_quoting_a_url_whole_is_scrubbed_whichever_step_raises_it(
    pg_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As libpq's does for a URL it cannot read: the source's stores and the workers pass such messages on."""
    from agno_storage.agno3.chunks import Source

    src = _url(pg_server)

    def plan(self: Source) -> None:
        raise StorageError(f'cannot use "{src}"')

    monkeypatch.setattr(Source, "plan", plan)
    code, out, err = _run(capsys, "to-agno3", src, tmp_path / "a3.db", "--schema", "agno3_cli_nothing_here")
    assert code == FAILED and out == ""
    assert SECRET not in err and src.replace(SECRET, "***") in err


def test_an_old_schema_source_names_the_upgrade_that_fixes_it_and_leaves_dst_unmade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """agno 1.1's agent table (no team_session_id): the hint is a line a shell runs; after it the copy goes through."""
    src, dst = tmp_path / "old db.db", tmp_path / "agno3.db"
    shutil.copy(FIXTURES / "agno_agent_pre12.db", src)
    code, out, err = _run(capsys, "to-agno3", src, dst)
    assert code == FAILED and out == ""
    assert "schema version 1" in err and len(err.splitlines()) == 1
    assert not dst.exists()
    hint = err.rsplit("(from a shell: ", 1)[1].rstrip().removesuffix(")")
    argv = shlex.split(hint)
    assert argv[:2] == ["agno-storage", "upgrade"] and argv[2] == str(src) and argv[3:] == ["--table", "agent_sessions"]
    assert main(argv[1:]) == 0
    capsys.readouterr()
    code, out, err = _run(capsys, "to-agno3", src, dst)
    assert code == 0, err
    with sqlite3.connect(dst) as conn:
        assert conn.execute("SELECT COUNT(*) FROM agno_sessions").fetchone()[0] > 0


def test_an_old_schema_postgres_source_names_its_url_masked_and_its_schema(
    pg_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage

    with PostgresStorage("agent_sessions", db_url=pg_server.dsn, schema="agno3_cli_old", mode="agent") as store:
        store.upsert(AgentSession(session_id="s1", agent_id="a"))
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE agno3_cli_old.agent_sessions DROP COLUMN team_session_id")
    src = _url(pg_server)
    code, out, err = _run(capsys, "to-agno3", src, src, "--schema", "agno3_cli_old", "--dst-schema", "agno3_cli_new")
    assert code == FAILED and out == "" and SECRET not in err
    hint = shlex.split(err.rsplit("(from a shell: ", 1)[1].rstrip().removesuffix(")"))
    assert hint == [
        "agno-storage",
        "upgrade",
        src.replace(SECRET, "***"),
        "--table",
        "agent_sessions",
        "--schema",
        "agno3_cli_old",
    ]
    assert "agno3_cli_new" not in _schemas(pg_server)


def test_workers_above_the_limit_are_a_bad_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--workers 100000`` started that many interpreters (killed by the kernel for memory)."""
    src = FIXTURES / "go_agent_conversation.db"
    with pytest.raises(SystemExit) as refused:
        main(["to-agno3", str(src), str(tmp_path / "a3.db"), "--workers", str(WORKERS_LIMIT + 1)])
    assert refused.value.code == FAILED
    assert f"at most {WORKERS_LIMIT}" in capsys.readouterr().err
    assert not (tmp_path / "a3.db").exists()


def test_no_more_workers_start_than_there_are_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sessions are one batch: one worker maps it, however many are asked for."""
    started: list[int] = []

    class Counted(WorkerPool):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(len(self.pids))

    monkeypatch.setattr(migrate_module, "WorkerPool", Counted)
    code, _, err = _run(
        capsys, "to-agno3", FIXTURES / "go_agent_conversation.db", tmp_path / "a3.db", "--workers", str(WORKERS_LIMIT)
    )
    assert code == 0, err
    assert started == [1]


def test_a_memory_table_that_fails_while_its_rows_are_read_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1.x memory "table" that opens but fails on a row (a view over malformed JSON): one typed error line
    naming it, exit 2, not a traceback."""
    src = tmp_path / "src.db"
    shutil.copyfile(FIXTURES / "agno_agent.db", src)
    conn = sqlite3.connect(src)
    conn.execute(
        "CREATE VIEW memory AS SELECT 'm1' AS id, 'u1' AS user_id, json('not json') AS memory, "
        "'2025-01-01' AS created_at, '2025-01-01' AS updated_at"
    )
    conn.commit()
    conn.close()
    assert main(["to-agno3", str(src), str(tmp_path / "a3.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agno-storage: error: reading the memory table") and err.count("\n") == 1


def test_the_upgrade_hint_for_a_file_named_like_a_setting_runs_as_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old SRC file named like a libpq setting: the hint names it as ./NAME (not masked, and not a
    connection string), and that line upgrades it."""
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(FIXTURES / "agno_agent_pre12.db", tmp_path / "password=old.db")
    assert main(["to-agno3", "password=old.db", "a3.db"]) == 2
    err = capsys.readouterr().err
    hint = err[err.index("(from a shell: ") + len("(from a shell: ") : err.rindex(")")]
    assert "./password=old.db" in hint and "***" not in hint
    assert main(shlex.split(hint)[1:]) == 0
    assert main(["to-agno3", "password=old.db", "a3.db"]) == 0


def test_ctrl_c_is_one_line_and_exit_130_and_the_rerun_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the middle of a migration: no traceback; the batches written stay whole and a rerun goes on."""
    from agno_storage.agno3 import migrate

    src, dst = tmp_path / "src.db", tmp_path / "agno3.db"
    shutil.copy(FIXTURES / "agno_agent.db", src)
    real = migrate.map_chunk
    calls: list[int] = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # the second batch: the first is written
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(migrate, "map_chunk", interrupted)
    code, out, err = _run(capsys, "to-agno3", src, dst, "--workers", "0", "--batch-size", "5")
    assert (code, out, err) == (130, "", "agno-storage: interrupted\n")
    monkeypatch.setattr(migrate, "map_chunk", real)
    code, out, err = _run(capsys, "to-agno3", src, dst, "--workers", "0", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["modes"]["agent"]["unchanged"] == 5
    with sqlite3.connect(src) as conn:
        (sessions,) = conn.execute("SELECT count(*) FROM agent_sessions").fetchone()
    assert report["modes"]["agent"]["sessions"] + 5 == sessions


def test_any_commands_upgrade_hint_names_the_schema_and_running_it_upgrades_the_table(
    pg_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint of `list` (any command but to-agno3, which has its own) names a schema other than ai, as
    to-agno3's does: without it, the line a user runs would upgrade (or miss) the table of schema ai."""
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage

    with PostgresStorage("agent_sessions", db_url=pg_server.dsn, schema="cli_hint_old", mode="agent") as store:
        store.upsert(AgentSession(session_id="s1", agent_id="a"))
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE cli_hint_old.agent_sessions DROP COLUMN team_session_id")
    url = _url(pg_server)
    code, out, err = _run(capsys, "list", url, "--table", "agent_sessions", "--schema", "cli_hint_old")
    assert code == FAILED and out == "" and SECRET not in err
    hint = shlex.split(err.rsplit("(from a shell: ", 1)[1].rstrip().removesuffix(")"))
    assert hint[:2] == ["agno-storage", "upgrade"] and hint[-2:] == ["--schema", "cli_hint_old"]
    code, _, err = _run(capsys, *[url if a == url.replace(SECRET, "***") else a for a in hint[1:]])
    assert code == 0, err
    code, out, err = _run(capsys, "list", url, "--table", "agent_sessions", "--schema", "cli_hint_old", "--json")
    assert code == 0 and json.loads(out)[0]["session_id"] == "s1", err


@pytest.mark.parametrize("option", ["--schema", "--dst-schema"])
def test_a_schema_name_past_63_bytes_is_a_bad_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """PostgreSQL would cut it, and two long names would be one schema."""
    code, out, err = _run(capsys, "to-agno3", FIXTURES / "go_agent.db", tmp_path / "a3.db", option, "s" * 64)
    assert (code, out) == (FAILED, "") and "longer than PostgreSQL's 63 bytes" in err
    assert not (tmp_path / "a3.db").exists()


def test_a_schema_name_that_is_not_utf8_is_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """From argv a byte that is not UTF-8 is a lone surrogate; both ends SQLite, the schema is not used."""
    code, _, err = _run(capsys, "to-agno3", FIXTURES / "go_agent.db", tmp_path / "a3.db", "--dst-schema", "\udcff")
    assert code == 0, err


def test_the_summary_says_how_many_sessions_keep_an_earlier_builds_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target fcbec24 wrote (fixtures/make_agno3_stamped.py): each session is unchanged, and the line a user
    acts on says to run it again with --rewrite."""
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    shutil.copy(FIXTURES / "agno_agent.db", src)
    shutil.copy(FIXTURES / "agno3_stamped_fcbec24_agno_agent.db", dst)
    code, out, err = _run(capsys, "to-agno3", src, dst, "--workers", "0")
    assert code == 0, err
    with sqlite3.connect(src) as conn:
        (sessions,) = conn.execute("SELECT count(*) FROM agent_sessions").fetchone()
    assert f"{sessions} of the unchanged sessions were written by an earlier build" in out and "--rewrite" in out
    code, out, err = _run(capsys, "to-agno3", src, dst, "--workers", "0", "--rewrite")
    assert code == 0 and "earlier build" not in out, err
    code, out, err = _run(capsys, "to-agno3", src, dst, "--workers", "0")
    assert code == 0 and "earlier build" not in out, err


@pytest.mark.parametrize("name", ["a b", "100%", "%41", "h#x", "q?y", "a&b=c", "ünï"])
def test_paths_holding_characters_a_uri_escapes_name_the_files_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """to-agno3's readers open SQLite files through ``file:`` URIs (a Go Agent's runs, the memory table, what DST
    holds on a run again): a folder and file whose names hold a space, ``%``, ``#``, ``?``, ``&`` or a non-ASCII
    letter, given as a relative path or (DST) a percent-encoded ``sqlite:///`` URL, name those files, no other:
    the runs and the memory are read from SRC, written to DST, and a second run finds them all there."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(FIXTURES / "go_agent_conversation.db", folder / f"{name}.db")
    with sqlite3.connect(folder / f"{name}.db") as conn:
        conn.execute(
            "CREATE TABLE memory (id TEXT PRIMARY KEY, user_id TEXT, memory TEXT, created_at TEXT, updated_at TEXT)"
        )
        conn.execute("""INSERT INTO memory VALUES ('m1', 'u', '{"memory": "likes tea"}', NULL, NULL)""")
    conn.close()
    monkeypatch.chdir(tmp_path)
    src = f"{name}/{name}.db"
    targets = {
        f"{name}/{name} dst.db": folder / f"{name} dst.db",
        "sqlite:///" + quote(str(folder / f"{name} url.db")): folder / f"{name} url.db",
    }
    for dst, file in targets.items():
        for unchanged in (0, 1):
            code, out, err = _run(capsys, "to-agno3", src, dst, "--json")
            assert (code, err) == (0, "")
            modes = json.loads(out)["modes"]
            assert [(m["sessions"], m["memories"], m["unchanged"]) for m in modes.values()] == [
                (1 - unchanged, 0, unchanged),  # agent_sessions: the session with a row
                (1 - unchanged, 0, unchanged),  # agent_runs: the session a Go Agent keeps there alone
                (0, 1 - unchanged, unchanged),  # memory
            ]
        with sqlite3.connect(file) as conn:
            assert conn.execute("SELECT COUNT(*) FROM agno_sessions").fetchone() == (2,)
            assert conn.execute("SELECT COUNT(*) FROM agno_runs").fetchone() == (4,)
            assert conn.execute("SELECT memory FROM agno_memories").fetchall() == [('"likes tea"',)]
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{name}.db", f"{name} dst.db", f"{name} url.db"])


def test_a_go_agents_runs_table_spelt_in_upper_case_is_read_as_history_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite takes ``AGENT_RUNS`` for ``agent_runs`` (a Go Agent writes its runs there, history reads them): to-agno3
    skipped them without a word, the session a Go Agent keeps there alone and every run left out of agno 3's tables."""
    src, dst = tmp_path / "go.db", tmp_path / "agno3.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", src)
    with sqlite3.connect(src) as conn:
        conn.execute("ALTER TABLE agent_runs RENAME TO runs_moved")  # SQLite takes no rename to another case
        conn.execute("ALTER TABLE runs_moved RENAME TO AGENT_RUNS")
    conn.close()
    code, out, err = _run(capsys, "to-agno3", str(src), str(dst), "--json")
    assert (code, err) == (0, "")
    assert [m["sessions"] for m in json.loads(out)["modes"].values()] == [1, 1]
    with sqlite3.connect(dst) as conn:
        assert conn.execute("SELECT COUNT(*) FROM agno_sessions").fetchone() == (2,)
        assert conn.execute("SELECT COUNT(*) FROM agno_runs").fetchone() == (4,)
    conn.close()
