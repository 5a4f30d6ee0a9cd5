"""agno-storage history, search, usage and search-index print what the store returns."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage import Message, SearchHit, SqliteStorage
from agno_storage.cli import main
from agno_storage.conversation import make_converter
from agno_storage.usage import Usage
from tests.test_compat_go import FIXTURES


@pytest.fixture
def conv(tmp_path: Path) -> Path:
    db = tmp_path / "conv.db"
    shutil.copyfile(FIXTURES / "go_agent_conversation.db", db)
    return db


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_history_json_is_the_stores_history(conv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteStorage("agent_sessions", db_file=conv)
    converter = make_converter()
    for sid in ("agent-new", "agent-existing"):
        got = run_json(capsys, "history", str(conv), "--table", "agent_sessions", sid)
        assert converter.structure(got, list[Message]) == store.history(sid)
    assert main(["history", str(conv), "--table", "agent_sessions", "nobody-here"]) == 1
    assert "no session 'nobody-here'" in capsys.readouterr().err
    store.close()


def test_search_and_index_commands(conv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteStorage("agent_sessions", db_file=conv)
    store.append_run("eve-s", "eve's first question", "an answer", user_id="eve")  # another user's match
    converter = make_converter()
    argv = ("search", str(conv), "--table", "agent_sessions", "first question", "--user", "user-1")
    scanned = converter.structure(run_json(capsys, *argv), list[SearchHit])
    assert [(h.session_id, h.message) for h in scanned] == [
        (h.session_id, h.message) for h in store.search("first question", user_id="user-1")
    ]
    assert {h.session_id for h in scanned} == {"agent-existing", "agent-new"}
    assert main(["search-index", str(conv), "--table", "agent_sessions", "enable"]) == 0
    capsys.readouterr()
    indexed = converter.structure(run_json(capsys, *argv), list[SearchHit])
    assert sorted((h.session_id, h.message.content) for h in indexed) == sorted(
        (h.session_id, h.message.content) for h in scanned
    )
    assert run_json(capsys, "search", str(conv), "--table", "agent_sessions", '"first" NEAR(') == []
    assert main(["search-index", str(conv), "--table", "agent_sessions", "disable"]) == 0
    conn = sqlite3.connect(conv)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '%search%'").fetchone() == (0,)
    conn.close()
    with pytest.raises(SystemExit) as info:
        main(["search", str(conv), "--table", "agent_sessions", "x", "--limit", "0"])
    assert info.value.code == 2
    store.close()


def test_usage_json(conv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = make_converter().structure(run_json(capsys, "usage", str(conv), "--table", "agent_sessions"), list[Usage])
    assert [(u.entity_id, u.runs, u.input_tokens) for u in got] == [(None, 2, None), ("agent-1", 2, None)]
    assert run_json(capsys, "usage", str(conv), "--table", "agent_sessions", "--user", "someone-else") == []
