"""This dirsync's version: PEP 440, and different for every commit it is built from.

A wheel or an sdist carries the version setuptools-scm derived from git when it was built
(``vX.Y.Z`` tags; between tags ``X.Y.(Z+1).devN+gHASH``, N commits after the tag; without any
tag the same, counted from pyproject's ``fallback_version`` and N commits in all), and dirsync
reads it from the installed metadata.

An editable install (``pip install -e .``) has metadata too, but it was written when the
install ran and goes stale with the next commit. So when the running package sits in a git
checkout of the project, the version is asked of git at that moment, by setuptools-scm's rules
(``format_version``); only then, so an installed dirsync never runs git. If git cannot answer
(not installed, a checkout owned by someone else), the metadata is the answer after all.
"""

from __future__ import annotations

import functools
import re
import subprocess
import tomllib
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path

#: the checkout a running dirsync would belong to: the folder above the package
CHECKOUT = Path(__file__).resolve().parent.parent
#: what neither git nor an install can name (a copied source tree without metadata)
UNKNOWN = "0+unknown"
#: what setuptools-scm counts from without a fallback_version in pyproject.toml
NO_TAG = "0.0"
#: setuptools-scm's abbreviation of the commit in the local version part
NODE_LENGTH = 9
_DESCRIBED = re.compile(r"^(?P<tag>.+)-(?P<distance>\d+)-g[0-9a-f]+$")
_RELEASE = re.compile(r"^v?(?P<release>\d+(?:\.\d+)*)$")


@functools.cache
def current() -> str:
    """The version of the dirsync that is running (cached: it cannot change under it)."""
    if is_checkout(CHECKOUT):
        found = version_from_git(CHECKOUT)
        if found is not None:
            return found
    try:
        return metadata.version("dirsync")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def is_checkout(root: Path) -> bool:
    """Whether ``root`` is the project's git work tree (a worktree's ``.git`` is a file)."""
    return (root / ".git").exists() and (root / "pyproject.toml").is_file()


def version_from_git(root: Path, *, today: date | None = None) -> str | None:
    """The version setuptools-scm would build from the work tree at ``root`` now; None when
    git cannot tell (or the newest tag is not a plain ``vX.Y.Z``)."""
    node = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if node is None or status is None:
        return None
    described = _git(root, "describe", "--tags", "--long", "--match", "*[0-9]*")
    if described is None:  # no tag at all: counted from the fallback, every commit
        count = _git(root, "rev-list", "--count", "HEAD")
        if count is None:
            return None
        tag, distance = fallback_version(root), int(count)
    else:
        match = _DESCRIBED.match(described)
        if match is None:
            return None
        tag, distance = match["tag"], int(match["distance"])
    release = _RELEASE.match(tag)
    if release is None:
        return None
    return format_version(
        release["release"],
        distance=distance,
        node=node[:NODE_LENGTH],
        dirty=bool(status),
        today=today or datetime.now(UTC).date(),
    )


def fallback_version(root: Path) -> str:
    """``[tool.setuptools_scm] fallback_version`` of the checkout's pyproject.toml: what
    setuptools-scm counts from when git knows no tag."""
    try:
        with (root / "pyproject.toml").open("rb") as file:
            found = tomllib.load(file).get("tool", {}).get("setuptools_scm", {})
    except (OSError, tomllib.TOMLDecodeError):
        return NO_TAG
    value = found.get("fallback_version")
    return value if isinstance(value, str) else NO_TAG


def format_version(release: str, *, distance: int, node: str, dirty: bool, today: date) -> str:
    """setuptools-scm's default schemes (guess-next-dev, node-and-date): the tag itself on a
    clean tagged commit; otherwise the next release's ``.devN``, with the commit (and, for
    uncommitted changes, the day) as the local part."""
    if distance == 0 and not dirty:
        return release
    parts = release.split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    local = f"g{node}" + (f".d{today:%Y%m%d}" if dirty else "")
    return f"{'.'.join(parts)}.dev{distance}+{local}"


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
