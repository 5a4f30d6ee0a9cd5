"""Mapping a migration's batches in worker processes while the migrating process writes.

Mapping a 1.x session (decoding its JSON, building agno 3's run dicts,
encoding them) is Python work, and so is most of a write: in one process
they take turns on one core. :class:`WorkerPool` runs :class:`MapTask` in
``n`` processes of their own (:class:`agno_storage.workers.Pool`), each with
its own read-only :class:`~agno_storage.agno3.chunks.Source`, and hands the
results back in the order the batches were given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from agno_storage.agno3.chunks import ChunkResult, PlanItem, Source, SourceSpec, map_chunk
from agno_storage.agno3.records import Previous
from agno_storage.agno3.rows import rows_for
from agno_storage.workers import Pool, WorkerError

LABEL = "an agno 3 migration worker"


class MapTask:
    """A worker's side: the source opened once (read-only), then :func:`map_chunk` of each (chunk, previous)."""

    def __init__(self, spec: SourceSpec, engine: str | None, rewrite: bool = False) -> None:
        self.rewrite = rewrite
        self.source = Source(spec)
        try:
            self.rows = rows_for(engine) if engine is not None else None
        except BaseException:
            self.source.close()
            raise

    def __call__(self, frame: tuple[list[PlanItem], dict[str, Previous]]) -> ChunkResult:
        chunk, previous = frame
        return map_chunk(self.source, chunk, previous, self.rows, rewrite=self.rewrite)

    def close(self) -> None:
        self.source.close()


class WorkerPool(Pool):
    """``n`` worker processes mapping batches of one source; results come back in order.

    ``engine`` is the target's (``"sqlite"``, ``"postgres"``), whose rows
    the workers encode, or None on a dry run (nothing encoded); ``rewrite``
    as :func:`~agno_storage.agno3.chunks.map_chunk` takes it. A worker's
    error is raised by :meth:`map` for its batch, as the same exception; a
    worker that dies is a StorageError. ``wait``: as :class:`~agno_storage.workers.Pool` takes it. Close it (or
    use ``with``).
    """

    def __init__(
        self, n: int, spec: SourceSpec, engine: str | None, rewrite: bool = False, *, wait: bool = True
    ) -> None:
        super().__init__(n, f"{__name__}:MapTask", (spec, engine, rewrite), LABEL, wait=wait)

    def map(  # type: ignore[override]
        self, chunks: Iterable[Sequence[PlanItem]], previous: Callable[[Sequence[PlanItem]], dict[str, Previous]]
    ) -> Iterator[ChunkResult]:
        """Each chunk's result, in order. ``previous(chunk)`` is called in this process as each is handed over."""
        for result in super().map((list(chunk), previous(chunk)) for chunk in chunks):
            if not isinstance(result, ChunkResult):
                raise WorkerError(f"{LABEL} sent {type(result).__name__}, not a batch")
            yield result


__all__ = ["MapTask", "WorkerPool"]
