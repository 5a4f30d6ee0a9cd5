"""export / import / copy: every mode of the awkward corpus, across both engines, reads back as it was."""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from agno_storage import BaseStorage, Mode
from agno_storage.backends.base import BaseStorage as _Base
from agno_storage.errors import SchemaMismatchError
from agno_storage.modes import SPECS
from agno_storage.ops.copy import copy_table
from agno_storage.ops.db import open_database, open_store
from agno_storage.ops.errors import ExportFormatError
from agno_storage.ops.export import export_table
from agno_storage.ops.lines import line_class, make_converter
from agno_storage.ops.load import import_lines
from agno_storage.ops.select import Filters

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CORPUS: dict[str, list[dict[str, Any]]] = json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))
_names = itertools.count()
_EXPONENT = re.compile(r"\d[eE][-+]?\d")


def corpus_sessions(mode: Mode, *, postgres: bool = False) -> list[Any]:
    """The corpus of ``mode``; for PostgreSQL without what JSONB cannot keep (as the store's own tests).

    JSONB stores no U+0000 and re-spells floats with an exponent (1e+21 comes
    back as 1000000000000000000000, an integer).
    """
    cls = SPECS[mode].session_class
    entries = CORPUS[mode.value] + (CORPUS["big"] if mode is Mode.AGENT else [])
    if postgres:
        entries = [e for e in entries if "\\u0000" not in json.dumps(e) and not _EXPONENT.search(json.dumps(e))]
    return [cls(**entry) for entry in entries]


