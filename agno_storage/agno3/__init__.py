"""Move agno 1.x and agno-golang sessions into agno 3.1.10's tables (docs/agno3.md).

Imports no agno: it reads the 1.x tables through this package's stores and
writes agno 3's tables with its own SQL.
"""

from agno_storage.agno3.migrate import DEFAULT_TABLES, WORKERS_LIMIT, Agno3Report, ModeCount, to_agno3

__all__ = ["DEFAULT_TABLES", "WORKERS_LIMIT", "Agno3Report", "ModeCount", "to_agno3"]
