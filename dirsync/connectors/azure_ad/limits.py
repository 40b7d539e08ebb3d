"""What one Graph read may cost: a deadline for the whole read (``read_deadline``) and a size
limit per answer body (a page, an object, a token answer).

``timeout`` bounds each wait on a socket; a server that trickles a byte now and then never
trips it. The deadline bounds the read as a whole: each request's timeout is cut to the time
left, and the body of an answer is read in pieces with the deadline checked between them. A
body past its limit is refused from its ``Content-Length`` or as soon as it grows past it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import requests

#: the largest Graph answer read: a page of 999 users with every attribute dirsync selects is
#: about 1 MB, a page of 999 group members less
MAX_BODY: Final = 64 * 1024 * 1024
#: the largest token endpoint answer read (an access token answer is a few KB)
MAX_TOKEN_BODY: Final = 1024 * 1024


class DeadlinePassed(Exception):
    """The read's deadline passed (translated where it is caught, with the context)."""


class TokenReadStopped(requests.exceptions.RequestException):
    """msal's HTTP session stopped reading a token endpoint's answer: past the deadline or the
    size limit. A requests exception, so it passes through msal to the token provider."""


@dataclass(slots=True)
class ReadDeadline:
    """A monotonic deadline, started when a read starts (not started: no deadline)."""

    seconds: float
    at: float | None = None

    def start(self) -> None:
        self.at = time.monotonic() + self.seconds

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def cut(self, timeout: float) -> float:
        """``timeout``, or the time left if that is shorter; raises ``DeadlinePassed`` when
        none is left."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlinePassed
        return min(timeout, left)

    def __str__(self) -> str:
        return f"read_deadline of {self.seconds:g}s"
