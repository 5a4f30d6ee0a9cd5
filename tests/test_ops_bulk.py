"""import and copy in many batches: failures midway, a killed import, the durability sync, the line and JSON checks."""

from __future__ import annotations

import functools
import io
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cattrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agno_storage import AgentSession, CorruptRowError, Mode
from agno_storage.errors import BusyError, StorageError
from agno_storage.modes import SPECS
from agno_storage.ops.copy import copy_table
from agno_storage.ops.db import open_database, open_store
from agno_storage.ops.errors import ExportFormatError, RowsKeptError
from agno_storage.ops.export import export_table
from agno_storage.ops.lines import line_class, make_converter, row_reader
from agno_storage.ops.load import import_lines
from agno_storage.ops.write import BULK_CHECKPOINT_PAGES, BadValue, RowWriter


def source(path: Path, n: int) -> str:
    """A SQLite file holding ``n`` small agent sessions s00000, s00001, ... in ``agent_sessions``."""
    store = open_store(str(path), "agent_sessions", Mode.AGENT)
    try:
        store.upsert_many(
            AgentSession(session_id=f"s{i:05d}", agent_id="a", user_id="u", memory={"i": i}) for i in range(n)
        )
    finally:
        store.close()
    return str(path)


def export_lines(url: str) -> list[bytes]:
    out = io.BytesIO()
    with open_database(url) as db:
        export_table(db, "agent_sessions", out)
    return out.getvalue().splitlines()


