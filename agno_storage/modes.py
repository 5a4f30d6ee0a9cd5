"""One record per mode: every per-mode fact, in the one place each module reads it.

A :class:`ModeSpec` holds what distinguishes an agent, team, workflow and v2
workflow sessions table: its columns and what kind of value each holds, the
field naming the agent / team / workflow, its data column, the indexes the
Go port and agno 1.x make, agno's column order on PostgreSQL, and agno's
session class. The codec, the DDL of both engines, version detection, the
CLI and the agno adapter all read these records; a fifth mode is one more
entry in :data:`SPECS`.
"""

from __future__ import annotations

import enum

import attrs

from agno_storage.errors import InvalidInputError
from agno_storage.models import (
    AgentSession,
    Mode,
    Session,
    TeamSession,
    WorkflowSession,
    WorkflowSessionV2,
)


class ColumnKind(enum.Enum):
    """What a column holds, which decides how the codec writes and reads it."""

    KEY = "key"
    #: NOT NULL text: ``None`` is stored as ``''`` and ``''`` reads back as ``None``.
    REQUIRED_TEXT = "required_text"
    OPTIONAL_TEXT = "optional_text"
    #: A JSON object or null.
    JSON = "json"
    #: A JSON object, list or null.
    JSON_ANY = "json_any"
    TIMESTAMP = "timestamp"


#: Kinds stored as JSON text.
JSON_KINDS = frozenset({ColumnKind.JSON, ColumnKind.JSON_ANY})
#: The kinds of column that hold text: ids and owners, compared exactly.
TEXT_KINDS = frozenset({ColumnKind.KEY, ColumnKind.REQUIRED_TEXT, ColumnKind.OPTIONAL_TEXT})


@attrs.frozen
class Column:
    name: str
    #: The declaration after the name in the Go port's CREATE TABLE. Frozen:
    #: migrations add columns with it, so changing it changes what they write.
    decl: str
    kind: ColumnKind


_NOW = "INTEGER DEFAULT (strftime('%s', 'now'))"

#: The columns every mode starts with, in the Go port's table order.
COMMON_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "TEXT PRIMARY KEY", ColumnKind.KEY),
    Column("user_id", "TEXT NOT NULL", ColumnKind.REQUIRED_TEXT),
    Column("memory", "TEXT", ColumnKind.JSON),
    Column("session_data", "TEXT", ColumnKind.JSON),
    Column("extra_data", "TEXT", ColumnKind.JSON),
    Column("created_at", _NOW, ColumnKind.TIMESTAMP),
    Column("updated_at", _NOW, ColumnKind.TIMESTAMP),
)


