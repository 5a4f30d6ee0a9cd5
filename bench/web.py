"""``agno-storage serve`` under load: ``GET /api/v1/sessions?limit=20`` on a 100,000-session table.

Run: ``python -m bench.web`` (or ``make bench-web``). It writes a SQLite
file with ``--sessions`` sessions, starts ``agno-storage serve`` on it in a
process of its own on a loopback port, then:

1. one client, one keep-alive connection, ``--requests`` requests: the
   median of the server's own time (its ``Server-Timing`` header) and the
   requests per second that one client process gets;
2. ``--clients`` concurrent clients (threads of this process, a connection
   each) for ``--seconds`` seconds, each walking pages with the cursor:
   requests, errors (any status but 200, or a failed connection) and the
   requests per second.

Prints one JSON object; exits 1 if the concurrent run had an error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agno_storage import AgentSession, SqliteStorage

TABLE = "agent_sessions"
PATH = f"/api/v1/sessions?table={TABLE}&limit=20"


def make_db(path: Path, count: int) -> None:
    """``count`` agent sessions, 50 users, 20 agents, one per second."""
    with SqliteStorage(TABLE, db_file=path, synchronous="NORMAL") as store:
        store.upsert_many(
            AgentSession(
                session_id=f"session-{i:07d}",
                user_id=f"user-{i % 50}",
                agent_id=f"agent-{i % 20}",
                memory={"runs": [{"run_id": f"run-{i}", "messages": [{"role": "user", "content": f"hello {i}"}]}]},
                session_data={"session_name": f"session {i}"},
                created_at=1_700_000_000 + i,
            )
            for i in range(count)
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def server_ms(response: http.client.HTTPResponse) -> float:
    timing = response.getheader("server-timing") or ""
    return float(timing.split("dur=", 1)[1])


def one_client(port: int, requests: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times: list[float] = []
    for _ in range(20):  # warm-up: connections, statement cache
        conn.request("GET", PATH)
        conn.getresponse().read()
    start = time.perf_counter()
    for _ in range(requests):
        conn.request("GET", PATH)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"status {response.status}: {body[:200]!r}")
        times.append(server_ms(response))
    elapsed = time.perf_counter() - start
    conn.close()
    return {
        "requests": requests,
        "server_median_ms": round(statistics.median(times), 3),
        "server_p99_ms": round(sorted(times)[int(len(times) * 0.99) - 1], 3),
        "requests_per_s": round(requests / elapsed, 1),
    }


def concurrent(port: int, clients: int, seconds: float) -> dict[str, Any]:
    counts = {"requests": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    first_errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done = errors = 0
        cursor: str | None = None
        while time.monotonic() < stop:
            path = PATH + (f"&cursor={cursor}" if cursor else "")
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                if response.status == 200:
                    cursor = json.loads(body)["next_cursor"]
                else:
                    errors += 1
                    with lock:
                        first_errors.append(f"status {response.status}: {body[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                errors += 1
                with lock:
                    first_errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            done += 1
        conn.close()
        with lock:
            counts["requests"] += done
            counts["errors"] += errors

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": counts["requests"],
        "errors": counts["errors"],
        "requests_per_s": round(counts["requests"] / elapsed, 1),
        "first_errors": first_errors[:3],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000, help="requests of the one-client run")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the concurrent run")
    parser.add_argument("--db", type=Path, help="keep the database here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "web-bench.db"
        if not db.exists():
            started = time.perf_counter()
            make_db(db, args.sessions)
            print(f"wrote {args.sessions} sessions in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "agno_storage", "serve", str(db), "--port", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(port, proc)
            result = {
                "endpoint": f"GET {PATH}",
                "sessions": args.sessions,
                "cpus": os.cpu_count(),
                "one_client": one_client(port, args.requests),
                "concurrent": concurrent(port, args.clients, args.seconds),
            }
        finally:
            proc.terminate()
            proc.wait(30)
    print(json.dumps(result, indent=2))
    return 1 if result["concurrent"]["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
