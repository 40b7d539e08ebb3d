"""Every module of dirsync imports without a single warning, even with warnings as errors:
a deprecation in dirsync or in a library it imports fails here, before its removal breaks an
install (the suite runs this under every Python that CI runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dirsync

#: Alembic's environment runs migrations when imported: only Alembic may load it
NOT_IMPORTABLE_ALONE = {"dirsync.state.migrations.env"}

#: the warnings a dependency still raises, each with the reason it is let through (the same
#: exceptions as pytest's filterwarnings in pyproject.toml)
ALLOWED: list[str] = []


def modules() -> list[str]:
    root = Path(dirsync.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in NOT_IMPORTABLE_ALONE and not name.endswith("__main__"):
            names.append(name)
    return names


def test_the_list_covers_the_package() -> None:
    found = modules()
    assert "dirsync.cli.main" in found and "dirsync.state.sql_store" in found
    assert "dirsync.connectors.ldap.session" in found and "dirsync.testing.slapd" in found
    assert len(found) > 100


def test_every_module_imports_with_warnings_as_errors() -> None:
    # a fresh interpreter: this process has imported most of them already, warnings spent
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    options = [arg for rule in ALLOWED for arg in ("-W", rule)]
    done = subprocess.run(
        [sys.executable, "-W", "error", *options, "-c", script, *modules()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
