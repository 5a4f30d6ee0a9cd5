"""Session records, one attrs class per mode. Pure data: no I/O, no encoding.

Field names are agno 1.x's, so ``attrs.asdict(session)`` has the keys agno's
``Session.from_dict`` reads.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, TypeAlias

import attrs

JSONObject: TypeAlias = dict[str, Any]


class Mode(enum.StrEnum):
    """The four kinds of sessions table; the values are agno's mode strings."""

    AGENT = "agent"
    TEAM = "team"
    WORKFLOW = "workflow"
    WORKFLOW_V2 = "workflow_v2"


#: Each mode's entity column (:data:`agno_storage.modes.SPECS`), read there on first use: a lookup per call
#: cost 1.3 us, an import statement included.
_ENTITY_COLUMNS: dict[Mode, str] = {}


@attrs.define(kw_only=True)
class BaseSession:
    """Fields every mode shares.

    ``user_id=None`` is stored as ``''`` (the column is NOT NULL in the Go
    layout) and reads back as ``None``. Timestamps are Unix seconds; the store
    fills them in on upsert.
    """

    MODE: ClassVar[Mode]

    session_id: str
    user_id: str | None = None
    memory: JSONObject | None = None
    session_data: JSONObject | None = None
    extra_data: JSONObject | None = None
    created_at: int | None = None
    updated_at: int | None = None

    @property
    def entity_id(self) -> str | None:
        """agent_id, team_id or workflow_id, whichever this mode has."""
        column = _ENTITY_COLUMNS.get(self.MODE)
        if column is None:
            from agno_storage.modes import SPECS  # the mode records are built on these classes

            column = _ENTITY_COLUMNS[self.MODE] = SPECS[self.MODE].entity_column
        value: str | None = getattr(self, column)
        return value


@attrs.define(kw_only=True)
class AgentSession(BaseSession):
    """A session of one agno Agent."""

    MODE: ClassVar[Mode] = Mode.AGENT

    agent_id: str | None = None
    agent_data: JSONObject | None = None
    team_session_id: str | None = None


@attrs.define(kw_only=True)
class TeamSession(BaseSession):
    """A session of one agno Team."""

    MODE: ClassVar[Mode] = Mode.TEAM

    team_id: str | None = None
    team_data: JSONObject | None = None
    team_session_id: str | None = None


@attrs.define(kw_only=True)
class WorkflowSession(BaseSession):
    """A session of one agno 1.x (v1) Workflow."""

    MODE: ClassVar[Mode] = Mode.WORKFLOW

    workflow_id: str | None = None
    workflow_data: JSONObject | None = None


@attrs.define(kw_only=True)
class WorkflowSessionV2(BaseSession):
    """A session of one agno v2 Workflow; ``runs`` is a JSON list or object."""

    MODE: ClassVar[Mode] = Mode.WORKFLOW_V2

    workflow_id: str | None = None
    workflow_name: str | None = None
    workflow_data: JSONObject | None = None
    runs: list[Any] | JSONObject | None = None


Session: TypeAlias = AgentSession | TeamSession | WorkflowSession | WorkflowSessionV2


@attrs.define(kw_only=True)
class SessionSummary:
    """What a list of sessions shows, read without decoding any JSON column.

    ``entity_id`` is the agent_id, team_id or workflow_id, whichever the
    table's mode has; ``user_id`` and ``entity_id`` are ``None`` for no value.
    """

    session_id: str
    user_id: str | None
    entity_id: str | None
    created_at: int | None
    updated_at: int | None
