"""Cross-language compatibility with agno-golang v0.1.6's SQLite storage.

The Go side is ``compat/`` (see ``compat/NOTES.md``), which calls the
agno-golang module itself: ``writer`` made the
``fixtures/go_*.db`` files from ``fixtures/corpus.json``, ``reader`` prints what
agno-golang decodes from a file, ``hammer`` upserts into a shared live file.
Every test here needs the ``go`` toolchain; ``AGNO_STORAGE_REQUIRE_GO=1`` turns
the skip into a failure.

Two documented differences are handled explicitly, never by loose comparison:

* Float spelling: Go writes a float64 its own way (``2.0`` as ``2``, ``1e-07``
  as ``1e-7``, ``-0.0`` as ``-0``). The byte test rewrites only float tokens of
  this store's text into Go's spelling of the same float64, then demands
  byte equality, and checks that only sessions holding floats needed it.
* agno-golang's Read decodes JSON objects into ``map[string]interface{}``:
  every number becomes a float64, so integers past 2**53 come back rounded;
  ``team_session_id`` ``''`` comes back unset. :func:`go_decoded` applies
  exactly those losses to the corpus before comparing.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
COMPAT = ROOT / "compat"
CORPUS_PATH = FIXTURES / "corpus.json"

MODES = ("agent", "team", "workflow", "workflow_v2")
TABLES = {
    "agent": "agent_sessions",
    "team": "team_sessions",
    "workflow": "workflow_sessions",
    "workflow_v2": "workflow_v2_sessions",
}
JSON_COLUMNS = {
    "agent": ("memory", "session_data", "extra_data", "agent_data"),
    "team": ("memory", "session_data", "extra_data", "team_data"),
    "workflow": ("memory", "session_data", "extra_data", "workflow_data"),
    "workflow_v2": ("memory", "session_data", "extra_data", "workflow_data", "runs"),
}
TIMESTAMPS = ("created_at", "updated_at")
# NOT NULL text columns in the Go layout.
REQUIRED_TEXT = ("user_id", "agent_id", "team_id", "workflow_id", "workflow_name")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def corpus() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = json.loads(CORPUS_PATH.read_text(encoding="ascii"))
    return data


def corpus_sessions(corpus: dict[str, list[dict[str, Any]]], mode: str) -> list[dict[str, Any]]:
    """The sessions the Go writer put in go_<mode>.db (agent also holds ``big``)."""
    return corpus[mode] + (corpus["big"] if mode == "agent" else [])


def store_api() -> Any:
    import agno_storage

    return agno_storage


def store(path: Path, mode: str) -> Any:
    return store_api().SqliteStorage(table_name=TABLES[mode], db_file=str(path), mode=mode)


def session_obj(mode: str, data: dict[str, Any]) -> Any:
    api = store_api()
    cls = {
        "agent": api.AgentSession,
        "team": api.TeamSession,
        "workflow": api.WorkflowSession,
        "workflow_v2": api.WorkflowSessionV2,
    }[mode]
    return cls(**data)


# --------------------------------------------------------------------------- helpers


def expected_from_store(row: dict[str, Any]) -> dict[str, Any]:
    """The corpus entry as this store promises to read it back.

    The store's documented contract: a NOT NULL text column (user_id, the
    entity id, workflow_name) stored as ``''`` reads back as None.
    """
    out = dict(row)
    for col in REQUIRED_TEXT:
        if out.get(col) == "":
            out[col] = None
    return out


def _to_float64(value: Any) -> Any:
    """A JSON value after Go decoded it into interface{}: every number a float64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        # Rounded to float64 past 2**53, then printed by the reader's
        # json.Marshal with the shortest digits: 2**63-1 prints as
        # 9223372036854776000, which parses back as that integer.
        return json.loads(go_float(float(value)))
    if isinstance(value, float):
        return value
    if isinstance(value, list):
        return [_to_float64(v) for v in value]
    return {k: _to_float64(v) for k, v in value.items()}


