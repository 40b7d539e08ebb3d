"""Reading the files that steer dirsync (the config and its secrets) only when they are safe.

Whoever can write the config decides which file is read as a secret and which server it is
sent to, so, like ssh's ``StrictModes``, the config file and every secret file it names must
belong to the user running dirsync or to root, and must not be writable by group or others;
nor may a folder above them be, unless it has the sticky bit (``/tmp``). A group that is the
owner's own (a user private group) does not count as others. systemd's
``LoadCredential=`` copies (root's, ``0400``/``0440``) pass. ``DIRSYNC_ALLOW_UNSAFE_FILES=1``
in the environment turns the check off for unusual set-ups (it cannot be a key of the file it
checks); the command line then logs that it is off.

A secret is small: a file larger than ``SECRET_FILE_LIMIT``, or one that is not a regular file
(``/dev/zero``, a FIFO, a socket, a folder) is refused without reading it. Files are opened
with ``O_NONBLOCK`` (a FIFO cannot block the open), checked with ``fstat`` on the open
descriptor, and read at most one byte beyond their limit.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path
from typing import Final

#: a secret larger than this is not a secret (a password, a token, a PEM key are a few KiB)
SECRET_FILE_LIMIT: Final = 64 * 1024
#: the config of 1,000 organizations is well under 1 MiB
CONFIG_FILE_LIMIT: Final = 16 * 1024 * 1024
#: set to 1 in the environment: config and secret files are read whoever may write them
ALLOW_UNSAFE_ENV: Final = "DIRSYNC_ALLOW_UNSAFE_FILES"

_KINDS: Final = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


class UnsafeFile(ValueError):
    """A file dirsync refuses to read: the message names it, what is wrong, and the fix.

    ``denied``: this user may not open it (``config check`` run by another user than the
    service's treats that as a warning)."""

    def __init__(self, message: str, *, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied


def unsafe_files_allowed() -> bool:
    return os.environ.get(ALLOW_UNSAFE_ENV, "").strip().lower() in {"1", "true", "yes"}


def owner_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:  # a DynamicUser= has no passwd entry while its service is stopped
        return f"uid {uid}"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _kind(mode: int) -> str | None:
    """What a non-regular file is; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _private_group(info: os.stat_result) -> bool:
    """Whether the file's group is its owner's own (a user private group: named after the
    owner, no other members), so that a group bit opens it to nobody else; Debian's ssh
    accepts that too (umask 002 set-ups)."""
    try:
        group = grp.getgrgid(info.st_gid)
        owner = pwd.getpwuid(info.st_uid)
    except KeyError:
        return False
    return group.gr_name == owner.pw_name and not group.gr_mem


def _writers(info: os.stat_result) -> str | None:
    mode = info.st_mode
    group = bool(mode & stat.S_IWGRP) and not _private_group(info)
    others = bool(mode & stat.S_IWOTH)
    if group and others:
        return "group and others"
    return "its group" if group else "others" if others else None


def _trusted_owner(uid: int) -> bool:
    return uid in {0, os.geteuid()}


def _trusted_names() -> tuple[str, str]:
    """(this user's name, ``"alice or root"`` or ``"root"``)."""
    me = _user_name(os.geteuid())
    return me, "root" if os.geteuid() == 0 else f"{me} or root"


def ownership_problem(path: Path, info: os.stat_result) -> str | None:
    """Why ``path`` (with its ``stat``) may be changed by someone else; None when it is safe."""
    if not _trusted_owner(info.st_uid):
        me, trusted = _trusted_names()
        return (
            f"{path} belongs to {owner_name(info.st_uid)}, not to {trusted}; whoever may "
            f"change it decides what dirsync reads: chown {me} {path}"
        )
    if (writers := _writers(info)) is not None:
        return (
            f"{path} is writable by {writers} (mode {stat.S_IMODE(info.st_mode):04o}); whoever "
            f"may change it decides what dirsync reads: chmod go-w {path}"
        )
    return None


def folder_problem(path: Path) -> str | None:
    """Why a folder above ``path`` lets someone else swap it; None when every one is safe.

    A folder others may write is safe only with the sticky bit (``/tmp``): then they cannot
    rename or remove what is not theirs."""
    for folder in Path(os.path.realpath(path)).parents:
        try:
            info = folder.stat()
        except OSError:
            continue  # the file itself opened: an unreadable parent is not a swap
        if not _trusted_owner(info.st_uid):
            me, trusted = _trusted_names()
            return (
                f"the folder {folder} (holding {path}) belongs to {owner_name(info.st_uid)}, "
                f"not to {trusted}, who may replace what it holds: "
                f"chown {me} {folder}"
            )
        writers = _writers(info)
        if writers is not None and not info.st_mode & stat.S_ISVTX:
            return (
                f"the folder {folder} (holding {path}) is writable by {writers} (mode "
                f"{stat.S_IMODE(info.st_mode):04o}) without the sticky bit; they may replace "
                f"what it holds: chmod go-w {folder}"
            )
    return None


def safety_problem(path: Path) -> str | None:
    """Why someone other than its owner and root could change ``path`` (a file the config
    names, such as a ``ca_file``, read later by a library); None when it is safe, when the
    check is off, or when it cannot be looked at (the reader then says why)."""
    if unsafe_files_allowed():
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return ownership_problem(path, info) or folder_problem(path)


def read_checked_file(path: Path, *, limit: int, what: str) -> bytes:
    """The bytes of ``path`` if it is a safe regular file of at most ``limit`` bytes.

    ``FileNotFoundError`` when it does not exist; ``UnsafeFile`` (one line: the path, what is
    wrong, the fix) for everything else. ``what`` names the file in messages (``a secret``).
    """
    try:
        kind = _kind(os.stat(path).st_mode)  # before opening: opening a device may act
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFile(f"cannot read {path}: {exc.strerror}", denied=_denied(exc)) from None
    if kind is not None:
        raise UnsafeFile(f"{path} is {kind}, not a regular file; {what} is a small file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFile(f"cannot read {path}: {exc.strerror}", denied=_denied(exc)) from None
    try:
        info = os.fstat(fd)  # the file opened, whatever was at the path a moment ago
        if (kind := _kind(info.st_mode)) is not None:
            raise UnsafeFile(f"{path} is {kind}, not a regular file; {what} is a small file")
        if not unsafe_files_allowed():
            problem = ownership_problem(path, info) or folder_problem(path)
            if problem is not None:
                raise UnsafeFile(problem)
        if info.st_size > limit:
            raise UnsafeFile(_too_large(path, limit, what, f"{info.st_size:,} bytes"))
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise UnsafeFile(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew meanwhile, or a size stat does not tell (procfs)
        raise UnsafeFile(_too_large(path, limit, what, f"more than {limit:,} bytes"))
    return data


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0 and (chunk := os.read(fd, min(left, 65536))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _too_large(path: Path, limit: int, what: str, size: str) -> str:
    return f"{path} holds {size}; {what} may hold {limit // 1024} KiB at most"


def _denied(exc: OSError) -> bool:
    return isinstance(exc, PermissionError)
