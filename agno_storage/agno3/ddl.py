"""agno 3.1.10's tables as its own SqliteDb and PostgresDb create them.

The SQLite text is ``sqlite_master.sql`` of a file agno 3.1.10 made (SQLAlchemy
2.1 spelling: a tab before each column, ``", "`` at each line's end), so a
table made here is indistinguishable from one agno made. The PostgreSQL
statements give the same columns, types, nullability, keys, foreign key and
index names as ``PostgresDb`` (schema ``ai`` by default). tests/test_agno3.py
compares both with what agno 3.1.10 itself creates.
"""

from __future__ import annotations

from agno_storage.schema import quote

#: What ``agno_schema_versions.version`` says for each table: agno 3.1.10's
#: ``MigrationManager.latest_schema_version``; with it agno runs no migration.
SCHEMA_VERSION = "3.0.0"

SESSIONS = "agno_sessions"
RUNS = "agno_runs"
MEMORIES = "agno_memories"
VERSIONS = "agno_schema_versions"

#: Column order of each table, and which columns hold JSON.
COLUMNS: dict[str, tuple[str, ...]] = {
    SESSIONS: (
        "session_id",
        "session_type",
        "agent_id",
        "team_id",
        "workflow_id",
        "user_id",
        "session_data",
        "agent_data",
        "team_data",
        "workflow_data",
        "metadata",
        "summary",
        "created_at",
        "updated_at",
    ),
    RUNS: (
        "run_id",
        "session_id",
        "run_type",
        "agent_id",
        "team_id",
        "workflow_id",
        "user_id",
        "parent_run_id",
        "status",
        "run_index",
        "run_data",
        "created_at",
        "updated_at",
    ),
    MEMORIES: (
        "memory_id",
        "memory",
        "input",
        "agent_id",
        "team_id",
        "user_id",
        "topics",
        "feedback",
        "created_at",
        "updated_at",
    ),
}
JSON_COLUMNS: dict[str, frozenset[str]] = {
    SESSIONS: frozenset({"session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary"}),
    RUNS: frozenset({"run_data"}),
    MEMORIES: frozenset({"memory", "topics"}),
}
KEYS = {SESSIONS: "session_id", RUNS: "run_id", MEMORIES: "memory_id"}

_SQLITE_TABLES: dict[str, str] = {
    SESSIONS: (
        "CREATE TABLE agno_sessions (\n"
        "\tsession_id VARCHAR NOT NULL, \n"
        "\tsession_type VARCHAR NOT NULL, \n"
        "\tagent_id VARCHAR, \n"
        "\tteam_id VARCHAR, \n"
        "\tworkflow_id VARCHAR, \n"
        "\tuser_id VARCHAR, \n"
        "\tsession_data JSON, \n"
        "\tagent_data JSON, \n"
        "\tteam_data JSON, \n"
        "\tworkflow_data JSON, \n"
        "\tmetadata JSON, \n"
        "\tsummary JSON, \n"
        "\tcreated_at BIGINT NOT NULL, \n"
        "\tupdated_at BIGINT, \n"
        "\tPRIMARY KEY (session_id)\n"
        ")"
    ),
    VERSIONS: (
        "CREATE TABLE agno_schema_versions (\n"
        "\ttable_name VARCHAR NOT NULL, \n"
        "\tversion VARCHAR NOT NULL, \n"
        "\tcreated_at VARCHAR NOT NULL, \n"
        "\tupdated_at VARCHAR, \n"
        "\tPRIMARY KEY (table_name)\n"
        ")"
    ),
    RUNS: (
        "CREATE TABLE agno_runs (\n"
        "\trun_id VARCHAR NOT NULL, \n"
        "\tsession_id VARCHAR NOT NULL, \n"
        "\trun_type VARCHAR NOT NULL, \n"
        "\tagent_id VARCHAR, \n"
        "\tteam_id VARCHAR, \n"
        "\tworkflow_id VARCHAR, \n"
        "\tuser_id VARCHAR, \n"
        "\tparent_run_id VARCHAR, \n"
        "\tstatus VARCHAR, \n"
        "\trun_index BIGINT, \n"
        "\trun_data JSON NOT NULL, \n"
        "\tcreated_at BIGINT NOT NULL, \n"
        "\tupdated_at BIGINT, \n"
        "\tPRIMARY KEY (run_id), \n"
        "\tFOREIGN KEY(session_id) REFERENCES agno_sessions (session_id) ON DELETE CASCADE\n"
        ")"
    ),
    MEMORIES: (
        "CREATE TABLE agno_memories (\n"
        "\tmemory_id VARCHAR NOT NULL, \n"
        "\tmemory JSON NOT NULL, \n"
        "\tinput VARCHAR, \n"
        "\tagent_id VARCHAR, \n"
        "\tteam_id VARCHAR, \n"
        "\tuser_id VARCHAR, \n"
        "\ttopics JSON, \n"
        "\tfeedback VARCHAR, \n"
        "\tcreated_at BIGINT NOT NULL, \n"
        "\tupdated_at BIGINT, \n"
        "\tPRIMARY KEY (memory_id)\n"
        ")"
    ),
}

