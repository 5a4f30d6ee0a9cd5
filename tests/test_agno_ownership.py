"""Two users cannot read or overwrite each other's agno session by reusing its id."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("agno")
pytest.importorskip("agno_storage.agno")

from agno.storage.session.agent import AgentSession as AgnoAgentSession

from agno_storage.agno import SqliteStorage
from agno_storage.errors import OwnershipError
from devkit.fake_model import FakeModel
from tests.agno_runner import make_agent

SID = "shared-session-id"


def storage(db: Path, user_id: str | None = None) -> SqliteStorage:
    return SqliteStorage(table_name="agent_sessions", db_file=str(db), user_id=user_id)


def alice_owns_the_session(db: Path) -> None:
    alice = make_agent(storage(db, "alice"), SID, "alice", FakeModel(prefix="alice"))
    alice.run("alice's secret is 42")


def test_scoped_storage_hides_the_session_and_refuses_the_write(tmp_path: Path) -> None:
    db = tmp_path / "agno.db"
    alice_owns_the_session(db)
    bob_model = FakeModel(prefix="bob")
    bob = make_agent(storage(db, "bob"), SID, "bob", bob_model)
    with pytest.raises(OwnershipError) as refused:
        bob.run("what is alice's secret?")
    assert refused.value.session_id == SID
    # Bob's read found nothing, so Alice's history never reached his model.
    assert all("42" not in text for call in bob_model.calls for text in [m["content"] for m in call])
    kept = storage(db, "alice").read(SID)
    assert kept is not None and kept.user_id == "alice"
    assert "alice's secret is 42" in str(kept.memory)


def test_direct_calls_refuse_another_users_session(tmp_path: Path) -> None:
    db = tmp_path / "agno.db"
    alice_owns_the_session(db)
    unscoped, bobs = storage(db), storage(db, "bob")
    assert bobs.read(SID) is None
    assert unscoped.read(SID, user_id="bob") is None
    assert bobs.get_all_session_ids() == []
    with pytest.raises(OwnershipError):
        unscoped.upsert(AgnoAgentSession(session_id=SID, user_id="bob", memory={"runs": []}))
    with pytest.raises(OwnershipError):
        bobs.upsert(AgnoAgentSession(session_id=SID, memory={"runs": []}))  # user filled in from the scope
    with pytest.raises(OwnershipError):
        bobs.upsert(AgnoAgentSession(session_id="other", user_id="carol"))
    bobs.delete_session(SID)
    kept = unscoped.read(SID)
    assert kept is not None and kept.user_id == "alice"


def test_a_session_an_agent_with_no_user_writes_through_a_scoped_storage_is_that_users(tmp_path: Path) -> None:
    """An Agent given no user_id writes its session with none; a storage scoped to bob stores it as bob's, so his
    next turn finds it whole and no other user can take it over."""
    db = tmp_path / "agno.db"
    make_agent(storage(db, "bob"), SID, None, FakeModel(prefix="bob")).run("bob's first turn")
    model = FakeModel(prefix="bob")
    make_agent(storage(db, "bob"), SID, None, model).run("bob's second turn")
    assert "bob's first turn" in model.seen_texts()
    kept = storage(db).read(SID)
    assert kept is not None and kept.user_id == "bob"
    assert storage(db, "alice").read(SID) is None
    with pytest.raises(OwnershipError):
        storage(db).upsert(AgnoAgentSession(session_id=SID, user_id="alice", memory={"runs": []}))


def test_unscoped_storage_still_refuses_the_write(tmp_path: Path) -> None:
    # agno reads by session_id alone, so without user_id= Bob's Agent loads
    # Alice's history for this turn; the write back is refused all the same.
    db = tmp_path / "agno.db"
    alice_owns_the_session(db)
    bob = make_agent(storage(db), SID, "bob", FakeModel(prefix="bob"))
    with pytest.raises(OwnershipError):
        bob.run("hello")
    kept = storage(db).read(SID)
    assert kept is not None and kept.user_id == "alice"


def unowned_session(db: Path) -> None:
    for question in ("unowned turn one", "unowned turn two"):
        make_agent(storage(db), SID, None, FakeModel(prefix="m")).run(question)


def asked(db: Path) -> list[str | None]:
    return [m.content for m in storage(db).core.history(SID) if m.role == "user"]


def test_a_scoped_storage_never_takes_over_a_session_that_has_no_owner(tmp_path: Path) -> None:
    """Two turns stored with no user; then an Agent for alice on a storage scoped to her. Her read finds no
    session, so her write would replace both turns: it is refused, naming the setting that permits it, and the
    session is kept whole. With claim_unowned=True (agno's own behaviour) she takes it over."""
    db = tmp_path / "agno.db"
    unowned_session(db)
    model = FakeModel(prefix="alice")
    with pytest.raises(OwnershipError, match=r"has no owner.*claim_unowned=True permits") as refused:
        make_agent(storage(db, "alice"), SID, "alice", model).run("alice turn")
    assert (refused.value.session_id, refused.value.user_id) == (SID, "alice")
    kept = storage(db).read(SID)
    assert kept is not None and kept.user_id is None
    assert asked(db) == ["unowned turn one", "unowned turn two"]
    claiming = SqliteStorage(table_name="agent_sessions", db_file=str(db), user_id="alice", claim_unowned=True)
    make_agent(claiming, SID, "alice", FakeModel(prefix="alice")).run("alice turn")
    taken = storage(db).read(SID)
    assert taken is not None and taken.user_id == "alice"


def test_an_unscoped_storage_lets_an_agent_claim_the_unowned_session_it_loaded(tmp_path: Path) -> None:
    """Unscoped, agno loads a session by its id alone, the one with no owner whole: alice's Agent continues it
    and its write keeps every earlier turn and gives the session to her, as agno's own store does."""
    db = tmp_path / "agno.db"
    unowned_session(db)
    model = FakeModel(prefix="alice")
    make_agent(storage(db), SID, "alice", model).run("alice turn")
    assert "unowned turn two" in [m["content"] for m in model.calls[-1]]
    assert asked(db) == ["unowned turn one", "unowned turn two", "alice turn"]
    owned = storage(db).read(SID)
    assert owned is not None and owned.user_id == "alice"


def test_read_with_an_empty_user_id_is_no_filter_as_in_agno(tmp_path: Path) -> None:
    """agno's own read filters only on a non-empty user_id: "" reads the session whoever owns it. A scoped
    storage still answers for its own user only."""
    db = tmp_path / "agno.db"
    alice_owns_the_session(db)
    found = storage(db).read(SID, user_id="")
    assert found is not None and found.user_id == "alice"
    assert storage(db, "alice").read(SID, user_id="") is not None
    assert storage(db, "bob").read(SID, user_id="") is None
