"""An organization's lock when the store is PostgreSQL: shared by every node that uses it.

Several hosts running ``dirsync run`` (or a one-shot ``dirsync sync``) against one PostgreSQL
must never sync one organization at the same time, and when a node dies or stalls its
organizations must be free again within ``[daemon] takeover``. PostgreSQL does both itself, so
there is no consensus of our own:
- the lock is a session-level advisory lock (``pg_try_advisory_lock``) on a connection of its
  own, keyed by the organization's name: one holder in the whole cluster;
- PostgreSQL drops it when that session ends: at once when the holder's process dies (the
  kernel closes its socket), and after ``idle_session_timeout`` (set to ``takeover`` on the
  session) when the holder stops talking: a node that is SIGSTOPped, frozen or cut off from the
  database. While the lock is held a heartbeat thread keeps the session busy with ``SELECT 1``
  four times per ``takeover``.
Why not a lease row with an expiry: the same guarantee, but its expiry would be ours to check
against clocks; here the server's own session end decides. A node that resumes after losing its
lock cannot apply over another node's run: an apply re-checks the organization's version in its
transaction (``Store.apply``'s ``expected_version``), and ``lost`` tells the caller beforehand.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy.engine import make_url

from dirsync.errors import DirsyncError
from dirsync.state.engine import display_url
from dirsync.sync.locks import LockBusy, OrganizationLock

#: the first half of every key: dirsync's own advisory locks, apart from other applications'
_NAMESPACE = "dirsync.organization"


class StoreLockError(DirsyncError):
    """The store's lock could not be taken or held (PostgreSQL unreachable, refused): exit 1."""


def lock_key(organization: str) -> int:
    """A signed 64-bit key for ``pg_advisory_lock(bigint)``, the same on every node."""
    digest = hashlib.blake2b(f"{_NAMESPACE}:{organization}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def libpq_conninfo(store_url: str) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://...``) as a libpq connection URI."""
    url = make_url(store_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class StoreLock:
    """``with StoreLock(url, "acme", takeover=...):`` holds acme's lock in PostgreSQL;
    ``wait=False`` raises ``LockBusy`` when another session holds it."""

    def __init__(
        self, store_url: str, organization: str, *, takeover: timedelta, wait: bool = False
    ) -> None:
        self.store_url = store_url
        self.organization = organization
        self.takeover = takeover
        self.wait = wait
        self._conn: Any = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._lost = threading.Event()

    def acquire(self) -> None:
        import psycopg  # the postgresql extra: imported only for a PostgreSQL store

        key = lock_key(self.organization)
        milliseconds = max(1000, int(self.takeover.total_seconds() * 1000))
        try:
            conn = psycopg.connect(
                libpq_conninfo(self.store_url),
                autocommit=True,
                connect_timeout=max(1, int(self.takeover.total_seconds())),
                application_name=f"dirsync lock {self.organization}"[:63],
            )
        except psycopg.Error as exc:
            raise StoreLockError(
                f"cannot take {self.organization}'s lock in the store "
                f"{display_url(self.store_url)}: {_first_line(exc)}"
            ) from exc
        try:
            conn.execute(f"SET idle_session_timeout = {milliseconds}")
            function = "pg_advisory_lock" if self.wait else "pg_try_advisory_lock"
            row = conn.execute(f"SELECT {function}(%s)", (key,)).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise StoreLockError(
                f"cannot take {self.organization}'s lock in the store "
                f"{display_url(self.store_url)}: {_first_line(exc)}"
            ) from exc
        if not self.wait and not (row and row[0]):
            conn.close()
            raise LockBusy(self.organization, None)
        self._conn = conn
        self._stop.clear()
        self._lost.clear()
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"lock-{self.organization}", daemon=True
        )
        self._heartbeat.start()

    def _beat(self) -> None:
        interval = self.takeover.total_seconds() / 4
        while not self._stop.wait(interval):
            try:
                self._conn.execute("SELECT 1")
            except Exception:  # psycopg's errors, or a closed connection: the lock is gone
                self._lost.set()
                return

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._lost.is_set()

    @property
    def lost(self) -> bool:
        """Whether the session that held the lock ended (a stall past ``takeover``, a cut)."""
        return self._lost.is_set()

    def release(self) -> None:
        conn, self._conn = self._conn, None
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        if conn is not None:
            # unlocked before the session ends: closing alone frees the lock only once the
            # server has noticed, and a run that takes it next may come first. If the session
            # is already gone, so is the lock
            with contextlib.suppress(Exception):
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(self.organization),))
            with contextlib.suppress(Exception):
                conn.close()

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_postgresql(store_url: str) -> bool:
    return make_url(store_url).get_backend_name() == "postgresql"


def organization_lock(
    store_url: str, directory: Path, organization: str, *, takeover: timedelta, wait: bool = False
) -> OrganizationLock | StoreLock:
    """The organization's lock for this store: in PostgreSQL for a PostgreSQL store (every
    node sees it), else a ``flock`` in ``directory`` (one host)."""
    if is_postgresql(store_url):
        return StoreLock(store_url, organization, takeover=takeover, wait=wait)
    return OrganizationLock(directory, organization, wait=wait)


def take_locks(
    store_url: str,
    directory: Path,
    names: Iterable[str],
    held: ExitStack,
    *,
    takeover: timedelta,
    wait: bool,
) -> tuple[list[str], list[LockBusy]]:
    """Take each organization's lock into ``held``: (the names locked, the ones busy)."""
    locked, busy = [], []
    for name in names:
        try:
            held.enter_context(
                organization_lock(store_url, directory, name, takeover=takeover, wait=wait)
            )
        except LockBusy as exc:
            busy.append(exc)
        else:
            locked.append(name)
    return locked, busy