def go_decoded(mode: str, row: dict[str, Any]) -> dict[str, Any]:
    """What agno-golang's Read gives back for a corpus entry, as the reader prints it.

    JSON objects lose integer precision past 2**53 (float64, see _to_float64). A JSON column that
    is not an object (v2 ``runs`` as a list) is left as raw text by Read, which
    the caller parses exactly, so it keeps full precision. ``team_session_id``
    ``''`` and NULL both become unset (omitted).
    """
    out = dict(row)
    for col in JSON_COLUMNS[mode]:
        if isinstance(out.get(col), dict):
            out[col] = _to_float64(out[col])
    if mode in ("agent", "team"):
        if not out.get("team_session_id"):
            out.pop("team_session_id", None)
    return out


_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def go_float(value: float) -> str:
    """Go encoding/json's spelling of a float64."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    dec = decimal.Decimal(repr(value))  # repr: shortest round-trip digits, as Go uses
    if 1e-6 <= abs(value) < 1e21:
        text = format(dec, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    sign, digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp10 = len(digits) - 1 + exponent
    mantissa = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'+' if exp10 >= 0 else '-'}{abs(exp10):02d}".replace("e-0", "e-")


def respell_floats(text: bytes) -> tuple[bytes, int]:
    """Rewrite every float token outside strings into Go's spelling; count changes."""
    out = bytearray()
    changed = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == 0x22:  # a string: copy through to the closing quote
            j = i + 1
            while text[j] != 0x22:
                j += 2 if text[j] == 0x5C else 1
            out += text[i : j + 1]
            i = j + 1
        elif c == 0x2D or 0x30 <= c <= 0x39:
            m = _NUMBER.match(text, i)
            assert m, text[i : i + 20]
            tok = m.group()
            if any(ch in tok for ch in b".eE"):
                new = go_float(float(tok)).encode()
                if new != tok:
                    changed += 1
                tok = new
            out += tok
            i = m.end()
        else:
            out.append(c)
            i += 1
    return bytes(out), changed


def connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection: inspecting a fixture must not change its bytes."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def raw_rows(path: Path, table: str) -> dict[bytes, dict[str, tuple[str, Any]]]:
    """Every column of every row as (typeof, raw bytes or int), keyed by session_id bytes."""
    conn = connect_ro(path)
    conn.text_factory = bytes
    try:
        cols = [r[1].decode() for r in conn.execute(f'PRAGMA table_info("{table}")')]
        select = ", ".join(f'typeof("{c}"), "{c}"' for c in cols)
        out = {}
        for row in conn.execute(f'SELECT {select} FROM "{table}"'):
            rec = {c: (row[2 * k].decode(), row[2 * k + 1]) for k, c in enumerate(cols)}
            out[rec["session_id"][1]] = rec
        return out
    finally:
        conn.close()


def schema_of(path: Path) -> list[tuple[str, str, str, str | None]]:
    conn = connect_ro(path)
    try:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        conn.close()


def columns_of(path: Path, table: str) -> list[tuple[Any, ...]]:
    conn = connect_ro(path)
    try:
        return list(conn.execute(f'PRAGMA table_info("{table}")'))
    finally:
        conn.close()


def write_with_store(path: Path, mode: str, sessions: list[dict[str, Any]]) -> None:
    st = store(path, mode)
    st.create()
    for s in sessions:
        st.upsert(session_obj(mode, s))
    close = getattr(st, "close", None)
    if close:
        close()


# --------------------------------------------------------------------------- the fixtures themselves


