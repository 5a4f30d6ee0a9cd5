"""A throwaway PgBouncer in transaction mode in front of a test server.

``running_pgbouncer(server)`` writes a configuration into a fresh temporary
directory, starts ``pgbouncer`` on a free port of 127.0.0.1 in front of the
throwaway server of tests/pgserver.py, waits until it accepts connections,
and at the end shuts it down (SIGINT: PgBouncer's safe shutdown) and removes
the directory. The pool is small (``default_pool_size = 2``, no reserve), so
more client connections than that really share server connections.

Authentication is the simplest that works: ``auth_type = trust`` with an
``auth_file`` naming the server's superuser (PgBouncer wants every user
listed even under trust); the server itself trusts local connections.

PgBouncer refuses to run as root, so when the effective uid is 0 it runs as
the ``postgres`` user that tests/pgserver.py runs the server as.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.pgserver import REQUIRE_ENV, SERVER_USER, SUPERUSER, PgServer, free_port
from tests.support import require

#: Server connections per (database, user) pair: below the tests' thread count.
POOL_SIZE = 2

#: Installed by Debian's ``pgbouncer`` package in /usr/sbin, not on a user's PATH.
_SEARCH = ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer")

_SETTINGS: dict[str, str] = {
    "listen_addr": "127.0.0.1",
    "unix_socket_dir": "",  # TCP only: nothing else may land in /tmp
    "auth_type": "trust",
    "pool_mode": "transaction",
    "default_pool_size": str(POOL_SIZE),
    "min_pool_size": "0",
    "reserve_pool_size": "0",
    "max_client_conn": "200",
    "max_db_connections": str(POOL_SIZE),
    # A client left without a server connection this long gets an error, not a hang.
    "query_wait_timeout": "30",
    "admin_users": SUPERUSER,
    "stats_users": SUPERUSER,
    "log_connections": "0",
    "log_disconnections": "0",
}

_TIMEOUT_S = 30


def find_pgbouncer() -> Path | None:
    """Return the ``pgbouncer`` executable, or None when it is not installed."""
    found = shutil.which("pgbouncer")
    if found is not None:
        return Path(found)
    for candidate in _SEARCH:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def require_pgbouncer() -> None:
    """Skip the calling test (or fail, under ``AGNO_STORAGE_REQUIRE_PG=1``) without PgBouncer."""
    require(find_pgbouncer() is not None, "pgbouncer not found: apt-get install pgbouncer", env=REQUIRE_ENV)


class PgBouncer:
    """One PgBouncer process in a temporary directory, in front of ``server``.

    Not thread-safe: start and stop from one thread.
    """

    def __init__(self, exe: Path, server: PgServer, root: Path, port: int, settings: Mapping[str, str]) -> None:
        self.exe = exe
        self.server = server
        self.root = root
        self.port = port
        self.config = root / "pgbouncer.ini"
        self.logfile = root / "pgbouncer.log"
        self.settings = {**_SETTINGS, **settings}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pool_size(self) -> int:
        """Server connections PgBouncer opens per database and user."""
        return int(self.settings["default_pool_size"])

    def dsn(self, database: str = "postgres") -> str:
        """libpq URL of ``database`` through the pooler."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def admin_dsn(self) -> str:
        """libpq URL of PgBouncer's admin console (``SHOW POOLS`` and friends)."""
        return self.dsn("pgbouncer")

    def write_config(self) -> None:
        """Write ``pgbouncer.ini`` and the auth file, readable by the user PgBouncer runs as."""
        userlist = self.root / "userlist.txt"
        userlist.write_text(f'"{SUPERUSER}" ""\n')
        settings = {
            **self.settings,
            "listen_port": str(self.port),
            "auth_file": str(userlist),
            "logfile": str(self.logfile),
            "pidfile": str(self.root / "pgbouncer.pid"),
        }
        lines = [
            "[databases]",
            # Any database name a client asks for, on the test server.
            f"* = host=127.0.0.1 port={self.server.port}",
            "",
            "[pgbouncer]",
            *(f"{key} = {value}" for key, value in settings.items()),
        ]
        self.config.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            for path in (self.root, self.config, userlist):
                os.chown(path, account.pw_uid, account.pw_gid)

    def start(self) -> None:
        """Start PgBouncer in the foreground and wait until it answers."""
        user: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self._process = subprocess.Popen(
            [str(self.exe), str(self.config)],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **user,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=2) as conn:
                    conn.execute("SHOW VERSION")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not answer: {exc}\n{self.log_tail()}") from exc
                time.sleep(0.1)

    def show(self, what: str) -> list[dict[str, Any]]:
        """Rows of an admin console ``SHOW`` command (``POOLS``, ``CLIENTS``, ``SERVERS``...)."""
        import psycopg
        from psycopg.rows import dict_row

        if not what.replace("_", "").isalpha():
            raise ValueError(f"not a SHOW command: {what!r}")
        # The console speaks only the simple query protocol: no parameters, autocommit.
        with psycopg.connect(self.admin_dsn, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(f"SHOW {what}").fetchall()

    def stop(self) -> int:
        """Shut down safely (SIGINT), killing only after a timeout; return the exit status."""
        process, self._process = self._process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(_TIMEOUT_S)
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of PgBouncer's log, for failure messages."""
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_pgbouncer(server: PgServer, settings: Mapping[str, str] | None = None, attempts: int = 3) -> PgBouncer:
    """Start a PgBouncer in front of ``server``; the caller must ``stop()`` it and remove ``root``.

    ``settings`` override entries of the ``[pgbouncer]`` section. Retries
    with another port when the chosen one was taken in between.
    """
    exe = find_pgbouncer()
    if exe is None:
        raise RuntimeError("pgbouncer not found")
    last_error: Exception | None = None
    for _ in range(attempts):
        bouncer = PgBouncer(exe, server, Path(tempfile.mkdtemp(prefix="agno-pgbouncer-")), free_port(), settings or {})
        try:
            bouncer.write_config()
            bouncer.start()
            return bouncer
        except Exception as exc:  # a port race: try afresh
            last_error = exc
            bouncer.stop()
            shutil.rmtree(bouncer.root, ignore_errors=True)
            time.sleep(0.2)
    raise RuntimeError(f"could not start pgbouncer: {last_error}")


@contextlib.contextmanager
def running_pgbouncer(server: PgServer, settings: Mapping[str, str] | None = None) -> Iterator[PgBouncer]:
    """A PgBouncer in front of ``server`` for the block; stopped and removed afterwards.

    Raises RuntimeError if it did not shut down cleanly (exit status 0).
    """
    bouncer = start_pgbouncer(server, settings)
    try:
        yield bouncer
    finally:
        status = bouncer.stop()
        log = bouncer.log_tail()
        shutil.rmtree(bouncer.root, ignore_errors=True)
    if status != 0:
        raise RuntimeError(f"pgbouncer exited with {status}:\n{log}")
