"""agno_storage: agent-session storage shared by agno (Python) and agno-golang.

Importing this package imports neither agno nor psycopg: the agno adapter
lives in :mod:`agno_storage.agno`, and ``PostgresStorage`` loads its driver
when first named.
"""

from typing import TYPE_CHECKING, Any

from agno_storage.backends.base import BaseStorage
from agno_storage.backends.sqlite import SqliteStorage, Synchronous
from agno_storage.conversation import Message
from agno_storage.errors import (
    BusyError,
    ConnectionLostError,
    CorruptRowError,
    DatabaseCorruptError,
    DatabaseReplacedError,
    DiskFullError,
    InvalidInputError,
    OwnershipError,
    ReadOnlyDatabaseError,
    RowsKeptError,
    SchemaMismatchError,
    SchemaVersionError,
    StorageError,
    TableNotFoundError,
)
from agno_storage.models import (
    AgentSession,
    BaseSession,
    Mode,
    Session,
    SessionSummary,
    TeamSession,
    WorkflowSession,
    WorkflowSessionV2,
)
from agno_storage.search import SearchHit
from agno_storage.urls import open_storage

if TYPE_CHECKING:
    from agno_storage.backends.postgres import PostgresStorage as PostgresStorage

__version__ = "0.1.0"


# PostgresStorage stays out of __all__ so that ``from agno_storage import *``
# does not need psycopg either.
def __getattr__(name: str) -> Any:
    if name == "PostgresStorage":
        from agno_storage.backends.postgres import PostgresStorage

        return PostgresStorage
    raise AttributeError(f"module 'agno_storage' has no attribute {name!r}")


__all__ = [
    "AgentSession",
    "BaseSession",
    "BaseStorage",
    "BusyError",
    "ConnectionLostError",
    "CorruptRowError",
    "DatabaseCorruptError",
    "DatabaseReplacedError",
    "DiskFullError",
    "InvalidInputError",
    "Message",
    "Mode",
    "OwnershipError",
    "ReadOnlyDatabaseError",
    "RowsKeptError",
    "SchemaMismatchError",
    "SchemaVersionError",
    "SearchHit",
    "Session",
    "SessionSummary",
    "SqliteStorage",
    "StorageError",
    "Synchronous",
    "TableNotFoundError",
    "TeamSession",
    "WorkflowSession",
    "WorkflowSessionV2",
    "open_storage",
]