@attrs.frozen
class ModeSpec:
    """Everything that is particular to one mode's sessions table."""

    mode: Mode
    #: The attrs record of this mode's sessions (:mod:`agno_storage.models`).
    session_class: type[Session]
    #: Columns after :data:`COMMON_COLUMNS`, in the Go port's table order.
    specific: tuple[Column, ...]
    #: The column naming the agent, team or workflow: what ``entity_id`` filters on.
    entity_column: str
    #: The column holding the agent's, team's or workflow's own data.
    data_column: str
    #: Columns the Go port indexes, one index each, in its CREATE INDEX order.
    go_indexed: tuple[str, ...]
    #: agno 1.x's PostgreSQL column order after the common columns (as pg_dump shows it).
    agno_pg_order: tuple[str, ...]
    #: Columns agno 1.x indexes (``index=True``), in the order its DDL creates them.
    agno_indexed: tuple[str, ...]
    #: agno 1.x's session dataclass, as ``module:qualname`` (agno is imported only by the adapter).
    agno_class: str
    #: Every column, common ones first, in table order.
    columns: tuple[Column, ...] = attrs.field(init=False)
    #: Column names in table order: the order of every row the codec builds or reads.
    names: tuple[str, ...] = attrs.field(init=False)
    #: The columns of a :class:`~agno_storage.models.SessionSummary`, in its field order.
    summary_columns: tuple[str, ...] = attrs.field(init=False)

    @columns.default
    def _columns(self) -> tuple[Column, ...]:
        return COMMON_COLUMNS + self.specific

    @names.default
    def _names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @summary_columns.default
    def _summary_columns(self) -> tuple[str, ...]:
        return ("session_id", "user_id", self.entity_column, "created_at", "updated_at")

    def __attrs_post_init__(self) -> None:
        # A record that contradicts itself is a programming error, caught on import.
        own = {c.name for c in self.specific}
        problems = [
            f"{what} {name!r} is not a {self.mode.value} column"
            for what, names in (
                ("entity column", (self.entity_column,)),
                ("data column", (self.data_column,)),
                ("Go index on", self.go_indexed),
                ("agno index on", self.agno_indexed),
            )
            for name in names
            if name not in self.names
        ]
        if sorted(self.agno_pg_order) != sorted(own):
            problems.append(f"agno's PostgreSQL order {self.agno_pg_order} does not list exactly {sorted(own)}")
        fields = set(attrs.fields_dict(self.session_class))
        if fields != set(self.names):
            problems.append(f"{self.session_class.__name__} has fields {sorted(fields)}, not the columns {self.names}")
        if self.session_class.MODE is not self.mode:
            problems.append(f"{self.session_class.__name__} is not a {self.mode.value} session class")
        if problems:
            raise AssertionError("; ".join(problems))

    def column(self, name: str) -> Column:
        """The column called ``name``; KeyError if this mode has none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


SPECS: dict[Mode, ModeSpec] = {
    spec.mode: spec
    for spec in (
        ModeSpec(
            mode=Mode.AGENT,
            session_class=AgentSession,
            specific=(
                Column("agent_id", "TEXT NOT NULL", ColumnKind.REQUIRED_TEXT),
                Column("agent_data", "TEXT", ColumnKind.JSON),
                Column("team_session_id", "TEXT", ColumnKind.OPTIONAL_TEXT),
            ),
            entity_column="agent_id",
            data_column="agent_data",
            go_indexed=("user_id", "created_at", "agent_id", "team_session_id"),
            agno_pg_order=("agent_id", "team_session_id", "agent_data"),
            agno_indexed=("user_id", "agent_id", "team_session_id"),
            agno_class="agno.storage.session.agent:AgentSession",
        ),
        ModeSpec(
            mode=Mode.TEAM,
            session_class=TeamSession,
            specific=(
                Column("team_id", "TEXT NOT NULL", ColumnKind.REQUIRED_TEXT),
                Column("team_data", "TEXT", ColumnKind.JSON),
                Column("team_session_id", "TEXT", ColumnKind.OPTIONAL_TEXT),
            ),
            entity_column="team_id",
            data_column="team_data",
            go_indexed=("user_id", "created_at", "team_id", "team_session_id"),
            agno_pg_order=("team_id", "team_session_id", "team_data"),
            agno_indexed=("user_id", "team_id", "team_session_id"),
            agno_class="agno.storage.session.team:TeamSession",
        ),
        ModeSpec(
            mode=Mode.WORKFLOW,
            session_class=WorkflowSession,
            specific=(
                Column("workflow_id", "TEXT NOT NULL", ColumnKind.REQUIRED_TEXT),
                Column("workflow_data", "TEXT", ColumnKind.JSON),
            ),
            entity_column="workflow_id",
            data_column="workflow_data",
            go_indexed=("user_id", "created_at", "workflow_id"),
            agno_pg_order=("workflow_id", "workflow_data"),
            agno_indexed=("user_id", "workflow_id"),
            agno_class="agno.storage.session.workflow:WorkflowSession",
        ),
        ModeSpec(
            mode=Mode.WORKFLOW_V2,
            session_class=WorkflowSessionV2,
            specific=(
                Column("workflow_id", "TEXT NOT NULL", ColumnKind.REQUIRED_TEXT),
                Column("workflow_name", "TEXT NOT NULL", ColumnKind.REQUIRED_TEXT),
                Column("workflow_data", "TEXT", ColumnKind.JSON),
                Column("runs", "TEXT", ColumnKind.JSON_ANY),
            ),
            entity_column="workflow_id",
            data_column="workflow_data",
            go_indexed=("user_id", "created_at", "workflow_id", "workflow_name"),
            agno_pg_order=("workflow_id", "workflow_name", "workflow_data", "runs"),
            agno_indexed=("user_id", "workflow_id", "workflow_name"),
            agno_class="agno.storage.session.v2.workflow:WorkflowSession",
        ),
    )
}


def spec(mode: Mode) -> ModeSpec:
    """The record of ``mode``."""
    return SPECS[mode]


def parse_mode(mode: object) -> Mode:
    """``mode`` as a :class:`Mode`; ``None`` means agent, as in agno. InvalidInputError otherwise."""
    if mode is None:
        return Mode.AGENT
    if isinstance(mode, str):
        try:
            return Mode(mode)
        except ValueError:
            pass
    raise InvalidInputError(f"unknown mode {mode!r}; expected one of {', '.join(m.value for m in Mode)}")


__all__ = [
    "COMMON_COLUMNS",
    "JSON_KINDS",
    "SPECS",
    "TEXT_KINDS",
    "Column",
    "ColumnKind",
    "ModeSpec",
    "parse_mode",
    "spec",
]