@pytest.fixture
def url_of(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """url_of(engine) -> a database URL of that engine (a fresh SQLite file, or the test server)."""

    def make(engine: str) -> str:
        if engine == "sqlite":
            return str(tmp_path / f"db{next(_names)}.db")
        return str(request.getfixturevalue("pg_server").dsn)

    return make


def exported(url: str, table: str, filters: Filters = Filters()) -> list[bytes]:  # noqa: B008
    out = io.BytesIO()
    with open_database(url) as db:
        export_table(db, table, out, filters=filters)
    return out.getvalue().splitlines()


def read_all(url: str, table: str, mode: Mode) -> list[Any]:
    store: BaseStorage = open_store(url, table, mode)
    try:
        return sorted(store.list(), key=lambda s: s.session_id)
    finally:
        store.close()


def fill(url: str, mode: Mode, *, postgres: bool = False) -> str:
    table = f"src_{mode.value}_{next(_names)}"
    store = open_store(url, table, mode)
    try:
        store.upsert_many(corpus_sessions(mode, postgres=postgres))
    finally:
        store.close()
    return table


def drop(url: str, mode: Mode, *tables: str) -> None:
    if url.startswith("postgresql"):
        for table in tables:
            store: _Base = open_store(url, table, mode)
            store._drop()
            store.close()


ENGINE_PAIRS = [("sqlite", "sqlite"), ("sqlite", "postgres"), ("postgres", "sqlite"), ("postgres", "postgres")]


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize(("src_engine", "dst_engine"), ENGINE_PAIRS)
def test_export_import_and_copy_read_back_identical(url_of: Any, mode: Mode, src_engine: str, dst_engine: str) -> None:
    src, dst = url_of(src_engine), url_of(dst_engine)
    on_postgres = "postgres" in (src_engine, dst_engine)
    table = fill(src, mode, postgres=on_postgres)
    imported, copied = f"imp_{next(_names)}", f"cp_{next(_names)}"
    try:
        lines = exported(src, table)
        assert len(lines) == 1 + len(corpus_sessions(mode, postgres=on_postgres))
        summary = import_lines(lines, dst, imported, batch_size=7)
        assert summary.sessions == len(lines) - 1
        copy_table(open_database(src), table, dst, to_table=copied)
        copy_table(open_database(src), table, dst, to_table=copied)  # a rerun changes nothing
        expected = read_all(src, table, mode)
        assert read_all(dst, imported, mode) == expected
        assert read_all(dst, copied, mode) == expected
        if src_engine == dst_engine:
            # The stored text itself, byte for byte, timestamps included.
            assert exported(dst, imported)[1:] == lines[1:]
            assert exported(dst, copied)[1:] == lines[1:]
    finally:
        drop(src, mode, table)
        drop(dst, mode, imported, copied)


def test_export_keeps_the_stored_text_exactly() -> None:
    """agno's spacing and escapes, Go's escapes, a 30-digit integer: the line holds the column's text."""
    lines = exported(str(FIXTURES / "agno_agent.db"), "agent_sessions")
    import sqlite3

    conn = sqlite3.connect(f"file:{FIXTURES / 'agno_agent.db'}?mode=ro", uri=True)
    stored = {r[0]: r[1:] for r in conn.execute("SELECT session_id, memory, created_at FROM agent_sessions")}
    conn.close()
    for line in lines[1:]:
        row = orjson.loads(line)
        assert (row["memory"], row["created_at"]) == stored[row["session_id"]]


def test_wide_integers_and_unicode_survive_a_round_trip(tmp_path: Path) -> None:
    src = str(tmp_path / "a.db")
    store = open_store(src, "agent_sessions", Mode.AGENT)
    session = SPECS[Mode.AGENT].session_class(
        session_id="id-\U0001f600-<&>", user_id="ü", agent_id="a", memory={"n": 2**100, "s": "\u2028 😀 \x00"}
    )
    store.upsert(session)
    store.close()
    lines = exported(src, "agent_sessions")
    assert b"1267650600228229401496703205376" in lines[1]
    import_lines(lines, str(tmp_path / "b.db"), "agent_sessions")
    assert read_all(str(tmp_path / "b.db"), "agent_sessions", Mode.AGENT)[0].memory == session.memory


def test_every_line_is_what_the_converter_unstructures(tmp_path: Path) -> None:
    converter = make_converter()
    for mode in Mode:
        src = str(tmp_path / f"{mode.value}.db")
        table = fill(src, mode)
        for line in exported(src, table)[1:]:
            raw = orjson.loads(line)
            assert converter.unstructure(converter.structure(raw, line_class(mode))) == raw


def test_filters_select_by_user_and_time(tmp_path: Path) -> None:
    src = str(tmp_path / "a.db")
    store = open_store(src, "t", Mode.AGENT)
    cls = SPECS[Mode.AGENT].session_class
    with store.transaction() as conn:
        for i, (user, created, updated) in enumerate(
            [("ada", 100, 200), ("ada", 100, None), ("bob", 300, 400), (None, 500, 500)]
        ):
            store.upsert(cls(session_id=f"s{i}", user_id=user, agent_id="a"))
            conn.execute(
                "UPDATE t SET created_at = ?, updated_at = ? WHERE session_id = ?", (created, updated, f"s{i}")
            )
    store.close()

    def ids(filters: Filters) -> list[str]:
        return [orjson.loads(line)["session_id"] for line in exported(src, "t", filters)[1:]]

    assert ids(Filters(user="ada")) == ["s0", "s1"]
    assert ids(Filters(user="")) == ["s3"]
    # no updated_at: counts from created_at (100)
    assert ids(Filters(since=150)) == ["s0", "s2", "s3"]
    assert ids(Filters(until=200)) == ["s1"]
    assert ids(Filters(since=200, until=500)) == ["s0", "s2"]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_user_holding_nul_selects_nothing_on_either_engine(url_of: Any, engine: str) -> None:
    """PostgreSQL text cannot hold U+0000: export and prune of such a user find no session, as on SQLite."""
    from agno_storage.ops.prune import prune

    url = url_of(engine)
    table = fill(url, Mode.AGENT, postgres=engine == "postgres")
    before = read_all(url, table, Mode.AGENT)
    try:
        assert len(exported(url, table, Filters(user="a\x00b"))) == 1  # the header line alone
        with open_database(url) as db:
            for dry_run in (True, False):
                summary = prune(db, url, table, 1, user="a\x00b", dry_run=dry_run, now=2**40)
                assert summary.session_ids == ()
        assert read_all(url, table, Mode.AGENT) == before
    finally:
        drop(url, Mode.AGENT, table)


def test_a_bad_line_stops_the_import_and_leaves_nothing_of_its_batch(tmp_path: Path) -> None:
    src = str(tmp_path / "a.db")
    table = fill(src, Mode.TEAM)
    lines = exported(src, table)
    bad = orjson.loads(lines[5])
    bad["created_at"] = "1700000000"  # a string is not coerced
    lines[5] = orjson.dumps(bad)
    dst = str(tmp_path / "b.db")
    with pytest.raises(ExportFormatError) as caught:
        import_lines(lines, dst, "team_sessions", batch_size=3)
    assert caught.value.line == 6
    assert caught.value.imported == 3  # lines 2-4: the first batch; lines 5-7 are the bad one's
    assert len(read_all(dst, "team_sessions", Mode.TEAM)) == 3

    lines[5] = lines[4].replace(b'"team_data":"{', b'"team_data":"[')  # not JSON of its column's type
    with pytest.raises(ExportFormatError) as caught:
        import_lines(lines, str(tmp_path / "c.db"), "team_sessions", batch_size=100)
    assert caught.value.line == 6 and caught.value.column == "team_data" and caught.value.imported == 0
    assert not (tmp_path / "c.db").exists() or read_all(str(tmp_path / "c.db"), "team_sessions", Mode.TEAM) == []

    extra = orjson.loads(lines[2])
    extra["surprise"] = 1
    with pytest.raises(ExportFormatError, match="line 3"):
        import_lines([lines[0], lines[1], orjson.dumps(extra)], str(tmp_path / "d.db"), "team_sessions")


def test_import_refuses_a_file_of_another_mode(tmp_path: Path) -> None:
    src = str(tmp_path / "a.db")
    lines = exported(src := str(FIXTURES / "go_team.db"), "team_sessions")
    dst = str(tmp_path / "b.db")
    store = open_store(dst, "sessions", Mode.AGENT)
    store.create()
    store.close()
    with pytest.raises(SchemaMismatchError):
        import_lines(lines, dst, "sessions")
    with pytest.raises(ExportFormatError, match="team sessions, not agent"):
        import_lines(lines, dst, "other", mode=Mode.AGENT)
    with pytest.raises(ExportFormatError, match="line 1"):
        import_lines([b'{"format":"something else"}', *lines[1:]], dst, "other")
    assert src


def test_an_empty_json_text_crosses_to_postgres_as_null(url_of: Any) -> None:
    """The Go port writes '' where its encoding failed; the store reads it as none, and so does jsonb's NULL."""
    import sqlite3

    src = url_of("sqlite")
    table = fill(src, Mode.AGENT, postgres=True)  # the corpus' sessions that PostgreSQL can hold
    with sqlite3.connect(src) as conn:
        (sid,) = conn.execute(f'SELECT session_id FROM "{table}" LIMIT 1').fetchone()
        conn.execute(f"UPDATE \"{table}\" SET memory = '', extra_data = '' WHERE session_id = ?", (sid,))
    dst = url_of("postgres")
    target = f"dst_{next(_names)}"
    try:
        with open_database(src) as db:
            copy_table(db, table, dst, to_table=target)
        got = {s.session_id: s for s in read_all(dst, target, Mode.AGENT)}
        want = {s.session_id: s for s in read_all(src, table, Mode.AGENT)}
        assert got.keys() == want.keys()
        assert (got[sid].memory, got[sid].extra_data) == (None, None) == (want[sid].memory, want[sid].extra_data)
    finally:
        drop(dst, Mode.AGENT, target)


@pytest.mark.parametrize("value", ["1.5", "9e999"], ids=["fraction", "infinity"])
def test_a_time_held_as_a_real_is_a_corrupt_row_not_a_line_import_refuses(tmp_path: Path, value: str) -> None:
    """SQLite keeps 1.5 or infinity in an INTEGER column as a REAL: no line's time; orjson would write infinity as null."""
    import sqlite3

    from agno_storage.errors import CorruptRowError

    src = str(tmp_path / "s.db")
    table = fill(src, Mode.AGENT)
    with sqlite3.connect(src) as conn:
        (sid,) = conn.execute(f'SELECT session_id FROM "{table}" ORDER BY session_id DESC LIMIT 1').fetchone()
        conn.execute(f'UPDATE "{table}" SET updated_at = {value} WHERE session_id = ?', (sid,))
    with pytest.raises(CorruptRowError) as caught:
        exported(src, table)
    assert (caught.value.session_id, caught.value.column) == (sid, "updated_at")


def test_an_old_destination_table_is_the_one_the_hint_says_to_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agno_storage.cli import main

    old = tmp_path / "old.db"
    old.write_bytes((FIXTURES / "agno_agent_pre12.db").read_bytes())
    source = tmp_path / "source.db"
    source.write_bytes((FIXTURES / "go_agent.db").read_bytes())
    assert main(["copy", str(source), str(old), "--table", "agent_sessions"]) == 2
    err = capsys.readouterr().err
    assert f"(from a shell: agno-storage upgrade {old} --table agent_sessions)" in err, err


def test_a_batch_the_database_refuses_says_how_many_were_written_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk at the third batch: the error says the two before it are in the table, as they are."""
    from agno_storage.errors import DiskFullError
    from agno_storage.ops.write import RowWriter

    src = str(tmp_path / "src.db")
    table = "agent_sessions"
    store = open_store(src, table, Mode.AGENT)
    store.upsert_many([make_agent(i) for i in range(2500)])
    store.close()
    lines = exported(src, table)
    real = RowWriter._commit
    calls = []

    def commit(self: RowWriter, rows: list[list[Any]]) -> None:
        calls.append(len(rows))
        if len(calls) == 3:
            raise DiskFullError("the disk is full; nothing of this write was kept", table=table)
        real(self, rows)

    monkeypatch.setattr(RowWriter, "_commit", commit)
    dst = str(tmp_path / "dst.db")
    with pytest.raises(DiskFullError, match="2000 sessions were written before the batch that failed"):
        import_lines(iter(lines), dst, table)
    assert len(read_all(dst, table, Mode.AGENT)) == 2000


def make_agent(i: int) -> Any:
    from agno_storage import AgentSession

    return AgentSession(session_id=f"s{i:05d}", agent_id="a", memory={"runs": []})