#: Indexes per table: (name, columns), named ``idx_<table>_<columns>`` as agno names them.
INDEXES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    SESSIONS: (
        ("idx_agno_sessions_created_at", ("created_at",)),
        ("idx_agno_sessions_session_type", ("session_type",)),
    ),
    VERSIONS: (("idx_agno_schema_versions_created_at", ("created_at",)),),
    RUNS: (
        ("idx_agno_runs_created_at", ("created_at",)),
        ("idx_agno_runs_agent_id", ("agent_id",)),
        ("idx_agno_runs_team_id", ("team_id",)),
        ("idx_agno_runs_run_type", ("run_type",)),
        ("idx_agno_runs_session_id", ("session_id",)),
        ("idx_agno_runs_status", ("status",)),
        ("idx_agno_runs_session_id_run_index", ("session_id", "run_index")),
        ("idx_agno_runs_workflow_id", ("workflow_id",)),
        ("idx_agno_runs_user_id", ("user_id",)),
    ),
    MEMORIES: (
        ("idx_agno_memories_user_id", ("user_id",)),
        ("idx_agno_memories_updated_at", ("updated_at",)),
        ("idx_agno_memories_created_at", ("created_at",)),
    ),
}

#: The order tables are made in: the versions table first (agno stamps each
#: table in it right after making it), sessions before the runs that refer to them.
TABLE_ORDER = (VERSIONS, SESSIONS, RUNS, MEMORIES)

_PG_TYPES = {"VARCHAR": "VARCHAR", "JSON": "JSONB", "BIGINT": "BIGINT"}

# agno's PostgreSQL memories table puts feedback and input as TEXT right after memory.
_PG_MEMORIES = (
    "memory_id VARCHAR NOT NULL",
    "memory JSONB NOT NULL",
    "feedback TEXT",
    "input TEXT",
    "agent_id VARCHAR",
    "team_id VARCHAR",
    "user_id VARCHAR",
    "topics JSONB",
    "created_at BIGINT NOT NULL",
    "updated_at BIGINT",
)


def sqlite_statements(table: str) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements for ``table`` on SQLite, in agno's order."""
    out = [_SQLITE_TABLES[table]]
    out += [f"CREATE INDEX {name} ON {table} ({', '.join(cols)})" for name, cols in INDEXES[table]]
    return out


def _sqlite_column_lines(table: str) -> list[str]:
    body = _SQLITE_TABLES[table].split("(\n", 1)[1].rsplit("\n)", 1)[0]
    return [line.strip().rstrip(",").strip() for line in body.split("\n")]


def postgres_statements(table: str, schema: str | None) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements for ``table`` on PostgreSQL, in ``schema`` (None: search path)."""
    prefix = f"{quote(schema)}." if schema else ""
    if table == MEMORIES:
        lines = [*_PG_MEMORIES, "PRIMARY KEY (memory_id)"]
    else:
        lines = []
        for line in _sqlite_column_lines(table):
            if line.startswith("FOREIGN KEY"):
                line = line.replace("REFERENCES agno_sessions ", f"REFERENCES {prefix}agno_sessions ")
            elif not line.startswith("PRIMARY KEY"):
                name, kind, *rest = line.split(" ")
                line = " ".join([name, _PG_TYPES[kind], *rest])
            lines.append(line)
    out = [f"CREATE TABLE IF NOT EXISTS {prefix}{table} (\n\t" + ", \n\t".join(lines) + "\n)"]
    out += [
        f"CREATE INDEX IF NOT EXISTS {name} ON {prefix}{table} ({', '.join(cols)})" for name, cols in INDEXES[table]
    ]
    return out


__all__ = [
    "COLUMNS",
    "INDEXES",
    "JSON_COLUMNS",
    "KEYS",
    "MEMORIES",
    "RUNS",
    "SCHEMA_VERSION",
    "SESSIONS",
    "TABLE_ORDER",
    "VERSIONS",
    "postgres_statements",
    "sqlite_statements",
]
