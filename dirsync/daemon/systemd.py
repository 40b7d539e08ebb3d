"""systemd integration with the standard library only: sd_notify, the watchdog, credentials.

``sd_notify(3)`` is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a path, or an abstract name written with a leading ``@``). Outside systemd
the variable is unset and every call does nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("dirsync.daemon.systemd")


def _socket_address(value: str) -> str | bytes:
    # an abstract socket's name starts with NUL; systemd writes it with '@'
    return b"\0" + value[1:].encode() if value.startswith("@") else value


@dataclass(frozen=True, slots=True, kw_only=True)
class Notifier:
    """Sends sd_notify messages; ``address`` None (not under systemd) makes it a no-op."""

    address: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(address=env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """``send(READY=1, STATUS="...")``; True when the datagram was sent."""
        if self.address is None:
            return False
        message = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # never wait for a manager that is not reading (a stalled PID 1, a full queue):
                # a daemon blocked here would not act on SIGTERM; the message is dropped instead
                sock.setblocking(False)
                sock.connect(_socket_address(self.address))
                sock.send(message.encode())
        except BlockingIOError:
            log.warning("systemd.notify_dropped", reason="the notify socket's queue is full")
            return False
        except OSError as exc:
            # the service keeps running; systemd will notice a missing READY or WATCHDOG itself
            log.warning("systemd.notify_failed", error=exc.strerror or str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY=1, STATUS=status)

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd (Type=notify-reload, v253+) match the reload to this message
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send(RELOADING=1, MONOTONIC_USEC=usec)

    def stopping(self) -> bool:
        return self.send(STOPPING=1, STATUS="stopping")

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)


def _one_line(value: str | int) -> str:
    return " ".join(str(value).split())


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of ``WatchdogSec=``), or None when not asked.

    ``$WATCHDOG_PID``, when set, must be this process: the variable may have been inherited.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


def credentials_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``); secrets.resolve_file looks there."""
    env = os.environ if environ is None else environ
    value = env.get("CREDENTIALS_DIRECTORY")
    return Path(value) if value else None
