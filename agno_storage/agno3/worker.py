"""``python -m agno_storage.agno3.worker``: one worker process of :class:`agno_storage.agno3.workers.WorkerPool`."""

from __future__ import annotations

import sys

from agno_storage.agno3.workers import serve

if __name__ == "__main__":
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # the pipe carries frames only
    serve(sys.stdin.buffer, out)
