"""agno-golang v0.1.6 as Go services run it, on files this store shares.

``tests/test_compat_go.py`` checks the bytes and the storage read methods;
this module runs agno-golang's own ``agent.Agent`` and ``team.Team``
(``compat/cmd/agent``, ``compat/cmd/team``, with the canned model of
``compat/internal/canned``) and pins down each upstream behaviour that
decides what a shared file holds. docs/compat.md ("agno-golang v0.1.6 as it
is") names the test for each.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.test_compat_go import FIXTURES, PY_WRITER, ROOT, TABLES, raw_rows, store

COMPAT = ROOT / "compat"
USER = "user-1"
TEAM = "go-team"


@pytest.fixture(scope="session")
def go_cmds(go_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """go_bin's commands plus compat/cmd/agent and compat/cmd/team."""
    out = tmp_path_factory.mktemp("gocmds")
    for name in os.listdir(go_bin):
        shutil.copy2(go_bin / name, out / name)
    go = shutil.which("go")
    assert go is not None  # go_bin required it
    proc = subprocess.run(
        [go, "build", "-o", str(out) + os.sep, "./cmd/agent", "./cmd/team"],
        cwd=COMPAT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"go build failed:\n{proc.stderr}"
    return out


def go(cmds: Path, name: str, *args: str, cwd: Path) -> dict[str, Any]:
    """Run a compat command and return its JSON output."""
    proc = subprocess.run([str(cmds / name), *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return out


def go_agent(cmds: Path, db: Path, session: str, prompts: list[str], log: Path) -> list[dict[str, str]]:
    args = ["-db", str(db), "-session", session, "-user", USER, "-log", str(log)]
    for p in prompts:
        args += ["-prompt", p]
    turns: list[dict[str, str]] = go(cmds, "agent", *args, cwd=db.parent)["turns"]
    return turns


def go_team(cmds: Path, db: Path, session: str, prompts: list[str], log: Path) -> list[dict[str, str]]:
    args = ["-db", str(db), "-session", session, "-user", USER, "-name", TEAM, "-log", str(log)]
    for p in prompts:
        args += ["-prompt", p]
    turns: list[dict[str, str]] = go(cmds, "team", *args, cwd=db.parent)["turns"]
    return turns


def go_read(cmds: Path, db: Path, mode: str, *args: str) -> dict[str, Any]:
    return go(cmds, "reader", "-db", str(db), "-mode", mode, "-table", TABLES[mode], *args, cwd=db.parent)


def model_calls(log: Path) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = json.loads(log.read_text(encoding="utf-8"))
    return calls


def canned(prompt: str) -> str:
    """The canned model's answer to a call whose last user message is ``prompt``."""
    return "canned: " + prompt[:80]


def agent_runs(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM agent_runs ORDER BY rowid")]
    finally:
        conn.close()


def agent_session(session_id: str, note: str) -> Any:
    from agno_storage import AgentSession

    return AgentSession(
        session_id=session_id,
        user_id=USER,
        agent_id="py-agent",
        memory={"runs": [{"content": note}]},
        session_data={"note": note},
        created_at=1700000000,
    )


def team_session(session_id: str, note: str) -> Any:
    from agno_storage import TeamSession

    return TeamSession(
        session_id=session_id, user_id=USER, team_id="py-team", team_data={"note": note}, created_at=1700000000
    )


def integrity(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


# --------------------------------------------------------------------------- fixtures written by Go's Agent and Team


CONV_PROMPTS = ["first question <&>", "zweite Frage: ünïcode 😀", "third question"]  # compat/cmd/writer


def test_store_reads_go_agent_and_team_conversations(tmp_path: Path) -> None:
    """What agno-golang's Agent and Team left in a file reads back through this store.

    The Agent wrote no session row for a new session id, and left the row it
    found untouched; the Team's three turns (one after a resume) are in
    team_data.messages as [{role, content}].
    """
    agent_db = tmp_path / "agent.db"
    shutil.copyfile(FIXTURES / "go_agent_conversation.db", agent_db)
    st = store(agent_db, "agent")
    assert [s.session_id for s in st.get_all_sessions()] == ["agent-existing"]
    existing = st.read("agent-existing")
    assert existing is not None
    assert (existing.user_id, existing.agent_id, existing.session_data) == (
        USER,
        "agent-1",
        {"note": "written before the agent ran"},
    )
    assert st.read("agent-new") is None
    runs = agent_runs(agent_db)
    assert [(r["session_id"], r["user_message"], r["agent_message"]) for r in runs] == [
        (sid, p, canned(p)) for sid in ("agent-existing", "agent-new") for p in CONV_PROMPTS[:2]
    ]

    team_db = tmp_path / "team.db"
    shutil.copyfile(FIXTURES / "go_team_conversation.db", team_db)
    team = store(team_db, "team").read("team-1")
    assert team is not None and team.team_id == TEAM and team.user_id == USER
    assert team.team_data is not None
    messages = team.team_data["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert [m["content"] for m in messages[::2]] == CONV_PROMPTS
    for prompt, answer in zip(CONV_PROMPTS, messages[1::2], strict=True):
        assert answer["content"].startswith("canned: Original request: " + prompt[:20])
    assert team.session_data == {"last_interaction": 1700000000, "member_count": 1, "mode": "coordinate"}


@pytest.mark.parametrize(
    ("fixture", "mode", "session_id"),
    [("go_agent_conversation.db", "agent", "agent-existing"), ("go_team_conversation.db", "team", "team-1")],
)
def test_store_rewrites_go_conversation_rows_byte_for_byte(
    fixture: str, mode: str, session_id: str, tmp_path: Path
) -> None:
    """A session the Go Agent or Team stored, read and written back by this store, keeps every byte but the clock
    (updated_at)."""
    src = tmp_path / fixture
    shutil.copyfile(FIXTURES / fixture, src)
    session = store(src, mode).read(session_id)
    assert session is not None
    out = tmp_path / "ours.db"
    st = store(out, mode)
    st.upsert(session)
    st.close()
    go_row = raw_rows(FIXTURES / fixture, TABLES[mode])[session_id.encode()]
    ours = raw_rows(out, TABLES[mode])[session_id.encode()]
    go_row.pop("updated_at")
    ours.pop("updated_at")
    assert ours == go_row


# --------------------------------------------------------------------------- upstream behaviours, one by one


def test_read_session_fails_on_every_row_of_the_shared_layout(go_cmds: Path, tmp_path: Path) -> None:
    """agno-golang's ReadSession scans SELECT * in its own column order, not the table's.

    On a table made by its own Create (go_agent.db) or by this store, every
    row fails at column 8 (agent_data scanned into created_at); Read, which
    decodes by column name, reads the same rows.
    """
    ours = tmp_path / "ours.db"
    st = store(ours, "agent")
    st.upsert(agent_session("py-1", "x"))
    st.close()
    theirs = tmp_path / "go_agent.db"
    shutil.copyfile(FIXTURES / "go_agent.db", theirs)
    for db in (ours, theirs):
        out = go_read(go_cmds, db, "agent")
        assert out["read_session"], db
        for sid, got in out["read_session"].items():
            assert "session" not in got, sid
            assert got["error"].startswith('sql: Scan error on column index 8, name "agent_data"'), got
            assert out["read"][sid]["session_id"] == sid


def test_read_session_not_found_text_is_not_what_the_agent_checks(go_cmds: Path, tmp_path: Path) -> None:
    """ReadSession says "session not found: <id>"; Agent.loadSession compares with "session not found".

    So a Go Agent never creates a session row: not for a new id in an
    existing table, not when the table is missing (no table is created either).
    """
    db = tmp_path / "shared.db"
    st = store(db, "agent")
    st.upsert(agent_session("py-1", "x"))
    st.close()
    out = go_read(go_cmds, db, "agent", "-session", "no-such-id")
    assert out["read_session"]["no-such-id"] == {"error": "session not found: no-such-id"}
    assert out["read"]["no-such-id"] is None

    go_agent(go_cmds, db, "go-new", ["hello"], tmp_path / "calls.json")
    assert store(db, "agent").read("go-new") is None
    assert [r["session_id"] for r in agent_runs(db)] == ["go-new"]

    empty = tmp_path / "empty.db"
    go_agent(go_cmds, empty, "go-new", ["hello"], tmp_path / "calls2.json")
    conn = sqlite3.connect(empty)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    finally:
        conn.close()
    assert tables == ["agent_runs"]


def test_agent_runs_foreign_key_and_deletes(go_cmds: Path, tmp_path: Path) -> None:
    """agent_runs declares FOREIGN KEY (session_id) REFERENCES <sessions table>(session_id).

    Nobody enforces it (SQLite's foreign_keys is off in every connection of
    both programs): runs of a session with no row are stored, and reported
    by foreign_key_check. Deleting a session through this store deletes its
    runs in the same transaction, so it leaves none behind; the file stays
    consistent.
    """
    db = tmp_path / "shared.db"
    st = store(db, "agent")
    st.upsert(agent_session("shared", "x"))
    st.close()
    go_agent(go_cmds, db, "shared", ["a", "b"], tmp_path / "c1.json")
    go_agent(go_cmds, db, "go-only", ["c"], tmp_path / "c2.json")
    conn = sqlite3.connect(db)
    try:
        fks = conn.execute("PRAGMA foreign_key_list(agent_runs)").fetchall()
        assert [(r[2], r[3], r[4]) for r in fks] == [("agent_sessions", "session_id", "session_id")]
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (0,)

        def orphans() -> list[str]:
            got = conn.execute(
                "SELECT r.session_id FROM pragma_foreign_key_check('agent_runs') c "
                "JOIN agent_runs r ON r.rowid = c.rowid ORDER BY c.rowid"
            ).fetchall()
            return [r[0] for r in got]

        assert orphans() == ["go-only"]
        st = store(db, "agent")
        st.delete_session("shared")
        st.close()
        assert orphans() == ["go-only"]
        assert conn.execute("SELECT count(*) FROM agent_runs WHERE session_id = 'shared'").fetchone() == (0,)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def test_storage_opened_by_path_finds_no_driver(go_cmds: Path, tmp_path: Path) -> None:
    """agno-golang imports modernc.org/sqlite (driver "sqlite") but opens DBFile with driver "sqlite3".

    A Go program must pass its own *sql.DB (SqliteStorageConfig.DB), as every
    compat command does.
    """
    db = tmp_path / "shared.db"
    st = store(db, "agent")
    st.upsert(agent_session("py-1", "x"))
    st.close()
    proc = subprocess.run(
        [str(go_cmds / "reader"), "-db", str(db), "-mode", "agent", "-table", "agent_sessions", "-by-path"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert 'sql: unknown driver "sqlite3"' in proc.stderr


def test_knowledge_table_beside_sessions(go_cmds: Path, tmp_path: Path) -> None:
    """agno-golang's knowledge methods create agno_knowledge in the sessions file; the store ignores it."""
    db = tmp_path / "shared.db"
    st = store(db, "agent")
    st.upsert(agent_session("py-1", "x"))
    st.close()
    out = go_read(go_cmds, db, "agent", "-knowledge")
    assert out["knowledge"] == {"rows": 0, "total": 0}
    conn = sqlite3.connect(db)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert names == {"agent_sessions", "agno_knowledge"}
    st = store(db, "agent")
    st.upsert(agent_session("py-2", "y"))
    assert sorted(s.session_id for s in st.get_all_sessions()) == ["py-1", "py-2"]
    st.close()
    assert integrity(db) == [("ok",)]


# --------------------------------------------------------------------------- one file, Go and Python conversations


def test_go_agent_and_team_share_a_file_with_python(go_cmds: Path, tmp_path: Path) -> None:
    """A Go Agent and a Go Team hold conversations in a file Python also writes, then resume them.

    Python reads every Go session; what it sees of the Agent's conversation
    (agent_runs) is exactly what the canned model was sent and answered. On
    resume the Team reloads team_data.messages and keeps appending; the Agent
    appends runs to the same session, but agno-golang v0.1.6 loads none of
    them back (its ReadSession fails, see above), so its model gets no history
    from the first process.
    """
    db = tmp_path / "shared.db"
    agents, teams = store(db, "agent"), store(db, "team")
    agents.upsert(agent_session("shared-agent", "python wrote this first"))
    agents.upsert(agent_session("py-agent-1", "python only"))
    teams.upsert(team_session("py-team-1", "python only"))
    before = attrs.asdict(agents.read("shared-agent"))

    first = ["first <&> question", "zweite Frage 😀"]
    go_agent(go_cmds, db, "shared-agent", first, tmp_path / "a1.json")
    go_agent(go_cmds, db, "go-agent-new", first, tmp_path / "n1.json")
    go_team(go_cmds, db, "go-team-1", first, tmp_path / "t1.json")
    agents.upsert(agent_session("py-agent-2", "python, between Go runs"))
    teams.upsert(team_session("py-team-2", "python, between Go runs"))

    # Resume, each in a new process.
    go_agent(go_cmds, db, "shared-agent", ["third"], tmp_path / "a2.json")
    go_agent(go_cmds, db, "go-agent-new", ["third"], tmp_path / "n2.json")
    go_team(go_cmds, db, "go-team-1", ["third"], tmp_path / "t2.json")

    # Python reads every session, its own and Go's.
    assert sorted(s.session_id for s in agents.get_all_sessions()) == ["py-agent-1", "py-agent-2", "shared-agent"]
    assert attrs.asdict(agents.read("shared-agent")) == before  # the Go Agent never writes the row
    assert sorted(s.session_id for s in teams.get_all_sessions()) == ["go-team-1", "py-team-1", "py-team-2"]
    team = teams.read("go-team-1")
    assert team is not None and team.team_id == TEAM and team.team_data is not None
    messages = team.team_data["messages"]
    prompts = [*first, "third"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert [m["content"] for m in messages[::2]] == prompts
    synthesis = [c for c in model_calls(tmp_path / "t1.json") + model_calls(tmp_path / "t2.json")]
    assert [m["content"] for m in messages[1::2]] == [c["reply"] for c in synthesis[2::3]]
    assert teams.read("py-team-1") is not None and teams.read("py-team-2") is not None
    agents.close()
    teams.close()

    # What the Agent's model was sent is what agent_runs holds, run by run.
    runs = agent_runs(db)
    for sid, logs in (("shared-agent", ("a1.json", "a2.json")), ("go-agent-new", ("n1.json", "n2.json"))):
        calls = [c for log in logs for c in model_calls(tmp_path / log)]
        mine = [r for r in runs if r["session_id"] == sid]
        assert [r["user_message"] for r in mine] == prompts
        assert [r["agent_message"] for r in mine] == [c["reply"] for c in calls] == [canned(p) for p in prompts]
        assert [json.loads(r["messages"]) for r in mine] == [c["messages"] for c in calls]
        assert {r["user_id"] for r in mine} == {USER}
        # Within one process the history is sent, non-user messages first
        # (agno-golang's Run moves them ahead of the user messages); the
        # resumed process sends none of the earlier turns.
        assert [(m["role"], m["content"]) for m in calls[1]["messages"]] == [
            ("assistant", canned(first[0])),
            ("user", first[0]),
            ("user", first[1]),
        ]
        assert calls[2]["messages"] == [{"role": "user", "content": "third"}]

    # Go reads the whole conversation back, and every session Python wrote.
    ids = ["go-agent-new", "py-agent-1", "py-agent-2", "shared-agent"]
    out = go_read(go_cmds, db, "agent", *(arg for sid in ids for arg in ("-session", sid)))
    for sid in ("shared-agent", "go-agent-new"):
        got = out["runs"][sid]["runs"]
        assert sorted(r["user_message"] for r in got) == sorted(prompts)
        assert {r["agent_message"] for r in got} == {canned(p) for p in prompts}
    assert out["read"]["go-agent-new"] is None
    assert {sid: out["read"][sid]["session_data"] for sid in ids[1:]} == {
        "py-agent-1": {"note": "python only"},
        "py-agent-2": {"note": "python, between Go runs"},
        "shared-agent": {"note": "python wrote this first"},
    }
    team_out = go_read(go_cmds, db, "team")
    assert team_out["read"]["go-team-1"]["team_data"]["messages"] == messages
    assert team_out["read"]["py-team-2"]["team_data"] == {"note": "python, between Go runs"}
    assert integrity(db) == [("ok",)]


# --------------------------------------------------------------------------- live sharing with a Go Agent


LIVE_GO = 600
LIVE_PY = 400
LIVE_OVERLAP = 150
LIVE_TURNS = 120


@pytest.mark.slow
def test_live_file_with_go_hammer_agent_and_python(go_cmds: Path, tmp_path: Path) -> None:
    """The Go hammer, a Go Agent writing agent_runs and two Python processes share one live file.

    The Agent's write errors would be swallowed by agno-golang (it only
    prints them in debug mode), so the run count is the check: every turn
    has its run. The session writers report 0 errors and every session holds
    one writer's whole value.
    """
    db = tmp_path / "live.db"
    st = store(db, "agent")
    st.create()
    st.close()
    start_at = str(time.time() + 3.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    hammer = [str(go_cmds / "hammer"), "-db", str(db), "-n", str(LIVE_GO), "-prefix", "go"]
    live = ["-turns", str(LIVE_TURNS), "-start-at", start_at]
    procs = {
        "go": subprocess.Popen(
            [*hammer, "-overlap", str(LIVE_OVERLAP), "-start-at", start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ),
        "agent": subprocess.Popen(
            [str(go_cmds / "agent"), "-db", str(db), "-session", "go-live", "-user", USER, "-prefix", "live", *live],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        ),
    }
    for prefix in ("py1", "py2"):
        procs[prefix] = subprocess.Popen(
            [sys.executable, "-c", PY_WRITER, str(db), prefix, str(LIVE_PY), str(LIVE_OVERLAP), start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
    outputs = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, (name, err.decode())
        outputs[name] = json.loads(out.decode().splitlines()[-1])
    for name in ("go", "py1", "py2"):
        assert outputs[name]["errors"] == 0, outputs[name]
        assert outputs[name]["count"] == (LIVE_GO if name == "go" else LIVE_PY)
    assert len(outputs["agent"]["turns"]) == LIVE_TURNS

    runs = agent_runs(db)
    assert [r["user_message"] for r in runs] == [f"live question {i}" for i in range(LIVE_TURNS)]
    assert all(r["session_id"] == "go-live" and r["agent_message"] == canned(r["user_message"]) for r in runs)
    for i, r in enumerate(runs):
        # Each run holds the whole history of this process: 2 messages per earlier turn, plus the prompt.
        assert len(json.loads(r["messages"])) == 2 * i + 1

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        query = "SELECT session_id, memory, session_data, extra_data, agent_data FROM agent_sessions"
        rows = conn.execute(query).fetchall()
    finally:
        conn.close()
    ns = {"go": LIVE_GO, "py1": LIVE_PY, "py2": LIVE_PY}
    want = {f"shared-{i:05d}" for i in range(LIVE_OVERLAP)}
    for prefix, n in ns.items():
        want |= {f"{prefix}-{i:05d}" for i in range(LIVE_OVERLAP, n)}
    assert {r[0] for r in rows} == want
    for sid, memory, *tagged in rows:
        mem = json.loads(memory)
        for col in tagged:
            assert json.loads(col) == {"writer": mem["writer"], "seq": mem["seq"]}, sid
        assert mem["payload"] == f"{mem['writer']}:{mem['seq']};" * 40, sid
