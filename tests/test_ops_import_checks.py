"""import refuses, by line number and with exit 2, every line it cannot write as the file says; nothing of its
batch is written, and the batches before it are committed and counted."""

from __future__ import annotations

import io
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agno_storage.cli import main
from agno_storage.ops.db import open_database
from agno_storage.ops.doctor import diagnose
from agno_storage.ops.errors import ExportFormatError
from agno_storage.ops.export import export_table
from agno_storage.ops.load import import_lines

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLE = "agent_sessions"


def exported(name: str) -> list[bytes]:
    """The export file of a fixture's agent table, as lines (go_agent_conversation.db: a version 2 file with runs)."""
    out = io.BytesIO()
    with open_database(str(FIXTURES / name)) as db:
        export_table(db, TABLE, out)
    return out.getvalue().splitlines()


def session_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute(f"SELECT session_id FROM {TABLE} ORDER BY session_id")]


def run_line(lines: list[bytes], **change: Any) -> bytes:
    """The file's last run line with ``change`` made to its run."""
    line = orjson.loads(lines[-1])
    line["agent_run"].update(change)
    return orjson.dumps(line)


def imported(tmp_path: Path, lines: list[bytes], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``agno-storage import`` of ``lines`` into a new file: its exit code and stderr."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code = main(["import", str(tmp_path / "t.db"), "--table", TABLE, str(path)])
    return code, capsys.readouterr().err


# --- a time beyond 64 bits ---------------------------------------------------------


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, 2**70, -(2**63) - 1])
@pytest.mark.parametrize("where", ["session line", "run line"])
def test_a_time_beyond_64_bits_is_a_bad_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: int, where: str
) -> None:
    lines = exported("go_agent_conversation.db")
    at = 1 if where == "session line" else len(lines) - 1
    marker = 987654321987
    line = orjson.loads(lines[at])
    (line["agent_run"] if "agent_run" in line else line)["created_at"] = marker
    # orjson writes no integer beyond 64 bits: the number goes in as text.
    lines[at] = orjson.dumps(line).replace(str(marker).encode(), str(value).encode())
    code, err = imported(tmp_path, lines, capsys)
    assert code == 2
    assert f"error: line {at + 1}: " in err  # orjson reads those beyond 2**64 as floats: refused as no int
    assert "Traceback" not in err


# --- a line that is not a JSON object ---------------------------------------------------


@pytest.mark.parametrize("value", [b"null", b"[]", b'"x"', b"5", b"true", b"[1, 2]"])
def test_a_run_line_whose_run_is_not_an_object_is_a_bad_line(tmp_path: Path, value: bytes) -> None:
    lines = exported("go_agent_conversation.db")
    lines.append(b'{"agent_run": ' + value + b"}")
    with pytest.raises(ExportFormatError) as caught:
        import_lines(iter(lines), str(tmp_path / "t.db"), TABLE)
    assert caught.value.line == len(lines)
    assert "not a JSON object" in str(caught.value)


@pytest.mark.parametrize("header", [b"[]", b'"x"', b"null", b"5", b"true"])
def test_a_header_that_is_not_an_object_is_a_bad_line_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: bytes
) -> None:
    code, err = imported(tmp_path, [header, *exported("go_agent.db")[1:]], capsys)
    assert code == 2
    assert "line 1 is not an export header" in err


def test_the_batches_before_a_bad_run_line_are_committed_and_counted(tmp_path: Path) -> None:
    lines = exported("go_agent_conversation.db")
    sessions = [line for line in lines[1:] if not line.startswith(b'{"agent_run"')]
    many = [orjson.dumps({**orjson.loads(sessions[0]), "session_id": f"s{i}"}) for i in range(5)]
    bad = [lines[0], *many, b'{"agent_run": []}']
    with pytest.raises(ExportFormatError) as caught:
        import_lines(iter(bad), str(tmp_path / "t.db"), TABLE, batch_size=2)
    assert (caught.value.line, caught.value.imported) == (len(bad), 4)
    assert session_ids(tmp_path / "t.db") == ["s0", "s1", "s2", "s3"]


def test_runs_are_never_committed_ahead_of_their_sessions_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of run lines is written with every session line before it committed first, even a batch of
    session lines not yet full: a bad line later (or a kill) never leaves runs whose session row is missing,
    which tables would count as sessions of their own and prune would take for a Go Agent's."""
    from agno_storage.ops import runs

    monkeypatch.setattr(runs, "BATCH_SIZE", 2)
    lines = exported("go_agent_conversation.db")
    sessions = [line for line in lines[1:] if not line.startswith(b'{"agent_run"')]
    many = [orjson.dumps({**orjson.loads(sessions[0]), "session_id": f"s{i}"}) for i in range(5)]
    run_lines = [run_line(lines, session_id=f"s{i}", id=f"run-{i}") for i in range(5)]
    bad = [lines[0], *many, *run_lines, b'{"agent_run": []}']
    with pytest.raises(ExportFormatError) as caught:
        import_lines(iter(bad), str(tmp_path / "t.db"), TABLE, batch_size=10)
    with sqlite3.connect(tmp_path / "t.db") as conn:
        orphans = conn.execute(
            f"SELECT DISTINCT session_id FROM agent_runs WHERE session_id NOT IN (SELECT session_id FROM {TABLE})"
        ).fetchall()
        held = conn.execute("SELECT count(*) FROM agent_runs").fetchone()[0]
    assert orphans == [] and held == 4  # two batches of two runs, each after the sessions before them
    assert caught.value.imported == len(session_ids(tmp_path / "t.db")) == 5


