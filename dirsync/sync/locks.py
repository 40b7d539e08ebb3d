"""One lock per organization, shared by the daemon and one-shot ``dirsync sync``.

A lock is ``flock(2)`` on ``<runtime dir>/<organization>.lock``. The runtime directory of a
SQLite store is ``<database file>.run`` beside it; for any other store (or an in-memory
SQLite) it is ``$RUNTIME_DIRECTORY``, else ``/run/dirsync`` when writable, else
``<tmp>/dirsync-<uid>``. ``flock`` locks belong to an open file, so two threads of one process
exclude each other as well as two processes do, and the kernel drops a lock when its holder
dies: there is never a stale lock to clean up. The file holds the holder's pid, for messages.

Lock files are owner-only (``0600``, in a ``0700`` folder). Root never takes a lock in a folder
that belongs to another user (the service's ``DynamicUser=``): the file it would leave there is
root's, and the service could not open it on its next run. It is refused (``LockRefused``, exit
2) with the command to run instead. A lock file that this process may not open (left by an
older version run as root) fails the run with its owner and the command that removes it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from dirsync.config.file_safety import owner_name
from dirsync.errors import DirsyncError
from dirsync.plan import Plan
from dirsync.state.engine import store_file
from dirsync.state.files import FILE_MODE, private_folder

#: the holder's pid, right-aligned in this many characters (Linux pids have at most 7 digits)
_PID_WIDTH: Final = 10


class LockBusy(DirsyncError):
    """Another process or run holds the organization's lock; nothing was done (exit 4)."""

    exit_code = 4
    retryable = True

    def __init__(self, organization: str, holder: int | None) -> None:
        self.organization = organization
        self.holder = holder
        by = f" (pid {holder})" if holder else ""
        super().__init__(
            f"skipped {organization}: another sync of it is running{by}; use --wait to wait for it"
        )

    def to_json(self) -> dict[str, Any]:
        """``sync --json``'s entry for the organization it skipped."""
        empty = Plan()
        return {
            "organization": self.organization,
            "dry_run": False,
            "outcome": "skipped",
            "plan": empty.to_json(),
            "counts": empty.counts(),
            "warnings": [],
            "refusal": [],
            "error": str(self),
        }


class LockError(DirsyncError):
    """The lock file cannot be created or opened, e.g. it belongs to another user (exit 1)."""


class LockRefused(DirsyncError):
    """Root was asked to lock in a folder that belongs to the service's user (exit 2)."""

    exit_code = 2

    def __init__(self, directory: Path, owner: str, instead: str) -> None:
        super().__init__(
            f"{directory} belongs to {owner}, the service's user: run as root, dirsync would "
            f"leave files there that the service cannot open. Instead: {instead}"
        )


def runtime_directory(store_url: str) -> Path:
    """Where the store's locks and the daemon's schedule live (see the module docstring)."""
    path = store_file(store_url)
    if path is not None:
        return Path(f"{path.absolute()}.run")
    if runtime := os.environ.get("RUNTIME_DIRECTORY"):
        return Path(runtime.split(":")[0])
    run = Path("/run/dirsync")
    if os.access(run, os.W_OK):
        return run
    return Path(tempfile.gettempdir()) / f"dirsync-{os.getuid()}"


class OrganizationLock:
    """``with OrganizationLock(dir, "acme"):`` holds the lock; ``wait=False`` raises LockBusy."""

    def __init__(self, directory: Path, organization: str, *, wait: bool = False) -> None:
        self.path = directory / f"{organization}.lock"
        self.organization = organization
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> None:
        refuse_root_in_foreign_folder(
            self.path.parent, f"systemctl start dirsync-sync@{self.organization}"
        )
        try:
            private_folder(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except PermissionError as exc:
            raise LockError(_denied(self.path, exc)) from exc
        except OSError as exc:
            raise LockError(f"cannot open the lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LockBusy(self.organization, holder) from None
            raise LockError(f"cannot lock {self.path}: {exc.strerror}") from exc
        # written over in place, padded to a width no pid reaches: no truncation, whose
        # freeing and reallocating the file's block cost more than the rest of the lock
        os.pwrite(fd, f"{os.getpid():>{_PID_WIDTH}}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor of the open file drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> OrganizationLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def refuse_root_in_foreign_folder(directory: Path, instead: str) -> None:
    """As root, refuse a lock folder (or the folder it is to be made in) of another user's;
    ``instead`` is the command to run."""
    if os.geteuid() != 0:
        return  # another user cannot create files there at all: the OS refuses, clearly
    folder = directory
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folder this lock's folder would be created in
    try:
        uid = folder.stat().st_uid
    except OSError:
        return
    if uid != 0:
        raise LockRefused(folder, owner_name(uid), instead)


def _denied(path: Path, exc: OSError) -> str:
    message = f"cannot open the lock file {path}: {exc.strerror}"
    try:
        uid = path.stat().st_uid
    except OSError:
        return message
    if uid == os.geteuid():
        return message
    return (
        f"{message}; it belongs to {owner_name(uid)}, whose sync left it; remove it "
        f"(sudo rm {path}) and run syncs through the service (systemctl start "
        f"dirsync-sync@{path.stem})"
    )


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
