"""Mapping a migration's batches in worker processes while the migrating process writes.

Mapping a 1.x session (decoding its JSON, building agno 3's run dicts,
encoding them) is Python work, and so is most of a write: in one process
they take turns on one core. :class:`WorkerPool` runs
:func:`~agno_storage.agno3.chunks.map_chunk` in ``n`` processes of their
own, each with its own read-only :class:`~agno_storage.agno3.chunks.Source`,
and hands the results back in the order the batches were given.

The workers are the same interpreter running :data:`BOOTSTRAP` (``python
-P -c``), not :mod:`multiprocessing`: a fork would copy the caller's
threads' locks, and ``spawn`` re-imports the caller's ``__main__``, which a
script without a ``__name__`` guard does not survive. The first frame a
worker reads is this process's ``sys.path`` (the working folder's entry
left out), so it imports this same package and its dependencies, also
where they were put on the path at run time; it answers ``ready`` once it
has opened the source, and :class:`WorkerPool` waits for that. It reads
from its stdin and replies on a pipe of its own, passed as its argument
(stdout goes nowhere: what a ``sitecustomize`` prints at start-up cannot
mix into the replies). Frames on the pipes are a length and a pickle;
each side trusts only the other, its own child or parent.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from agno_storage.agno3.chunks import ChunkResult, PlanItem, Source, SourceSpec, map_chunk
from agno_storage.agno3.records import Previous
from agno_storage.agno3.writer import rows_for
from agno_storage.errors import StorageError

_LENGTH = struct.Struct("<Q")
#: The largest frame either side accepts: a batch's rows are a few MiB.
MAX_FRAME = 1 << 30
#: Batches handed to each worker ahead of the one being written: enough to keep it busy, few enough
#: that memory stays flat (a batch's rows are a few MiB).
AHEAD = 2


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next frame's value; EOFError when the other side closed the pipe."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes (at most {MAX_FRAME}): the pipe carries something else")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


#: Seconds a closing pool gives its workers to end before it kills them (they only read; nothing is lost).
CLOSE_GRACE = 2.0


#: What a worker runs (``python -P -c``): the standard library only, until the path it is sent is set.
BOOTSTRAP = """
import os, pickle, signal, struct, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops and closes the pipes; this ends with them
stdin = sys.stdin.buffer
# Replies go to a pipe of their own (its descriptor is the argument): output at start-up (a sitecustomize
# that prints, say) cannot mix into them. Without one (no pass_fds: Windows), stdout carries them.
out = os.fdopen(int(sys.argv[1]), "wb") if len(sys.argv) > 1 else sys.stdout.buffer
sys.stdout = sys.stderr
head = stdin.read(8)
if len(head) == 8:
    sys.path[:] = pickle.loads(stdin.read(struct.unpack("<Q", head)[0]))
    from agno_storage.agno3.workers import serve
    # Ended with os._exit: the reader thread may still be blocked reading stdin (the parent closed the
    # replies' pipe first), and an interpreter shutting down around it aborts on the stdin buffer's lock.
    try:
        serve(stdin, out)
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    os._exit(0)
"""


def _child_path() -> list[str]:
    """This process's ``sys.path`` for a worker: absolute, without the working folder, with this package's root."""
    here = str(Path(__file__).resolve().parents[2])
    path = [str(Path(p).resolve()) for p in sys.path if p]
    return path if here in path else [*path, here]


class _Worker:
    def __init__(self, spec: SourceSpec, engine: str | None) -> None:
        if not sys.executable or getattr(sys, "frozen", False):
            # A frozen program's executable is the program itself, not an interpreter that runs -m.
            raise StorageError("no Python interpreter to start an agno 3 migration worker with")
        replies: tuple[int, int] | None = os.pipe() if os.name == "posix" else None
        try:
            if replies is not None:
                self.proc = subprocess.Popen(
                    [sys.executable, "-P", "-c", BOOTSTRAP, str(replies[1])],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    pass_fds=(replies[1],),
                )
            else:  # pragma: no cover - not POSIX
                self.proc = subprocess.Popen(
                    [sys.executable, "-P", "-c", BOOTSTRAP], stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
        except OSError as exc:
            if replies is not None:
                os.close(replies[0])
            raise StorageError(f"cannot start an agno 3 migration worker: {exc}") from exc
        finally:
            if replies is not None:
                os.close(replies[1])  # the worker's end: closed here, its reply pipe ends when the worker does
        stdout = os.fdopen(replies[0], "rb") if replies is not None else self.proc.stdout
        if self.proc.stdin is None or stdout is None:  # pragma: no cover - PIPE was given
            raise StorageError("an agno 3 migration worker has no pipes")
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = stdout
        try:
            _send(self.stdin, _child_path())
            _send(self.stdin, (spec, engine))
        except OSError as exc:
            self.shut()
            self.reap()
            raise StorageError(f"cannot start an agno 3 migration worker: {exc}") from exc

    def ready(self) -> None:
        """Wait until the worker has opened the source; raise what it could not do (or StorageError if it died)."""
        try:
            kind, value = _receive(self.stdout)
        except EOFError:
            self._died()
        except Exception as exc:
            raise StorageError(f"an agno 3 migration worker sent an unreadable reply: {exc!r}") from exc
        if kind == "error":
            raise value
        if kind != "ready":
            raise StorageError(f"an agno 3 migration worker sent {kind!r}, not ready")

    def submit(self, chunk: Sequence[PlanItem], previous: dict[str, Previous]) -> None:
        try:
            _send(self.stdin, (list(chunk), previous))
        except OSError:  # the pipe is broken: the worker is gone
            self._died()

    def result(self) -> ChunkResult:
        try:
            kind, value = _receive(self.stdout)
        except EOFError:
            self._died()
        except Exception as exc:  # a reply that does not unpickle here
            raise StorageError(f"an agno 3 migration worker sent an unreadable reply: {exc!r}") from exc
        if kind == "error":
            raise value
        if kind != "ok" or not isinstance(value, ChunkResult):
            raise StorageError(f"an agno 3 migration worker sent {kind!r}, not a batch")
        return value

    def _died(self) -> NoReturn:
        code = self.proc.wait()
        raise StorageError(f"an agno 3 migration worker exited with status {code}") from None

    def shut(self) -> None:
        """Close both pipes: the worker's input ends, and a reply it is still writing fails at once."""
        for pipe in (self.stdin, self.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def reap(self, grace: float = CLOSE_GRACE) -> None:
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class WorkerPool:
    """``n`` worker processes mapping batches of one source; results come back in order.

    ``engine`` is the target's (``"sqlite"``, ``"postgres"``), whose rows
    the workers encode, or None on a dry run (nothing encoded). A worker's
    error is raised by :meth:`map` for its batch, as the same exception; a
    worker that dies is a StorageError. Close it (or use ``with``).
    """

    def __init__(self, n: int, spec: SourceSpec, engine: str | None) -> None:
        if n < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._workers: list[_Worker] = []
        try:
            for _ in range(n):
                self._workers.append(_Worker(spec, engine))
            for worker in self._workers:  # they start side by side; each says when it has the source open
                worker.ready()
        except BaseException:
            self.close()
            raise

    def map(
        self, chunks: Iterable[Sequence[PlanItem]], previous: Callable[[Sequence[PlanItem]], dict[str, Previous]]
    ) -> Iterator[ChunkResult]:
        """Each chunk's result, in order. ``previous(chunk)`` is called in this process as each is handed over."""
        pending: collections.deque[_Worker] = collections.deque()
        turn = 0
        window = AHEAD * len(self._workers)
        for chunk in chunks:
            if len(pending) >= window:
                yield pending.popleft().result()
            worker = self._workers[turn % len(self._workers)]
            turn += 1
            worker.submit(chunk, previous(chunk))
            pending.append(worker)
        while pending:
            yield pending.popleft().result()

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (none once closed)."""
        return [worker.proc.pid for worker in self._workers]

    def close(self) -> None:
        """End the workers: every pipe is closed first, then each gets :data:`CLOSE_GRACE` seconds, then is killed.

        After the last batch they are idle and end at once; after an error
        or Ctrl-C they may be mapping or writing a reply nobody will read.
        """
        for worker in self._workers:
            worker.shut()
        deadline = time.monotonic() + CLOSE_GRACE
        for worker in self._workers:
            worker.reap(max(deadline - time.monotonic(), 0.0))
        self._workers.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reply_frame(kind: str, value: Any) -> bytes:
    try:
        data = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an error that does not pickle: its text
        data = pickle.dumps(("error", StorageError(f"{value!r} ({exc})")), protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """A worker: the first frame is (spec, engine); then each (chunk, previous) gets ("ok", result) or ("error", exc).

    The first reply is ``("ready", None)`` once the source is open, or
    ``("error", exc)`` if it cannot be (and the worker ends). A thread reads
    the frames as they come and another writes the replies:
    while the parent is busy writing a batch to its database and reads no
    reply, this process maps the next batch instead of waiting on a full
    pipe; and the parent never waits to hand a batch over. The parent hands
    over at most ``AHEAD`` batches beyond the one it reads, which bounds
    the replies waiting here.
    """
    spec, engine = _receive(stdin)
    frames: queue.SimpleQueue[Any] = queue.SimpleQueue()
    replies: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    gone = threading.Event()  # the parent closed its end: stop mapping

    def read() -> None:
        while True:
            try:
                frames.put(_receive(stdin))
            except BaseException:  # the end of the input (EOF, or a frame that does not unpickle): stop
                frames.put(None)
                return

    def send() -> None:
        while (frame := replies.get()) is not None:
            try:
                stdout.write(frame)
                stdout.flush()
            except BaseException:  # the parent closed the pipe (or is gone): nobody reads what is left
                gone.set()
                frames.put(None)
                return

    threading.Thread(target=read, name="agno-storage-worker-reader", daemon=True).start()
    sender = threading.Thread(target=send, name="agno-storage-worker-sender", daemon=True)
    sender.start()
    source: Source | None = None
    try:
        source = Source(spec)
        rows = rows_for(engine) if engine is not None else None
    except Exception as exc:
        replies.put(_reply_frame("error", exc))
    else:
        replies.put(_reply_frame("ready", None))
    try:
        while source is not None and (frame := frames.get()) is not None and not gone.is_set():
            chunk, previous = frame
            try:
                result = map_chunk(source, chunk, previous, rows)
            except Exception as exc:
                replies.put(_reply_frame("error", exc))
                continue
            replies.put(_reply_frame("ok", result))
    finally:
        replies.put(None)
        sender.join()
        if source is not None:
            source.close()


__all__ = ["AHEAD", "BOOTSTRAP", "CLOSE_GRACE", "WorkerPool", "serve"]