# --- a run line's values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"messages": "not json"}, "messages"),
        ({"messages": '{"role": "user"}'}, "messages"),  # history reads a list
        ({"metrics": "[1]"}, "metrics"),
        ({"run_data": '{"a": NaN}'}, "run_data"),
        ({"session_id": ""}, "session_id"),
    ],
)
def test_a_run_line_history_could_not_read_is_a_bad_line(
    tmp_path: Path, change: dict[str, Any], column: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = exported("go_agent_conversation.db")
    lines[-1] = run_line(lines, **change)
    with pytest.raises(ExportFormatError) as caught:
        import_lines(iter(lines), str(tmp_path / "t.db"), TABLE)
    assert (caught.value.line, caught.value.column) == (len(lines), column)
    assert main(["doctor", str(tmp_path / "t.db")]) == 0  # nothing of it was written
    capsys.readouterr()


def test_doctor_reports_a_run_history_cannot_read_and_export_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "conv.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)
    with sqlite3.connect(path) as conn:
        (run_id,) = conn.execute("SELECT id FROM agent_runs ORDER BY id LIMIT 1").fetchone()
        conn.execute("UPDATE agent_runs SET messages = 'not json' WHERE id = ?", (run_id,))
    with open_database(str(path)) as db:
        report = diagnose(db, str(path))
    assert not report.ok
    assert [(f.kind, f.table, f.column) for f in report.findings if f.severity == "problem"] == [
        ("bad_value", "agent_runs", "messages")
    ]
    assert main(["doctor", str(path)]) == 3
    assert main(["export", str(path), "--table", TABLE, "-o", str(tmp_path / "x.jsonl")]) == 2
    assert "agent_runs.messages" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


# --- session ids ------------------------------------------------------------------------------


def test_a_session_id_twice_in_one_file_is_upserted_twice_as_two_imports_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As two imports of one session would: the later line wins, the first's created_at kept."""
    header, first = exported("go_agent.db")[:2]
    again = orjson.dumps({**orjson.loads(first), "memory": '{"v": 2}', "created_at": 1, "updated_at": 2})
    code, err = imported(tmp_path, [header, first, again], capsys)
    assert code == 0, err
    with sqlite3.connect(tmp_path / "t.db") as conn:
        row = conn.execute(f"SELECT memory, created_at, updated_at FROM {TABLE}").fetchall()
    assert row == [('{"v": 2}', orjson.loads(first)["created_at"], 2)]


def with_id(line: bytes, session_id: str, memory: str) -> bytes:
    return orjson.dumps({**orjson.loads(line), "session_id": session_id, "memory": memory})


@pytest.fixture(params=["sqlite", "postgres"])
def import_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """A database to import into (a new SQLite file, or a schema of its own on PostgreSQL) and its schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "t.db"), None
        return
    import psycopg

    url = str(request.getfixturevalue("pg_server").dsn)
    schema = f"imp_{tmp_path.name[-12:].replace('-', '_').lower()}"
    try:
        yield url, schema
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_a_session_id_on_several_lines_is_one_session_imported_and_its_later_lines_are_counted_apart(
    import_url: tuple[str, str | None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The summary says what the table holds after it: each session once, however many lines wrote it, in
    whatever order and batches they come; the lines that replaced a session written before are counted apart."""
    url, schema = import_url
    header, first = exported("go_agent.db")[:2]
    order = ["b", "a", "b", "c", "a", "a"]  # over batches of two, out of order
    lines = [header, *(with_id(first, sid, f'{{"line": {i}}}') for i, sid in enumerate(order))]
    summary = import_lines(iter(lines), url, TABLE, schema=schema, batch_size=2)
    assert (summary.sessions, summary.repeated) == (3, 3)
    with open_database(url, schema or "ai") as db:
        memory = db.query(f"SELECT session_id, {db.as_text('memory')} FROM {db.qualified(TABLE)} ORDER BY session_id")
    assert memory == [("a", '{"line": 5}'), ("b", '{"line": 2}'), ("c", '{"line": 3}')]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    command = ["import", url, "--table", TABLE, str(path), *(["--schema", schema] if schema else [])]
    assert main(command) == 0
    assert capsys.readouterr().out == (
        f"imported 3 sessions into table {TABLE!r} (3 lines were later versions of a session written before "
        "them, which they replaced)\n"
    )
    bad = orjson.dumps({**orjson.loads(first), "session_id": ""})
    with pytest.raises(ExportFormatError) as caught:
        import_lines(iter([*lines[:5], bad]), url, TABLE, schema=schema, batch_size=2)
    assert caught.value.imported == 3  # [b, a], then [b, c]: three sessions, four lines
    assert "3 sessions were imported before its batch" in str(caught.value)


def test_an_empty_session_id_is_a_bad_line(tmp_path: Path) -> None:
    header, first = exported("go_agent.db")[:2]
    empty = orjson.dumps({**orjson.loads(first), "session_id": ""})
    with pytest.raises(ExportFormatError) as caught:
        import_lines(iter([header, empty]), str(tmp_path / "t.db"), TABLE)
    assert (caught.value.line, caught.value.column) == (2, "session_id")
    assert session_ids(tmp_path / "t.db") == []
