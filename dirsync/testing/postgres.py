"""A throwaway PostgreSQL server on 127.0.0.1 for tests and benchmarks.

    with Postgres() as server:
        url = server.create_database("acme")   # postgresql+psycopg://dirsync:...@127.0.0.1:N/acme

Debian's PostgreSQL binaries (``/usr/lib/postgresql/<version>/bin``) run a cluster of our own
in a temporary directory: ``initdb`` with SCRAM passwords, then ``postgres`` listening on a
free loopback port (and a socket in the directory), fsync off (a test cluster is thrown
away), stopped by PID. PostgreSQL refuses to run as root, so when we are root the cluster
belongs to the ``postgres`` account and its processes run as that user.
"""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from dirsync.testing.child import ChildProcess, ThrowawayServer
from dirsync.testing.slapd import free_ports

HOST = "127.0.0.1"
#: the account the server runs as when the tests run as root
SERVICE_USER = "postgres"


class PostgresError(RuntimeError):
    """The test PostgreSQL could not be set up or started."""


def binaries() -> Path:
    """The newest installed ``/usr/lib/postgresql/<version>/bin`` (Debian's layout)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PostgresError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres); "
            "run the test command as root to install it, or apt-get install postgresql"
        )
    return versions[-1]


class Postgres(ThrowawayServer):
    """One throwaway cluster; ``create_database`` gives each test a database of its own."""

    def __init__(self, *, startup_timeout: float = 30.0, keep: bool = False) -> None:
        self.bin = binaries()
        self.user = "dirsync"
        self.password = secrets.token_urlsafe(16)
        self.startup_timeout = startup_timeout
        root = Path(tempfile.mkdtemp(prefix="dirsync-postgres-"))
        self.directory = root
        self.data_dir = root / "data"
        self.log_file = root / "postgres.log"
        self.port = 0
        self._run_as = _service_account()
        self._process = ChildProcess(root, keep=keep)
        self._finalizer = weakref.finalize(self, self._process.cleanup)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@{HOST}:{self.port}/{database}"

    def start(self) -> Postgres:
        if self.running:
            return self
        self._init_cluster()
        (self.port,) = free_ports(1)
        log = self.log_file.open("ab")
        self._process.proc = subprocess.Popen(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-k",
                str(self.directory),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self._run_as,
        )
        log.close()
        problem = self._wait_ready()
        if problem:
            self.stop()
            raise PostgresError(f"PostgreSQL did not start: {problem}")
        return self

    def stop(self) -> None:
        """Stop the server (by PID) and remove its directory. Safe to call twice."""
        self._finalizer()

    def create_database(self, name: str) -> str:
        """A new empty database owned by the test user; its SQLAlchemy URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement as the test user; its output."""
        done = subprocess.run(
            [
                str(self.bin / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-c",
                statement,
            ],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise PostgresError(f"psql {statement!r}: {done.stderr.strip()}")
        return done.stdout

    def _init_cluster(self) -> None:
        if self.data_dir.exists():
            return
        password_file = self.directory / "initdb.pw"
        password_file.write_text(self.password)
        if self._run_as is not None:
            account = pwd.getpwnam(self._run_as)
            for path in (self.directory, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        password_file.chmod(0o600)
        done = subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--pwfile",
                str(password_file),
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=self._run_as,
            timeout=120,
        )
        password_file.unlink()
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + self.startup_timeout
        proc = self._process.proc
        assert proc is not None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"postgres exited with {proc.returncode}: {self._log_tail()}"
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return ""
            time.sleep(0.1)
        return f"no answer within {self.startup_timeout:g}s: {self._log_tail()}"


def _service_account() -> str | None:
    """``postgres`` when we are root (PostgreSQL will not run as root), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError as exc:
        raise PostgresError(
            f"running as root needs the {SERVICE_USER!r} account (Debian's postgresql "
            "package creates it)"
        ) from exc
    return SERVICE_USER
