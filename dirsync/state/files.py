"""The files dirsync creates beside its store: owner-only, whatever the umask.

Every file dirsync creates (the SQLite store, whose ``-wal`` and ``-shm`` files SQLite gives
the store's own mode, lock files, the schedule, backups) is readable by its owner only; a
folder it creates for them is ``0700``.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    """``path`` as a folder; it and the parents it lacks are created ``0700``."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=FOLDER_MODE)
    return path


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only unless it exists (e.g. before SQLite creates it)."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically (write beside it, then rename) with an owner-only file."""
    # mkstemp: a new file (O_EXCL, 0600) at an unguessable name, so no link planted beside
    # ``path`` is ever followed
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def exposure_warning(store: Path) -> str | None:
    """A warning when an existing SQLite store (or its ``-wal``/``-shm``) is not owner-only,
    e.g. made by an older dirsync under umask 022: it names the ``chmod`` that fixes it."""
    exposed: list[tuple[Path, int]] = []
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            exposed.append((path, mode))
    if not exposed:
        return None
    where = ", ".join(f"{path} (mode {mode:04o})" for path, mode in exposed)
    files = " ".join(str(path) for path, _mode in exposed)
    return (
        f"the store's files are open to other users, who can read every member's address: "
        f"{where}; chmod 600 {files}"
    )
