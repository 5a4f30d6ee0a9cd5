"""A throwaway PostgreSQL server for examples, benchmarks and tests.

``start_server()`` runs ``initdb`` in a fresh temporary directory and starts
the server on a unix socket in that directory and on a free port of
127.0.0.1 only, with durability settings turned off (the data dies with the
run). ``PgServer.stop()`` / ``PgServer.start()`` take the same server down
and up again, for tests that lose the server mid-run; ``PgServer.destroy()``
stops it and removes the directory.

``initdb`` and the server refuse to run as root, so when the effective uid
is 0 they run as the ``postgres`` user (created when missing) through
``runuser`` (or ``su``), and the directory is handed to that user.

Needs only the standard library (psycopg for ``create_database``): no
pytest, so the examples and ``python -m bench`` run after a plain install.
The tests' skip-or-fail wrapper is in tests/pgserver.py::

    from devkit.pgserver import running_server

    with running_server() as server:
        print(server.dsn)
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: Unprivileged account the server runs as when the tests run as root.
SERVER_USER = "postgres"

#: Database superuser created by ``initdb`` and used in the DSN.
SUPERUSER = "postgres"

# Only safe because the cluster is thrown away at the end of the run.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    # fsync off survives a stopped or killed server (the OS keeps the writes);
    # synchronous_commit stays on so an acknowledged commit is in the WAL.
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}

_TIMEOUT_S = 60


def find_bindir() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None.

    Looks on PATH first, then in ``/usr/lib/postgresql/*/bin`` (newest
    major version first), which is where Debian puts them.
    """
    initdb = shutil.which("initdb")
    if initdb is not None:
        bindir = Path(initdb).resolve().parent
        if (bindir / "pg_ctl").exists():
            return bindir
    candidates = glob.glob("/usr/lib/postgresql/*/bin")
    candidates.sort(key=_major_version, reverse=True)
    for candidate in candidates:
        bindir = Path(candidate)
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


def _major_version(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return -1


def missing_requirement() -> str | None:
    """Return one line naming what to install, or None when all is there."""
    if find_bindir() is None:
        return "PostgreSQL server binaries not found: apt-get install postgresql"
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg 3 not installed: pip install 'agno-session-storage[postgres]'"
    return None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One PostgreSQL cluster in a temporary directory.

    Not thread-safe: start, stop and destroy from one thread.
    """

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir = bindir
        self.root = root
        self.datadir = root / "data"
        self.logfile = root / "server.log"
        self.port = port
        self._as_server_user = os.geteuid() == 0

    @property
    def socket_dir(self) -> Path:
        """Directory of the server's unix socket."""
        return self.root

    @property
    def dsn(self) -> str:
        """libpq URL of the ``postgres`` database over TCP on 127.0.0.1."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def socket_dsn(self) -> str:
        """libpq URL of the ``postgres`` database over the unix socket."""
        return f"postgresql://{SUPERUSER}@/postgres?host={self.socket_dir}&port={self.port}"

    def sqlalchemy_url(self) -> str:
        """The same database as a SQLAlchemy URL using psycopg 3."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """Run ``initdb`` and write the server settings."""
        if self._as_server_user:
            _ensure_server_user()
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        settings = dict(_SERVER_SETTINGS)
        settings["port"] = str(self.port)
        settings["unix_socket_directories"] = f"'{self.socket_dir}'"
        lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
        conf = self.datadir / "postgresql.auto.conf"
        # Written by the server user's file, so append through the same user.
        self._run("sh", "-c", f"cat >> '{conf}'", stdin=lines, on_path=False)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            str(_TIMEOUT_S),
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` drops every connection at once."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def is_running(self) -> bool:
        """True when ``pg_ctl status`` finds a running server."""
        result = self._run("pg_ctl", "-D", str(self.datadir), "status", check=False)
        return result.returncode == 0

    def destroy(self) -> None:
        """Stop the server if it runs, then remove its directory."""
        try:
            if self.datadir.exists() and self.is_running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server log, for failure messages."""
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _run(
        self,
        program: str,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        on_path: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        exe = str(self.bindir / program) if on_path else program
        argv = [exe, *args]
        if self._as_server_user:
            argv = _as_user(SERVER_USER, argv)
        result = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S + 30,
            check=False,
            cwd=self.root,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{self.log_tail()}")
        return result


def _as_user(user: str, argv: list[str]) -> list[str]:
    if shutil.which("runuser") is not None:
        return ["runuser", "-u", user, "--", *argv]
    import shlex

    return ["su", "-s", "/bin/sh", user, "-c", shlex.join(argv)]


def _ensure_server_user() -> None:
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", SERVER_USER],
            check=True,
            capture_output=True,
        )


def start_server(attempts: int = 3) -> PgServer:
    """Create and start a throwaway server; the caller must ``destroy()`` it.

    Retries with another port when the chosen one was taken in between.
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found")
    last_error: Exception | None = None
    for _ in range(attempts):
        root = Path(tempfile.mkdtemp(prefix="agno-pg-"))
        server = PgServer(bindir, root, free_port())
        try:
            server.init()
            server.start()
            return server
        except Exception as exc:  # a port race or a failed initdb: try afresh
            last_error = exc
            server.destroy()
            time.sleep(0.2)
    raise RuntimeError(f"could not start PostgreSQL: {last_error}")


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """Start a throwaway server for the block and remove it afterwards."""
    server = start_server()
    try:
        yield server
    finally:
        server.destroy()


def create_database(server: PgServer, name: str) -> str:
    """Create a fresh database on ``server`` and return its DSN."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"postgresql://{SUPERUSER}@127.0.0.1:{server.port}/{name}"


if __name__ == "__main__":
    # Handy by hand: start a server, print its DSN, stop on Enter.
    with running_server() as srv:
        print(srv.dsn, flush=True)
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input()