def session_ids(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT session_id FROM agent_sessions ORDER BY session_id")]
    finally:
        conn.close()


class Destination:
    """A table to import or copy into: a fresh SQLite file, or a fresh table of the test server's schema ``ai``."""

    def __init__(self, engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.engine = engine
        if engine == "sqlite":
            self.url, self.table = str(tmp_path / "dst.db"), "agent_sessions"
        else:
            self.url = str(request.getfixturevalue("pg_server").dsn)
            self.table = f"bulk_{next(_tables)}_{os.getpid()}"

    def run(self, statement: str) -> list[tuple[object, ...]]:
        if self.engine == "sqlite":
            conn = sqlite3.connect(self.url)
            try:
                rows = conn.execute(statement).fetchall()
                conn.commit()
                return rows
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as pg:
            cur = pg.execute(statement)
            return cur.fetchall() if cur.description else []

    def qualified(self) -> str:
        return self.table if self.engine == "sqlite" else f"ai.{self.table}"

    def session_ids(self) -> list[str]:
        order = "" if self.engine == "sqlite" else ' COLLATE "C"'
        return [str(r[0]) for r in self.run(f"SELECT session_id FROM {self.qualified()} ORDER BY session_id{order}")]

    def create_refusing(self, session_id: str) -> None:
        """The table, with a trigger that refuses to insert ``session_id``."""
        self._create_with_trigger(
            "refuse", session_id, "RAISE(ABORT, 'refused by a trigger')", "RAISE EXCEPTION 'refused by a trigger';"
        )

    def create_skipping(self, session_id: str) -> None:
        """The table, with a trigger that skips ``session_id`` without an error (another program's, say)."""
        self._create_with_trigger("skip", session_id, "RAISE(IGNORE)", "RETURN NULL;")

    def _create_with_trigger(self, name: str, session_id: str, sqlite_does: str, postgres_does: str) -> None:
        """The table, with trigger ``name`` doing ``sqlite_does`` / ``postgres_does`` before an insert of ``session_id``."""
        store = open_store(self.url, self.table, Mode.AGENT)
        store.create()
        store.close()
        if self.engine == "sqlite":
            self.run(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {self.table} WHEN NEW.session_id = '{session_id}'"
                f" BEGIN SELECT {sqlite_does}; END"
            )
            return
        self.run(
            f"CREATE FUNCTION ai.{self.table}_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.session_id = '{session_id}' THEN {postgres_does} END IF; RETURN NEW; END $$"
        )
        self.run(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {self.qualified()} FOR EACH ROW"
            f" EXECUTE FUNCTION ai.{self.table}_{name}()"
        )

    def drop(self) -> None:
        if self.engine != "sqlite":
            self.run(f"DROP TABLE IF EXISTS {self.qualified()}")
            self.run(f"DROP FUNCTION IF EXISTS ai.{self.table}_refuse()")
            self.run(f"DROP FUNCTION IF EXISTS ai.{self.table}_skip()")


_tables = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def dest(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Destination]:
    """Where import and copy write: SQLite commits in the caller's thread, PostgreSQL in the writer's own."""
    destination = Destination(str(request.param), tmp_path, request)
    try:
        yield destination
    finally:
        destination.drop()


def test_a_batch_the_database_refuses_stops_the_import_with_the_batches_before_it(
    tmp_path: Path, dest: Destination
) -> None:
    lines = export_lines(source(tmp_path / "src.db", 50))
    dest.create_refusing("s00023")
    # Batches of 10: s00020-s00029 is refused (on PostgreSQL while the next batch is read).
    with pytest.raises(StorageError, match="refused by a trigger"):
        import_lines(lines, dest.url, dest.table, batch_size=10)
    assert dest.session_ids() == [f"s{i:05d}" for i in range(20)]


def test_a_batch_the_database_silently_keeps_a_session_out_of_stops_import_and_copy(
    tmp_path: Path, dest: Destination
) -> None:
    """A trigger that skips a row without an error (``RAISE(IGNORE)``, a PostgreSQL trigger returning NULL) is
    no session written: the count would say it was there."""
    src = source(tmp_path / "src.db", 50)
    lines = export_lines(src)
    dest.create_skipping("s00023")
    # Batches of 10: s00020-s00029 is the one the trigger keeps s00023 out of.
    with pytest.raises(RowsKeptError, match="kept 1 of the 10 sessions") as caught:
        import_lines(lines, dest.url, dest.table, batch_size=10)
    assert "20 sessions were written before the batch that failed" in str(caught.value)
    assert "running it again completes it" not in str(caught.value)  # the trigger would keep it out again
    assert dest.session_ids() == [f"s{i:05d}" for i in range(20)]  # that batch rolled back whole, none after it
    with open_database(src) as db, pytest.raises(RowsKeptError, match="kept 1 of the 50 sessions"):
        copy_table(db, "agent_sessions", dest.url, to_table=dest.table)
    assert dest.session_ids() == [f"s{i:05d}" for i in range(20)]


def test_a_bad_line_after_many_batches_counts_every_batch_committed_before_it(
    tmp_path: Path, dest: Destination
) -> None:
    lines = export_lines(source(tmp_path / "src.db", 50))
    lines[45] = lines[45].replace(b'"memory":"{', b'"memory":"[')  # s00044: a JSON list where an object goes
    with pytest.raises(ExportFormatError) as caught:
        import_lines(lines, dest.url, dest.table, batch_size=10)
    assert (caught.value.line, caught.value.column, caught.value.imported) == (46, "memory", 40)
    assert dest.session_ids() == [f"s{i:05d}" for i in range(40)]


def test_a_corrupt_row_late_in_a_copy_stops_it_with_the_batches_before_it(tmp_path: Path, dest: Destination) -> None:
    src = tmp_path / "src.db"
    source(src, 2500)  # three fetches of 1,000
    conn = sqlite3.connect(src)
    conn.execute("UPDATE agent_sessions SET memory = '{not json' WHERE session_id = 's02100'")
    conn.commit()
    conn.close()
    with open_database(str(src)) as db, pytest.raises(CorruptRowError) as caught:
        copy_table(db, "agent_sessions", dest.url, to_table=dest.table)
    assert (caught.value.session_id, caught.value.column) == ("s02100", "memory")
    assert "2000 sessions were copied before it" in str(caught.value)
    assert dest.session_ids() == [f"s{i:05d}" for i in range(2000)]


_KILLED_IMPORT = textwrap.dedent(
    """
    import os, signal, sys
    from agno_storage.ops.load import import_lines

    def lines():
        with open(sys.argv[1], "rb") as f:
            for number, line in enumerate(f, start=1):
                if number == int(sys.argv[3]):
                    os.kill(os.getpid(), signal.SIGKILL)
                yield line

    import_lines(lines(), sys.argv[2], "agent_sessions", batch_size=100)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_an_import_killed_midway_leaves_whole_batches_and_a_rerun_completes_it(tmp_path: Path) -> None:
    """What a crash mid-import leaves: the batches committed before it, each whole, in file order; nothing else."""
    src = source(tmp_path / "src.db", 1000)
    lines = export_lines(src)
    export = tmp_path / "agent.jsonl"
    export.write_bytes(b"\n".join(lines) + b"\n")
    dst = tmp_path / "dst.db"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    # Killed as it reads line 650: lines 2-601 (six batches) were handed to the writer, which on SQLite commits
    # each in the reading thread before the next line is read.
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_IMPORT, str(export), str(dst), "650"], env=env, check=False, timeout=120
    )
    assert done.returncode == -signal.SIGKILL
    conn = sqlite3.connect(dst)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert session_ids(dst) == [f"s{i:05d}" for i in range(600)]

    with export.open("rb") as f:
        assert import_lines(f, str(dst), "agent_sessions").sessions == 1000
    assert export_lines(str(dst))[1:] == lines[1:]


def test_import_fsyncs_the_wal_once_every_session_is_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches commit at synchronous=NORMAL; the WAL's fsync after the last one makes them as durable as FULL."""
    lines = export_lines(source(tmp_path / "src.db", 250))
    dst = tmp_path / "dst.db"
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.fstat(fd).st_ino == os.stat(f"{dst}-wal").st_ino:
            synced.append(len(session_ids(dst)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    import_lines(lines, str(dst), "agent_sessions", batch_size=100)
    assert synced == [250]


@pytest.mark.parametrize(
    "text",
    [
        '{"wide": 123456789012345678901234567890}',  # beyond 64 bits: the codec reads it
        '{"big": 18446744073709551616, "neg": -9223372036854775809}',
        "[[[1]]]",  # a list: the runs column
        '{"s": "\\u2028 \\ud83d\\ude00"}',
        "",  # no value, as the codec reads it
        "null",
    ],
)
def test_the_json_check_accepts_what_the_codec_reads(tmp_path: Path, text: str) -> None:
    with RowWriter(str(tmp_path / "a.db"), "workflow_v2_sessions", Mode.WORKFLOW_V2) as writer:
        names = writer.store.spec.names
        row: list[object] = ["s1"] + [None] * (len(names) - 1)  # session_id first
        row[names.index("runs")] = text  # an object or a list
        row[names.index("memory")] = "{}" if text.startswith("[") else text  # an object only
        assert writer.check(row)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "memory is not valid JSON"),
        ('{"a": NaN}', "memory holds NaN or an infinity"),
        ('{"a": 1} x', "memory is not valid JSON"),
        ('{"s": "\\ud800"}', "memory is not valid JSON"),  # a lone surrogate
        ("[1, 2]", "memory holds a JSON list, not dict"),
        ('"text"', "memory holds a JSON str, not dict"),
        ("5", "memory holds a JSON int, not dict"),
        ("[" * 2000 + "]" * 2000, "memory is not valid JSON"),  # deeper than the codec reads
        ("123456789012345678901234567890", "memory holds a JSON int, not dict"),
    ],
)
def test_the_json_check_refuses_what_is_not_a_json_object(tmp_path: Path, text: str, message: str) -> None:
    with RowWriter(str(tmp_path / "a.db"), "agent_sessions", Mode.AGENT) as writer:
        names = writer.store.spec.names
        row: list[object] = ["s1"] + [None] * (len(names) - 1)  # session_id first
        row[names.index("memory")] = text
        with pytest.raises(BadValue, match=message) as caught:
            writer.check(row)
        assert caught.value.column == "memory"


def test_a_stored_number_or_blob_in_a_json_column_is_refused_by_name(tmp_path: Path) -> None:
    """agno's SQLite JSON columns have numeric affinity: a number can come back instead of text; Go's
    database/sql stores a []byte as a BLOB, whatever JSON its bytes hold."""
    with RowWriter(str(tmp_path / "a.db"), "agent_sessions", Mode.AGENT) as writer:
        row: list[object] = ["s1"] + [None] * (len(writer.store.spec.names) - 1)
        for value, message in [(5, "memory holds a int 5, not JSON text"), (orjson.dumps({"a": 1}), "holds a bytes")]:
            row[writer.store.spec.names.index("memory")] = value
            with pytest.raises(BadValue, match=message) as caught:
                writer.check(row)
            assert caught.value.column == "memory"


@functools.cache
def _converter() -> cattrs.Converter:
    return make_converter()


@functools.cache
def _reader(mode: Mode) -> Callable[[object], list[object]]:
    return row_reader(mode, make_converter())


def _structured(mode: Mode, line: object) -> list[object] | str:
    """The row the converter reads from ``line``, or its error as the import words it."""
    try:
        got = _converter().structure(line, line_class(mode))
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            return "; ".join(cattrs.transform_error(exc, path="line"))
        return f"{type(exc).__name__}: {exc}"
    return [getattr(got, name) for name in SPECS[mode].names]


def _read(mode: Mode, line: object) -> list[object] | str:
    try:
        return _reader(mode)(line)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            return "; ".join(cattrs.transform_error(exc, path="line"))
        return f"{type(exc).__name__}: {exc}"


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.just([]), st.just({})
)


@st.composite
def _lines(draw: st.DrawFn) -> tuple[Mode, object]:
    """A decoded session line, right or slightly wrong: values of any JSON type, keys missing or extra."""
    mode = draw(st.sampled_from(list(Mode)))
    line: dict[str, object] = {}
    for column in SPECS[mode].columns:
        if draw(st.integers(0, 20)) == 0:
            continue  # a missing key
        line[column.name] = draw(
            st.one_of(_VALUES, st.just(None), st.integers() if column.kind.name == "TIMESTAMP" else st.text())
        )
    if draw(st.integers(0, 20)) == 0:
        line["surprise"] = 1
    return mode, (draw(st.sampled_from([[], "line", 5])) if draw(st.integers(0, 30)) == 0 else line)


@settings(max_examples=200, deadline=None)
@given(_lines())
def test_the_row_reader_reads_what_the_converter_reads(case: tuple[Mode, object]) -> None:
    """The plain-line shortcut takes exactly what the strict converter takes, and refuses with its words."""
    mode, line = case
    if isinstance(line, dict):
        assert _read(mode, line) == _structured(mode, line)
    else:
        assert _read(mode, line) == f"TypeError: a session line is a JSON object, not a JSON {type(line).__name__}"


def test_a_line_that_is_not_an_object_is_refused_with_its_number(tmp_path: Path) -> None:
    lines = export_lines(source(tmp_path / "src.db", 3))
    with pytest.raises(ExportFormatError, match="line 3: a session line is a JSON object, not a JSON list"):
        import_lines([*lines[:2], b"[1, 2]", *lines[2:]], str(tmp_path / "dst.db"), "agent_sessions")


@pytest.mark.parametrize(
    "change",
    [
        {"created_at": True},  # a bool is not an int
        {"created_at": 1.0},
        {"created_at": "1700000000"},
        {"user_id": 5},
        {"session_id": None},
        {"memory": {"a": 1}},  # the JSON column's text, not its value
    ],
)
def test_the_row_reader_refuses_each_wrong_type_as_the_converter_does(change: dict[str, object]) -> None:
    line = {name: None for name in SPECS[Mode.AGENT].names} | {"session_id": "s", "created_at": 1} | change
    assert isinstance(_structured(Mode.AGENT, line), str)
    assert _read(Mode.AGENT, line) == _structured(Mode.AGENT, line)


def test_blank_lines_are_skipped_and_keep_the_line_numbers(tmp_path: Path) -> None:
    lines = export_lines(source(tmp_path / "src.db", 3))
    with_blanks = [lines[0], b"", lines[1], b" \t\r\n", lines[2], b"\n", lines[3]]
    assert import_lines(with_blanks, str(tmp_path / "a.db"), "agent_sessions").sessions == 3
    with pytest.raises(ExportFormatError, match="line 4: "):
        import_lines([*with_blanks[:3], b"{}", *with_blanks[3:]], str(tmp_path / "b.db"), "agent_sessions")


def _twelve_megabytes_of_lines(tmp_path: Path) -> list[bytes]:
    """Export lines of 1,200 agent sessions of about 10 kB each."""
    src = tmp_path / "src.db"
    store = open_store(str(src), "agent_sessions", Mode.AGENT)
    store.upsert_many(
        AgentSession(session_id=f"s{i:05d}", agent_id="a", memory={"t": "x" * 10_000}) for i in range(1200)
    )
    store.close()
    return export_lines(str(src))


def test_import_checkpoints_the_wal_from_a_thread_not_the_connection_that_commits(tmp_path: Path) -> None:
    """The committing connection (not the store's first one) has the bulk autocheckpoints; a thread copies the WAL in."""
    lines = _twelve_megabytes_of_lines(tmp_path)
    dst = tmp_path / "dst.db"
    autocheckpoints: list[list[Any]] = []
    file_sizes: list[int] = []
    real_commit = RowWriter._commit

    def commit(self: RowWriter, rows: list[list[Any]]) -> None:
        real_commit(self, rows)
        autocheckpoints.append(self.store._query("PRAGMA wal_autocheckpoint", ()))
        file_sizes.append(os.path.getsize(dst))
        time.sleep(0.1)  # a batch's worth of time for the checkpoint thread to look

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RowWriter, "_commit", commit)
        import_lines(lines, str(dst), "agent_sessions", batch_size=100)
    assert autocheckpoints and all(s == [(BULK_CHECKPOINT_PAGES,)] for s in autocheckpoints)
    # About 12 MB of sessions, under the writer's own interval: the file grew while the batches were still
    # being written, so the thread copied them in.
    assert BULK_CHECKPOINT_PAGES * 4096 > 12_000_000
    assert file_sizes[-2] > 4_000_000 > file_sizes[0]


