"""Python work in worker processes while the calling process writes: a pool of interpreters running one task.

Decoding and reshaping sessions is Python work, and so is much of a
write: in one process they take turns on one core. :class:`Pool` starts
``n`` processes that each build one task object (``"module:name"`` called
with the pool's arguments) and answer each frame handed to them with the
task's result for it, in the order the frames were given. Two tasks use
it: mapping an agno 3 migration's batches
(:class:`agno_storage.agno3.workers.MapTask`) and reading a table's
conversations for its search index
(:class:`agno_storage.search_sqlite_worker.ReadTask`).

The workers are the same interpreter running :data:`BOOTSTRAP` (``python
-P -c``), not :mod:`multiprocessing`: a fork would copy the caller's
threads' locks, and ``spawn`` re-imports the caller's ``__main__``, which a
script without a ``__name__`` guard does not survive. The first frame a
worker reads is this process's ``sys.path`` (the working folder's entry
left out), so it imports this same package and its dependencies, also
where they were put on the path at run time; it answers ``ready`` once its
task is built, and :class:`Pool` waits for that. It reads from its stdin
and replies on a pipe of its own, passed as its argument (stdout goes
nowhere: what a ``sitecustomize`` prints at start-up cannot mix into the
replies). Frames on the pipes are a length and a pickle; each side trusts
only the other, its own child or parent.
"""

from __future__ import annotations

import collections
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from agno_storage.errors import StorageError

_LENGTH = struct.Struct("<Q")
#: The largest frame either side accepts: a batch is a few MiB.
MAX_FRAME = 1 << 30
#: Frames handed to each worker ahead of the one whose result is read: enough to keep it busy, few enough
#: that memory stays flat.
AHEAD = 2
#: Seconds a closing pool gives its workers to end before it kills them (they only read; nothing is lost).
CLOSE_GRACE = 2.0


class WorkerError(StorageError):
    """A worker could not start, died, or sent what is not a reply: the pool failed, not the task's work."""


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
    from agno_storage.workers import serve
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
    here = str(Path(__file__).resolve().parents[1])
    path = [str(Path(p).resolve()) for p in sys.path if p]
    return path if here in path else [*path, here]


def runs_python(executable: str | None) -> bool:
    """Whether ``executable`` looks like a Python interpreter (the workers run it with ``-P -c``).

    An embedding host's (a uWSGI server's, say) is its own binary: workers
    are then not started unless asked for; it would start another server.
    """
    name = Path(executable or "").name.lower()
    return name.startswith(("python", "pypy")) and not getattr(sys, "frozen", False)