def test_go_fixtures_are_current(go_bin: Path, tmp_path: Path) -> None:
    """The committed go_*.db files are exactly what the writer makes from corpus.json."""
    proc = subprocess.run(
        [str(go_bin / "writer"), "-corpus", str(CORPUS_PATH), "-out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in tmp_path.glob("go_*.db"))
    assert written == sorted(p.name for p in FIXTURES.glob("go_*.db"))
    assert {f"go_{mode}.db" for mode in MODES} <= set(written)
    for name in written:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), f"{name} is stale: make fixtures-go"


# --------------------------------------------------------------------------- (a) read Go files


@pytest.mark.parametrize("mode", MODES)
def test_store_reads_go_fixtures(
    go_bin: Path, corpus: dict[str, list[dict[str, Any]]], mode: str, tmp_path: Path
) -> None:
    """Every session the Go writer stored reads back as exactly the corpus entry."""
    # A copy: opening a file switches it to WAL, which would rewrite the fixture's header.
    path = tmp_path / f"go_{mode}.db"
    shutil.copyfile(FIXTURES / f"go_{mode}.db", path)
    st = store(path, mode)
    expected = {s["session_id"]: expected_from_store(s) for s in corpus_sessions(corpus, mode)}
    for sid, want in expected.items():
        got = st.read(sid)
        assert got is not None, sid
        assert attrs.asdict(got) == want, sid
    listed = {s.session_id: attrs.asdict(s) for s in st.get_all_sessions()}
    assert listed == expected


# --------------------------------------------------------------------------- (b) same bytes


@pytest.mark.parametrize("mode", MODES)
def test_store_writes_go_bytes(
    go_bin: Path, corpus: dict[str, list[dict[str, Any]]], mode: str, tmp_path: Path
) -> None:
    """Rows this store writes equal the Go-written rows byte for byte.

    created_at/updated_at are left out (updated_at is the clock). Float tokens
    may be spelled the Python way; they are rewritten to Go's spelling of the
    same float64 before comparing, and only sessions with floats may need it.
    """
    table = TABLES[mode]
    sessions = corpus_sessions(corpus, mode)
    path = tmp_path / f"py_{mode}.db"
    write_with_store(path, mode, sessions)
    go_path = FIXTURES / f"go_{mode}.db"

    # The table and the Go port's indexes are identical; beside them stand only
    # this store's recency indexes (rx_*), which Go neither needs nor sees.
    ours_schema = schema_of(path)
    assert [row for row in ours_schema if not row[1].startswith("rx_")] == schema_of(go_path)
    assert [row[1] for row in ours_schema if row[1].startswith("rx_")] != []
    assert columns_of(path, table) == columns_of(go_path, table)

    ours, theirs = raw_rows(path, table), raw_rows(go_path, table)
    assert sorted(ours) == sorted(theirs)
    respelled: dict[str, list[str]] = {}
    mismatches = []
    for sid, go_row in theirs.items():
        py_row = ours[sid]
        for col, (go_type, go_val) in go_row.items():
            py_type, py_val = py_row[col]
            if col in TIMESTAMPS:
                assert py_type == go_type == "integer", (sid, col)
                continue
            if py_type != go_type:
                mismatches.append((sid, col, "typeof", go_type, py_type))
                continue
            if py_val == go_val:
                continue
            if isinstance(py_val, bytes):
                fixed, n = respell_floats(py_val)
                if n and fixed == go_val:
                    respelled.setdefault(sid.decode(), []).append(col)
                    continue
            mismatches.append((sid, col, "bytes", go_val, py_val))
    assert not mismatches, _describe(mismatches)
    # Only a session that holds a float may differ, and only by float spelling.
    for sid in respelled:
        s = next(x for x in sessions if x["session_id"] == sid)
        assert _has_float(s), sid


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _describe(mismatches: list[tuple[Any, ...]]) -> str:
    lines = []
    for sid, col, what, want, got in mismatches[:8]:
        if isinstance(want, bytes) and isinstance(got, bytes):
            k = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
            want, got = want[max(0, k - 40) : k + 60], got[max(0, k - 40) : k + 60]
        lines.append(f"{sid!r} {col} {what}: go={want!r} store={got!r}")
    return f"{len(mismatches)} differing cells; first:\n" + "\n".join(lines)


# --------------------------------------------------------------------------- (c) Go reads this store


def run_reader(go_bin: Path, path: Path, mode: str) -> dict[str, Any]:
    proc = subprocess.run(
        [str(go_bin / "reader"), "-db", str(path), "-mode", mode, "-table", TABLES[mode]],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@pytest.mark.parametrize("mode", ["agent", "team"])
def test_go_reads_store_agent_team(
    go_bin: Path, corpus: dict[str, list[dict[str, Any]]], mode: str, tmp_path: Path
) -> None:
    """agno-golang's Read returns every session this store wrote, as it would its own."""
    sessions = corpus_sessions(corpus, mode)
    path = tmp_path / f"py_{mode}.db"
    write_with_store(path, mode, sessions)
    out = run_reader(go_bin, path, mode)
    assert sorted(out["read"]) == sorted(s["session_id"] for s in sessions)
    for s in sessions:
        got = dict(out["read"][s["session_id"]])
        want = go_decoded(mode, s)
        got.pop("updated_at")  # this store's clock
        want.pop("updated_at")
        assert got == want, s["session_id"]
    assert sorted(x["session_id"] for x in out["recent"]) == sorted(out["read"])
    created = [x["created_at"] for x in out["recent"]]
    assert created == sorted(created, reverse=True)
    # GetAllSessions(ctx, user) and GetAllSessionIDs(ctx, user) filter by user;
    # GetAllSessions keeps only *AgentSession values, so a team table lists none.
    users = {s.get("user_id") or "" for s in sessions}
    assert sorted(out["session_ids"]) == sorted(out["all"]) == sorted(users)
    for user, ids in out["session_ids"].items():
        assert sorted(ids) == sorted(s["session_id"] for s in sessions if (s.get("user_id") or "") == user)
        listed = out["all"][user] or []
        if mode == "agent":
            assert [x["session_id"] for x in listed] == ids
            assert all(x == out["read"][x["session_id"]] for x in listed)
        else:
            assert listed == []


@pytest.mark.parametrize("mode", ["workflow", "workflow_v2"])
def test_go_reads_store_workflow(
    go_bin: Path, corpus: dict[str, list[dict[str, Any]]], mode: str, tmp_path: Path
) -> None:
    """agno-golang's Read returns raw row maps for workflow modes; they hold the corpus."""
    sessions = corpus[mode]
    path = tmp_path / f"py_{mode}.db"
    write_with_store(path, mode, sessions)
    out = run_reader(go_bin, path, mode)
    assert sorted(out["read"]) == sorted(s["session_id"] for s in sessions)
    for s in sessions:
        got = out["read"][s["session_id"]]
        want = go_decoded(mode, s)
        for col in JSON_COLUMNS[mode]:
            if isinstance(got[col], str):
                # Read leaves non-object JSON (a list) as its raw text: parse it exactly.
                got[col] = json.loads(got[col])
                want[col] = s[col]
        got.pop("updated_at")
        want.pop("updated_at")
        assert got == want, s["session_id"]
    assert sorted(x["session_id"] for x in out["recent"]) == sorted(out["read"])
    assert all(listed == [] for listed in out["all"].values())  # only agent sessions are listed


def test_go_reads_a_column_holding_an_integer_past_float64s_range_as_an_empty_map(go_bin: Path, tmp_path: Path) -> None:
    """An integer past float64's largest value (about 1.8e308) is stored exactly and read back exactly here,
    but agno-golang's Read cannot decode the column holding it into a map: it reads the whole column as empty,
    every other key lost, where an integer within float64's range only comes back rounded (docs/compat.md)."""
    path = tmp_path / "py_agent.db"
    huge, wide = 10**400, 2**70
    session = {
        "session_id": "huge",
        "user_id": "u",
        "agent_id": "a",
        "memory": {"n": huge, "keep": "this"},
        "session_data": {"n": wide, "keep": "this"},
        "created_at": 1700000000,
    }
    write_with_store(path, "agent", [session])
    got = store(path, "agent").read("huge")
    assert got.memory == {"n": huge, "keep": "this"} and got.session_data == {"n": wide, "keep": "this"}
    read = run_reader(go_bin, path, "agent")["read"]["huge"]
    assert read["session_data"] == {"n": float(wide), "keep": "this"}  # rounded, the rest kept
    assert read["memory"] == {}  # the whole column lost


# --------------------------------------------------------------------------- (d) one live file


HAMMER_N_GO = 1500
HAMMER_N_PY = 1000
HAMMER_OVERLAP = 300

PY_WRITER = textwrap.dedent(
    """
    import hashlib, json, sys, time
    from agno_storage import AgentSession, SqliteStorage

    path, prefix, n, overlap, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    st = SqliteStorage(table_name="agent_sessions", db_file=path, mode="agent")
    errors, samples, count = 0, [], 0
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.time()
    for i in range(n):
        sid = f"shared-{i:05d}" if i < overlap else f"{prefix}-{i:05d}"
        payload = f"{prefix}:{i};" * 40
        tag = lambda: {"writer": prefix, "seq": i}
        mem = {**tag(), "payload": payload, "sha256": hashlib.sha256(payload.encode()).hexdigest()}
        s = AgentSession(session_id=sid, user_id="hammer", agent_id="hammer-" + prefix, memory=mem,
                         session_data=tag(), extra_data=tag(), agent_data=tag(), created_at=1700000000 + i)
        try:
            st.upsert(s)
            count += 1
        except Exception as exc:
            errors += 1
            if len(samples) < 10:
                samples.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"prefix": prefix, "count": count, "errors": errors, "error_samples": samples,
                      "seconds": time.time() - t0}))
    """
)


@pytest.mark.slow
def test_shared_live_file(go_bin: Path, tmp_path: Path) -> None:
    """The Go hammer and two Python processes upsert into one file at once.

    No writer sees an error, no session is lost, the file passes
    integrity_check, and every overlapping session holds one writer's whole
    value (every column tagged by the same writer and sequence number, the
    payload matching its checksum).
    """
    path = tmp_path / "shared.db"
    st = store(path, "agent")
    st.create()
    close = getattr(st, "close", None)
    if close:
        close()
    start_at = time.time() + 3.0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [
                str(go_bin / "hammer"),
                "-db",
                str(path),
                "-mode",
                "agent",
                "-table",
                "agent_sessions",
                "-n",
                str(HAMMER_N_GO),
                "-prefix",
                "go",
                "-overlap",
                str(HAMMER_OVERLAP),
                "-start-at",
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    ]
    for prefix in ("py1", "py2"):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    PY_WRITER,
                    str(path),
                    prefix,
                    str(HAMMER_N_PY),
                    str(HAMMER_OVERLAP),
                    str(start_at),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=ROOT,
            )
        )
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
        summaries.append(json.loads(out))
    for s in summaries:
        assert s["errors"] == 0, s
    ns = {"go": HAMMER_N_GO, "py1": HAMMER_N_PY, "py2": HAMMER_N_PY}
    assert {s["prefix"]: s["count"] for s in summaries} == ns

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute(
            "SELECT session_id, user_id, agent_id, memory, session_data, extra_data, agent_data FROM agent_sessions"
        ).fetchall()
    finally:
        conn.close()
    want_ids = {f"shared-{i:05d}" for i in range(HAMMER_OVERLAP)}
    for prefix, n in ns.items():
        want_ids |= {f"{prefix}-{i:05d}" for i in range(HAMMER_OVERLAP, n)}
    assert {r[0] for r in rows} == want_ids

    writers_seen = set()
    for sid, user_id, agent_id, memory, session_data, extra_data, agent_data in rows:
        mem = json.loads(memory)
        writer, seq = mem["writer"], mem["seq"]
        assert user_id == "hammer" and agent_id == f"hammer-{writer}", sid
        for col in (session_data, extra_data, agent_data):
            assert json.loads(col) == {"writer": writer, "seq": seq}, sid
        payload = f"{writer}:{seq};" * 40
        assert mem["payload"] == payload and mem["sha256"] == hashlib.sha256(payload.encode()).hexdigest(), sid
        assert int(sid.rsplit("-", 1)[1]) == seq, sid
        if sid.startswith("shared-"):
            writers_seen.add(writer)
        else:
            assert sid.startswith(writer + "-"), sid
    assert writers_seen <= set(ns)