def test_the_wal_of_an_import_stays_within_the_checkpoint_interval(tmp_path: Path) -> None:
    """SQLite starts the WAL over only when a write begins with every page checkpointed: the thread alone seldom
    leaves it so, and without the writer's own checkpoints the WAL held the whole load."""
    lines = _twelve_megabytes_of_lines(tmp_path)
    dst = tmp_path / "dst.db"
    wal_sizes: list[int] = []

    class WalSize:
        def start(self, total: int | None) -> None:
            pass

        def advance(self, count: int) -> None:
            wal_sizes.append(os.path.getsize(f"{dst}-wal"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("agno_storage.ops.write.BULK_CHECKPOINT_PAGES", 256)  # 1 MiB
        import_lines(lines, str(dst), "agent_sessions", batch_size=100, progress=WalSize())
    # About 12 MB of sessions in 1 MB batches: the WAL stays near the interval and a batch or two.
    assert len(wal_sizes) >= 12 and max(wal_sizes) < 4_000_000, wal_sizes


def _owners_source(path: Path, n: int, owners: int) -> list[bytes]:
    """The export lines of ``n`` agent sessions s00000, ... owned by u0, u1, ... u{owners-1}, then u0 again."""
    store = open_store(str(path), "agent_sessions", Mode.AGENT)
    try:
        store.upsert_many(
            AgentSession(session_id=f"s{i:05d}", agent_id="a", user_id=f"u{i % owners}") for i in range(n)
        )
    finally:
        store.close()
    return export_lines(str(path))


def test_a_batch_another_programs_unique_index_refuses_does_not_say_a_rerun_completes_the_import(
    tmp_path: Path, dest: Destination
) -> None:
    """Another program's UNIQUE index on user_id refused the second batch (a second session of u0): the error
    said that running the import again completes it, though a rerun meets the same index."""
    lines = _owners_source(tmp_path / "src.db", 20, 15)
    store = open_store(dest.url, dest.table, Mode.AGENT)
    store.create()
    store.close()
    dest.run(f"CREATE UNIQUE INDEX {dest.table}_one_session_each ON {dest.qualified()} (user_id)")
    with pytest.raises(StorageError) as caught:
        import_lines(lines, dest.url, dest.table, batch_size=10)
    assert "10 sessions were written before the batch that failed, none of that batch" in str(caught.value)
    assert "running it again completes it" not in str(caught.value)
    assert dest.session_ids() == [f"s{i:05d}" for i in range(10)]


def test_a_batch_a_lock_held_past_the_busy_timeout_stops_says_a_rerun_completes_the_import(tmp_path: Path) -> None:
    """A lock another connection holds past the busy timeout is gone on a rerun: the error says so."""
    lines = export_lines(source(tmp_path / "src.db", 20))
    path = tmp_path / "dst.db"
    store = open_store(str(path), "agent_sessions", Mode.AGENT)
    store.create()
    store.close()
    other = sqlite3.connect(path, isolation_level=None)

    def locked_after_the_first_batch() -> Iterator[bytes]:
        yield from lines[:11]  # the header and the first batch, committed before the next line is read
        other.execute("BEGIN IMMEDIATE")
        yield from lines[11:]

    try:
        with pytest.raises(BusyError) as caught:
            import_lines(
                locked_after_the_first_batch(), f"sqlite:///{path}?timeout=0.2", "agent_sessions", batch_size=10
            )
    finally:
        other.close()
    assert (
        "10 sessions were written before the batch that failed, none of that batch (running it again completes it)"
        in str(caught.value)
    )
