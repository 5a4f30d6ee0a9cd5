"""The Go contender: compat/cmd/bench, agno-golang v0.1.6's SQLite storage.

The command calls the module ``github.com/devalexandre/agno-golang`` itself
(``Upsert`` and ``Read`` of ``agno/storage/sqlite``) over a modernc.org/sqlite
connection. Where the Go module proxy refuses that module,
``compat/setup-go-work.sh`` must have written ``compat/go.work`` first (see
docs/compat.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.harness import Contender

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT / "compat"


def go_available() -> str | None:
    """Why the Go column is skipped, or None if ``go`` can build the command."""
    if shutil.which("go") is None:
        return "`go` is not on PATH"
    if not (COMPAT / "cmd" / "bench" / "main.go").exists():
        return "compat/cmd/bench is missing"
    return None


def build(workdir: Path) -> Path:
    """Build compat/cmd/bench into ``workdir``; raise CalledProcessError with Go's output on failure."""
    binary = workdir / "agno-golang-bench"
    subprocess.run(
        ["go", "build", "-o", str(binary), "./cmd/bench"], cwd=COMPAT, check=True, capture_output=True, text=True
    )
    return binary


class GoServer:
    """One long-lived Go process answering JSON requests line by line."""

    def __init__(self, binary: Path, sessions_file: Path, synchronous: str = "FULL") -> None:
        self.proc = subprocess.Popen(
            [str(binary), "-sessions", str(sessions_file), "-synchronous", synchronous],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"Go bench exited (code {self.proc.poll()}) on {request}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"Go bench: {answer['error']} (request {request})")
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


#: The Go contender's label: the released module, unmodified, called by compat/cmd/bench.
GO_LABEL = "agno-golang v0.1.6 (upstream)"


class Go(Contender):
    """agno-golang v0.1.6's Upsert / Read (the upstream module as released), timed inside the Go process."""

    kind = "go"
    label = GO_LABEL

    def __init__(self, server: GoServer) -> None:
        super().__init__()
        self.server = server

    def prepare(self, name: str, dicts: Any) -> None:
        pass  # the Go process loaded the same sessions from the suite's JSON file

    def open(self, path: str) -> None:
        self.server.call(op="open", db=path)

    def close(self) -> None:
        self.server.call(op="close")

    def _run(self, op: str, name: str, start: int, count: int) -> tuple[float, int]:
        got = self.server.call(op=op, set=name, start=start, count=count)
        return float(got["seconds"]), int(got["errors"])

    def upsert(self, name: str, start: int, count: int) -> tuple[float, int]:
        return self._run("upsert", name, start, count)

    def read(self, name: str, start: int, count: int) -> tuple[float, int]:
        return self._run("read", name, start, count)
