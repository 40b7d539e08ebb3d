"""The exception tree. Each class knows its exit code and whether a retry can help.

``cli.app.handle_errors`` is the one place that turns these into exit codes and one-line
messages; connectors translate their libraries' exceptions into these classes at the boundary
(``raise ... from``), and the store translates SQLAlchemy's.

    DirsyncError                 exit 1
    ├── ConfigError              exit 2   the config is wrong (knowable without a directory)
    ├── UsageError               exit 2   the command line asks for what does not exist
    ├── NotFound                 exit 2   no such organization, member or file
    ├── TransitionRefused        exit 2   the lifecycle rules refuse an administrator's change
    ├── StoreTooNew              exit 2   a newer dirsync wrote the store: install it
    ├── PlanRefused              exit 3   a safety guard refused the plan
    ├── SourceError              exit 1   retryable
    │   ├── SourceUnreachable
    │   ├── SourceReadIncomplete          a read broke off: never a partial snapshot
    │   ├── CursorExpired                 read again in full
    │   ├── SourceTLSError                not retryable
    │   └── SourceAuthFailed              not retryable
    └── StoreError               exit 1   retryable
        └── ConcurrentRunError            another run applied first (version check)

Elsewhere, beside the code that raises them: ``sync.locks.LockBusy`` (exit 4),
``LockError`` and ``LockRefused`` (exit 2), ``daemon.metrics_server.MetricsError``, and the
connectors' own ``SourceError`` subclasses (``TokenUnavailable``, ``DirSyncRefused``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from dirsync.plan import Plan


class DirsyncError(Exception):
    """Base of every error dirsync raises on purpose."""

    exit_code: ClassVar[int] = 1
    retryable: ClassVar[bool] = False


class ConfigError(DirsyncError):
    """The configuration is wrong; knowable without contacting the directory (exit 2)."""

    exit_code = 2

    def __init__(self, problems: list[str] | str, *, path: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(self.problems))


class UsageError(DirsyncError):
    """The command line asks for something that does not exist (exit 2)."""

    exit_code = 2


class SourceError(DirsyncError):
    """Reading the directory failed; nothing was changed (exit 1)."""

    retryable = True


class SourceUnreachable(SourceError):
    """The directory host could not be reached (refused, unresolvable, timed out)."""


class SourceTLSError(SourceError):
    """The TLS handshake failed, usually a certificate that does not verify."""

    retryable = False


class SourceAuthFailed(SourceError):
    """The directory refused the credentials."""

    retryable = False


class SourceReadIncomplete(SourceError):
    """A read broke off (size/time limit, lost connection, bad page): nothing may be removed."""


class CursorExpired(SourceError):
    """The delta cursor is no longer valid; the caller reads again in full."""


class StoreError(DirsyncError):
    """The organization store failed; the transaction was rolled back (exit 1)."""

    retryable = True


class ConcurrentRunError(StoreError):
    """Another run changed the organization while this one was planning; nothing was applied."""


class RunTakenOver(ConcurrentRunError):
    """Another run of the organization began after this one (on another node, once this one
    lost the organization's lock): this one applies nothing."""


class NotFound(DirsyncError):
    """A named organization, member or group does not exist (exit 2)."""

    exit_code = 2


class StoreTooNew(DirsyncError):
    """A newer dirsync migrated the store to a schema this one does not know (exit 2): knowable
    without a directory, and no retry helps; nothing was read or written."""

    exit_code = 2


class PlanRefused(DirsyncError):
    """A safety guard refused the plan; the store is unchanged (exit 3)."""

    exit_code = 3

    def __init__(self, reasons: list[str], plan: Plan, *, warnings: tuple[str, ...] = ()) -> None:
        self.reasons = reasons
        self.plan = plan
        self.warnings = warnings
        super().__init__("; ".join(reasons))


class TransitionRefused(DirsyncError):
    """An administrator's member change breaks a lifecycle rule; nothing was changed (exit 2)."""

    exit_code = 2
