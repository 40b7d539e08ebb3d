"""Bound LDAP sessions kept between the reads of one process that share a server and account.

An MSP's cycle reads hundreds of organizations below one server, each with the same bind
account: a fresh connection and bind per organization was a quarter of a quiet run's time.
A read checks a session out (a kept one, or a new one it opens), and checks it back in only
when the read succeeded; a failed read closes its session. Sessions are kept per server,
account and connection settings, the password among them as a digest: never across two
accounts or passwords. A session is handed to one read at a time (the daemon's runs are
threads). One not used for ``IDLE_SECONDS`` is closed at the next checkout or checkin, and
``release()`` (the end of ``dirsync sync``; at exit otherwise) closes them all.

A kept connection may have been dropped by the server meanwhile (``idletimeout``, a restart):
the connector reads once more on a new one (``LdapConnector.read``).
"""

from __future__ import annotations

import atexit
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from dirsync.connectors.ldap.session import LdapSession
from dirsync.connectors.ldap.settings import LdapSourceSettings

#: a kept session unused this long is closed (the daemon's runs are minutes apart)
IDLE_SECONDS: Final = 60.0
#: sessions kept per key at most (the daemon's concurrent runs; the rest are closed)
KEPT_PER_KEY: Final = 4


@dataclass(frozen=True, slots=True)
class _Key:
    url: str
    bind_dn: str
    #: a digest: the password itself is never kept outside the settings
    password: str
    start_tls: bool
    tls_verify: bool
    ca_file: str
    timeout: float


def _key(settings: LdapSourceSettings) -> _Key:
    password = settings.password.reveal() if settings.password is not None else ""
    return _Key(
        url=settings.url,
        bind_dn=settings.bind_dn or "",
        password=hashlib.sha256(password.encode("utf-8")).hexdigest(),
        start_tls=settings.start_tls,
        tls_verify=settings.tls_verify,
        ca_file=str(settings.ca_file or ""),
        timeout=settings.timeout.total_seconds(),
    )


class SessionPool:
    """Checked-in sessions by key, each with the time it was checked in."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._kept: dict[_Key, list[tuple[float, LdapSession]]] = {}
        self._lock = threading.Lock()

    def checkout(self, settings: LdapSourceSettings, organization: str) -> tuple[LdapSession, bool]:
        """A bound session for ``settings`` and whether it was kept (else opened now)."""
        key = _key(settings)
        with self._lock:
            stale = self._expired()
            kept = self._kept.get(key)
            session = kept.pop()[1] if kept else None
        _close(stale)
        if session is not None:
            session.renew(settings, organization)
            return session, True
        session = LdapSession(settings, organization=organization)
        session.open()
        return session, False

    def checkin(self, session: LdapSession) -> None:
        """Keep ``session`` (open, its read done) for the next read with its settings."""
        if session.conn is None:
            return
        key = _key(session.settings)
        with self._lock:
            kept = self._kept.setdefault(key, [])
            kept.append((self._clock(), session))
            extra = [s for _, s in kept[:-KEPT_PER_KEY]]
            del kept[:-KEPT_PER_KEY]
            stale = self._expired()
        _close(extra + stale)

    def release(self) -> None:
        """Close every kept session."""
        with self._lock:
            kept = [s for sessions in self._kept.values() for _, s in sessions]
            self._kept.clear()
        _close(kept)

    def __len__(self) -> int:
        return len(self.kept())

    def kept(self) -> list[LdapSession]:
        """The sessions kept now."""
        with self._lock:
            return [s for sessions in self._kept.values() for _, s in sessions]

    def _expired(self) -> list[LdapSession]:
        """Remove and return the sessions idle too long (the lock is held)."""
        oldest = self._clock() - IDLE_SECONDS
        stale: list[LdapSession] = []
        for key, sessions in list(self._kept.items()):
            stale += [s for at, s in sessions if at < oldest]
            sessions[:] = [(at, s) for at, s in sessions if at >= oldest]
            if not sessions:
                del self._kept[key]
        return stale


def _close(sessions: list[LdapSession]) -> None:
    for session in sessions:
        session.close()


#: this process's kept sessions
POOL: Final = SessionPool()
atexit.register(POOL.release)


def release() -> None:
    """Close the sessions this process keeps (``dirsync sync`` does when it is done)."""
    POOL.release()
