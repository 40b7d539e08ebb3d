"""``dirsync --version`` tells builds apart: a real git repository, real commits and tags, and
a wheel and an sdist built by setuptools-scm as pip would build them."""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

import dirsync
from dirsync.version import is_checkout, version_from_git

CHECKOUT = Path(dirsync.__file__).resolve().parent.parent


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files as they are now, in a new repository with one commit and no tag
    (what a fresh clone without tags looks like to setuptools-scm)."""
    assert is_checkout(CHECKOUT), f"the suite must run from a git checkout, not {CHECKOUT}"
    root = tmp_path_factory.mktemp("version") / "dirsync"
    files = git(CHECKOUT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    for name in filter(None, files.split("\0")):
        source = CHECKOUT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    commit(root, "one")
    return root


def printed_version(repo: Path) -> str:
    """What ``dirsync --version`` prints when dirsync runs from ``repo`` (as an editable
    install or ``python -m dirsync`` in a checkout does)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [sys.executable, "-m", "dirsync", "--version"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    match = re.fullmatch(r"dirsync (\S+)\n", done.stdout)
    assert match, done.stdout
    return match[1]


def built(repo: Path, kind: str, out: Path) -> Path:
    """A wheel or sdist of ``repo``, built by setuptools' PEP 517 backend as pip calls it."""
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETUPTOOLS_SCM")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta as b; "
            "print(getattr(b, 'build_' + sys.argv[1])(sys.argv[2]))",
            kind,
            str(out),
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


def wheel_version(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return str(email.parser.Parser().parsestr(archive.read(name).decode())["Version"])


def test_every_commit_prints_its_own_pep440_version_without_a_reinstall(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    first = printed_version(repo)
    assert first == f"0.1.1.dev1+g{head[:9]}"  # no tag: counted from fallback_version
    Version(first)  # PEP 440, or this raises

    second_head = commit(repo, "two")
    second = printed_version(repo)
    assert second == f"0.1.1.dev2+g{second_head[:9]}"
    assert Version(second) > Version(first)

    git(repo, "tag", "v0.2.0")
    assert printed_version(repo) == "0.2.0"
    third_head = commit(repo, "three")
    assert printed_version(repo) == f"0.2.1.dev1+g{third_head[:9]}"


def test_uncommitted_changes_are_not_the_commit_they_started_from(repo: Path) -> None:
    clean = printed_version(repo)
    readme = repo / "README.md"
    original = readme.read_text()
    readme.write_text(original + "\nchanged\n")
    try:
        changed = printed_version(repo)
    finally:
        readme.write_text(original)
    assert changed != clean
    assert re.fullmatch(r"\d+(\.\d+)*\.dev\d+\+g[0-9a-f]{9}\.d\d{8}", changed), changed


def test_a_wheel_and_an_sdist_carry_the_version_git_gives_the_checkout(
    repo: Path, tmp_path: Path
) -> None:
    head = commit(repo, "to build")
    expected = version_from_git(repo)
    assert expected is not None and expected.endswith(f"+g{head[:9]}")

    assert wheel_version(built(repo, "wheel", tmp_path / "wheel")) == expected

    sdist = built(repo, "sdist", tmp_path / "sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    assert not (unpacked / ".git").exists()
    # no git here: the version comes from the sdist's PKG-INFO
    assert wheel_version(built(unpacked, "wheel", tmp_path / "from-sdist")) == expected


def test_an_installed_dirsync_outside_a_checkout_reads_its_metadata(tmp_path: Path) -> None:
    """A copy of the package outside any work tree asks no git: the version is the installed
    distribution's (whatever the metadata says, stale or not, in that same interpreter)."""
    site = tmp_path / "site"
    shutil.copytree(CHECKOUT / "dirsync", site / "dirsync")
    script = (
        "import dirsync; from importlib import metadata; "
        "print(dirsync.__file__, dirsync.__version__, metadata.version('dirsync'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(site), "PATH": str(tmp_path)},  # no git either
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    where, printed, installed = done.stdout.split()
    assert Path(where).is_relative_to(site)
    assert printed == installed
