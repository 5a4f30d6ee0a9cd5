"""``python -m agno_storage.agno3.worker``: one worker process of :class:`agno_storage.agno3.workers.WorkerPool`."""

from __future__ import annotations

import signal
import sys

from agno_storage.agno3.workers import serve

if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: the migrating process stops and closes the pipes, and
    # this worker ends when its input does, after the batch in hand, without a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # the pipe carries frames only
    serve(sys.stdin.buffer, out)