def default_count(items: int, *, start_from: int, most: int) -> int:
    """How many workers to start by default for ``items`` of work: one per core up to ``most``.

    None (0) on one core, for fewer than ``start_from`` items (starting
    them costs more than they save), or where ``sys.executable`` is not a
    Python interpreter (:func:`runs_python`).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or items < start_from or not runs_python(sys.executable):
        return 0
    return min(cores, most)


class _Worker:
    def __init__(self, task: str, args: tuple[Any, ...], label: str) -> None:
        self.label = label
        if not sys.executable or getattr(sys, "frozen", False):
            # A frozen program's executable is the program itself, not an interpreter that runs -c.
            raise WorkerError(f"no Python interpreter to start {label} with")
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
            raise WorkerError(f"cannot start {label}: {exc}") from exc
        finally:
            if replies is not None:
                os.close(replies[1])  # the worker's end: closed here, its reply pipe ends when the worker does
        stdout = os.fdopen(replies[0], "rb") if replies is not None else self.proc.stdout
        if self.proc.stdin is None or stdout is None:  # pragma: no cover - PIPE was given
            raise WorkerError(f"{label} has no pipes")
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = stdout
        try:
            _send(self.stdin, _child_path())
            _send(self.stdin, (task, args))
        except OSError as exc:
            self.shut()
            self.reap()
            raise WorkerError(f"cannot start {label}: {exc}") from exc

    def ready(self) -> None:
        """Wait until the worker has built its task; raise what it could not do (or StorageError if it died)."""
        kind, value = self._reply()
        if kind == "error":
            raise value
        if kind != "ready":
            raise WorkerError(f"{self.label} sent {kind!r}, not ready")

    def submit(self, frame: Any) -> None:
        try:
            _send(self.stdin, frame)
        except OSError:  # the pipe is broken: the worker is gone
            self._died()

    def result(self) -> Any:
        kind, value = self._reply()
        if kind == "error":
            raise value
        if kind != "ok":
            raise WorkerError(f"{self.label} sent {kind!r}, not a result")
        return value

    def _reply(self) -> tuple[str, Any]:
        try:
            kind, value = _receive(self.stdout)
        except EOFError:
            self._died()
        except Exception as exc:  # a reply that does not unpickle here
            raise WorkerError(f"{self.label} sent an unreadable reply: {exc!r}") from exc
        return kind, value

    def _died(self) -> NoReturn:
        code = self.proc.wait()
        raise WorkerError(f"{self.label} exited with status {code}") from None

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


class Pool:
    """``n`` worker processes, each running the task ``task`` (``"module:name"``) built with ``args``.

    :meth:`map` hands each frame to the next worker and gives their results
    in order. A task's error is raised by :meth:`map` for its frame, as the
    same exception (or its text, where it does not pickle); a task that
    cannot be built is raised as the pool starts (by :meth:`wait` if told
    not to wait); a worker that cannot start, dies or sends what is not a
    reply is a :class:`WorkerError`. ``label`` is how errors name a worker
    ("a search index worker"). Close it (or use ``with``).
    """

    def __init__(self, n: int, task: str, args: tuple[Any, ...], label: str, *, wait: bool = True) -> None:
        if n < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._workers: list[_Worker] = []
        #: Whether every worker has said its task is built (:meth:`wait`).
        self._ready = False
        try:
            for _ in range(n):
                self._workers.append(_Worker(task, args, label))
        except BaseException:
            self.close()
            raise
        if wait:
            self.wait()

    def wait(self) -> None:
        """Wait until every worker has built its task; raise what one could not do (the pool is then closed).

        The pool does so as it starts unless told not to (``wait=False``):
        the caller then does other work while the workers start, and calls
        this before :meth:`map`, which otherwise calls it.
        """
        if self._ready:
            return
        try:
            for worker in self._workers:  # they start side by side; each says when its task is built
                worker.ready()
        except BaseException:
            self.close()
            raise
        self._ready = True

    def map(self, frames: Iterable[Any]) -> Iterator[Any]:
        """Each frame's result, in order. ``frames`` is read as each is handed over, at most :data:`AHEAD` a worker ahead."""
        self.wait()
        pending: collections.deque[_Worker] = collections.deque()
        turn = 0
        window = AHEAD * len(self._workers)
        for frame in frames:
            if len(pending) >= window:
                yield pending.popleft().result()
            worker = self._workers[turn % len(self._workers)]
            turn += 1
            worker.submit(frame)
            pending.append(worker)
        while pending:
            yield pending.popleft().result()

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (none once closed)."""
        return [worker.proc.pid for worker in self._workers]

    def close(self) -> None:
        """End the workers: every pipe is closed first, then each gets :data:`CLOSE_GRACE` seconds, then is killed.

        After the last frame they are idle and end at once; after an error
        or Ctrl-C they may be working or writing a reply nobody will read.
        """
        for worker in self._workers:
            worker.shut()
        deadline = time.monotonic() + CLOSE_GRACE
        for worker in self._workers:
            worker.reap(max(deadline - time.monotonic(), 0.0))
        self._workers.clear()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reply_frame(kind: str, value: Any) -> bytes:
    try:
        data = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an error that does not pickle: its text
        data = pickle.dumps(("error", StorageError(f"{value!r} ({exc})")), protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _build(task: str, args: tuple[Any, ...]) -> Any:
    """The task object: ``module:name`` imported (from this package only) and called with ``args``."""
    module, _, name = task.partition(":")
    if module != "agno_storage" and not module.startswith("agno_storage."):
        raise StorageError(f"a worker runs this package's tasks only, not {task!r}")
    return getattr(importlib.import_module(module), name)(*args)


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """A worker: the first frame is (task, args); then each frame gets ("ok", result) or ("error", exc).

    The first reply is ``("ready", None)`` once the task is built, or
    ``("error", exc)`` if it cannot be (and the worker ends). A thread reads
    the frames as they come and another writes the replies: while the
    parent is busy writing and reads no reply, this process works on the
    next frame instead of waiting on a full pipe; and the parent never waits
    to hand a frame over. The parent hands over at most ``AHEAD`` frames
    beyond the one it reads, which bounds the replies waiting here. A task
    with a ``close()`` is closed at the end.
    """
    task, args = _receive(stdin)
    frames: queue.SimpleQueue[Any] = queue.SimpleQueue()
    replies: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    gone = threading.Event()  # the parent closed its end: stop working

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
    handler: Any = None
    try:
        handler = _build(task, args)
    except Exception as exc:
        replies.put(_reply_frame("error", exc))
    else:
        replies.put(_reply_frame("ready", None))
    try:
        while handler is not None and (frame := frames.get()) is not None and not gone.is_set():
            try:
                result = handler(frame)
            except Exception as exc:
                replies.put(_reply_frame("error", exc))
                continue
            replies.put(_reply_frame("ok", result))
    finally:
        replies.put(None)
        sender.join()
        close = getattr(handler, "close", None)
        if close is not None:
            close()


__all__ = ["AHEAD", "BOOTSTRAP", "CLOSE_GRACE", "Pool", "WorkerError", "default_count", "runs_python", "serve"]
