"""agno_storage: agent-session storage shared by agno (Python) and agno-golang.

Importing this package does not import agno; the agno adapter lives in
:mod:`agno_storage.agno`.
"""

from agno_storage.backends.base import BaseStorage
from agno_storage.backends.sqlite import SqliteStorage, Synchronous
from agno_storage.errors import (
    BusyError,
    ConnectionLostError,
    CorruptRowError,
    InvalidInputError,
    OwnershipError,
    SchemaMismatchError,
    SchemaVersionError,
    StorageError,
)
from agno_storage.models import (
    AgentSession,
    BaseSession,
    Mode,
    Session,
    TeamSession,
    WorkflowSession,
    WorkflowSessionV2,
)

__version__ = "0.1.0"

__all__ = [
    "AgentSession",
    "BaseSession",
    "BaseStorage",
    "BusyError",
    "ConnectionLostError",
    "CorruptRowError",
    "InvalidInputError",
    "Mode",
    "OwnershipError",
    "SchemaMismatchError",
    "SchemaVersionError",
    "Session",
    "SqliteStorage",
    "StorageError",
    "Synchronous",
    "TeamSession",
    "WorkflowSession",
    "WorkflowSessionV2",
]
