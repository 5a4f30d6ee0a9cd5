"""Build real agno Agents, Teams and Workflows on a fake model and run one turn.

Used in-process by the tests and as a script in a fresh process::

    python tests/agno_runner.py KIND STORE DB SESSION_ID USER_ID MESSAGE

KIND is agent, team, workflow or workflow_v2; STORE is ``ours`` (the
agno_storage adapter's SqliteStorage), ``ours-pg`` (its PostgresStorage) or
``agno`` (agno's own SqliteStorage, or PostgresStorage for a postgresql URL).
DB is a SQLite file or a URL (``sqlite:///...``, ``postgresql://...``). The
script prints one JSON object: what the model was sent on each call and the
reply.

:func:`continue_elsewhere` is the resume check the SQLite and PostgreSQL
tests share: two turns in this process, a third in a fresh one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # devkit, and agno_storage when not installed, as a script
    sys.path.insert(0, str(ROOT))

from agno.agent import Agent  # noqa: E402
from agno.run.response import RunResponse  # noqa: E402
from agno.storage.base import Storage  # noqa: E402
from agno.team import Team  # noqa: E402
from agno.workflow import Workflow  # noqa: E402
from agno.workflow.v2 import Step  # noqa: E402
from agno.workflow.v2 import Workflow as WorkflowV2  # noqa: E402

from devkit.fake_model import FakeModel  # noqa: E402

RUNNER = Path(__file__).resolve()

TABLES = {
    "agent": "agent_sessions",
    "team": "team_sessions",
    "workflow": "workflow_sessions",
    "workflow_v2": "workflow_v2_sessions",
}

KINDS = list(TABLES)

#: Every storage make_storage built in this process, for close_storages().
OPENED: list[Storage] = []


def make_storage(store: str, db: str, table: str, **options: Any) -> Storage:
    """Our adapter or agno's own store on ``db`` (a file or a URL), in the table's mode.

    The mode is passed up front although agno sets it again: agno's own store
    built in the default "agent" mode keeps the agent columns in its table
    definition after the switch, so it cannot read a team or workflow table
    without them and creates tables with the union of both column sets.
    """
    mode = next(kind for kind, name in TABLES.items() if name == table)
    storage = _build_storage(store, db, table, mode, options)
    OPENED.append(storage)
    return storage


def _build_storage(store: str, db: str, table: str, mode: str, options: dict[str, Any]) -> Storage:
    where: dict[str, Any] = {"db_url": db} if "://" in db else {"db_file": db}
    if store == "ours":
        from agno_storage.agno import SqliteStorage

        return SqliteStorage(table_name=table, mode=mode, **where, **options)  # type: ignore[arg-type]
    if store == "ours-pg":
        from agno_storage.agno import PostgresStorage

        return PostgresStorage(table_name=table, db_url=db, mode=mode, **options)  # type: ignore[arg-type]
    if db.split("+")[0].startswith("postgres"):
        from agno.storage.postgres import PostgresStorage as AgnoPostgresStorage

        # agno hands the URL to SQLAlchemy, whose default PostgreSQL driver is psycopg2.
        url = "postgresql+psycopg://" + db.partition("://")[2]
        return AgnoPostgresStorage(table_name=table, db_url=url, mode=mode)  # type: ignore[arg-type]
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    return AgnoSqliteStorage(table_name=table, mode=mode, **where)  # type: ignore[arg-type]


def close_storages() -> None:
    """Close every storage built in this process (PostgreSQL pools hold connections)."""
    while OPENED:
        storage = OPENED.pop()
        engine = getattr(storage, "db_engine", None)
        if engine is not None:
            engine.dispose()
        close = getattr(storage, "close", None)
        if close is not None:
            close()


def make_agent(storage: Storage, session_id: str, user_id: str | None, model: FakeModel) -> Agent:
    return Agent(
        name="Historian",
        agent_id="historian",
        model=model,
        storage=storage,
        session_id=session_id,
        user_id=user_id,
        add_history_to_messages=True,
        num_history_runs=10,
        telemetry=False,
        monitoring=False,
    )


class HistoryWorkflow(Workflow):
    """A v1 Workflow whose prompt lists the runs agno loaded from storage."""

    model: FakeModel | None = None

    def run(self, message: str) -> RunResponse:  # type: ignore[override]
        assert self.model is not None and self.session_id is not None
        runs = (self.memory.runs or {}).get(self.session_id, []) if self.memory is not None else []  # type: ignore[union-attr]
        earlier = [f"earlier: {r.content}" for r in runs]  # type: ignore[union-attr]
        turns = int(self.session_state.get("turns", 0)) + 1
        self.session_state["turns"] = turns
        helper = Agent(model=self.model, telemetry=False, monitoring=False)
        answer = helper.run("\n".join([*earlier, message]))
        return RunResponse(content=answer.content)


def run_turn(kind: str, store: str, db: str, session_id: str, user_id: str | None, message: str) -> dict[str, Any]:
    """Build a fresh ``kind`` on ``db`` and run one turn; report what the model saw."""
    model = FakeModel(prefix=kind)
    table = TABLES[kind]
    loaded_runs: int | None = None
    run: Callable[[], Any]
    if kind == "agent":
        agent = make_agent(make_storage(store, db, table), session_id, user_id, model)
        run = lambda: agent.run(message)  # noqa: E731
    elif kind == "team":
        members = [
            Agent(name="Alpha", model=FakeModel(prefix="alpha"), telemetry=False, monitoring=False),
            Agent(name="Beta", model=FakeModel(prefix="beta"), telemetry=False, monitoring=False),
        ]
        team = Team(
            name="Pair",
            team_id="pair",
            mode="coordinate",
            members=members,  # type: ignore[arg-type]
            model=model,
            storage=make_storage(store, db, table),
            session_id=session_id,
            user_id=user_id,
            enable_team_history=True,
            num_history_runs=10,
            telemetry=False,
            monitoring=False,
        )
        run = lambda: team.run(message)  # noqa: E731
    elif kind == "workflow":
        workflow = HistoryWorkflow(
            name="history",
            workflow_id="history-wf",
            storage=make_storage(store, db, table),
            session_id=session_id,
            user_id=user_id,
            telemetry=False,
            monitoring=False,
        )
        workflow.model = model
        run = lambda: workflow.run(message=message)  # noqa: E731
    elif kind == "workflow_v2":
        step_agent = make_agent(make_storage(store, db, TABLES["agent"]), session_id, user_id, model)
        flow = WorkflowV2(
            name="pipeline",
            workflow_id="pipeline-wf",
            storage=make_storage(store, db, table),
            steps=[Step(name="chat", agent=step_agent)],
            session_id=session_id,
            user_id=user_id,
        )
        flow.initialize_workflow()  # sets storage.mode, as run() would
        flow.read_from_storage()
        flow_session = flow.workflow_session
        loaded_runs = len(flow_session.runs or []) if flow_session is not None else 0
        run = lambda: flow.run(message=message)  # noqa: E731
    else:
        raise ValueError(f"unknown kind {kind!r}")
    response = run()
    return {
        "calls": model.calls,
        "content": getattr(response, "content", None),
        "loaded_runs": loaded_runs,
    }


def run_in_new_process(kind: str, store: str, db: str, session_id: str, message: str) -> dict[str, Any]:
    """One turn as user-1 in a fresh interpreter (this file as a script); what its model saw."""
    env = {**os.environ, "AGNO_TELEMETRY": "false", "AGNO_MONITOR": "false"}
    done = subprocess.run(
        [sys.executable, str(RUNNER), kind, store, db, session_id, "user-1", message],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def seen_by_model(result: dict[str, Any]) -> str:
    """Every text the model was sent on its last call, joined."""
    return "\n".join(m["content"] for m in result["calls"][-1])


def continue_elsewhere(kind: str, first: str, second: str, db: str) -> dict[str, Any]:
    """Two turns here on store ``first``, a third in a new process on ``second``; that turn's report.

    Each turn builds a fresh ``kind``, so only the storage carries the
    history: its earlier questions and replies reach the third turn's model
    only if they were written, read back and rebuilt.
    """
    session_id = f"resume-{kind}"
    for message in ("first question", "second question"):
        run_turn(kind, first, db, session_id, "user-1", message)
    return run_in_new_process(kind, second, db, session_id, "third question")


def assert_whole_history_reached(kind: str, result: dict[str, Any]) -> None:
    """The third turn's model saw all three questions and an earlier reply (and v2 loaded both runs)."""
    seen = seen_by_model(result)
    assert "first question" in seen
    assert "second question" in seen
    assert "third question" in seen
    # The earlier replies (assistant messages) came back from storage too.
    assert f"{kind} #1: first question" in seen
    if kind == "workflow_v2":
        assert result["loaded_runs"] == 2


def main(argv: list[str]) -> None:
    kind, store, db, session_id, user_id, message = argv
    print(json.dumps(run_turn(kind, store, db, session_id, user_id or None, message)))


if __name__ == "__main__":
    main(sys.argv[1:])
