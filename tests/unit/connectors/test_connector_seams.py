"""The seams inside ``dirsync/connectors`` are one-way, and what a class declares is true.

A strategy module (``ldap/delta.py``, ``active_directory/incremental.py``) describes the
connector it needs with a Protocol rather than importing it, so the imports between the
connector modules form no cycle, not even one under ``if TYPE_CHECKING:`` or inside a
function. And the fast conversion is chosen by a declaration (``generic_entries``), so a
class that overrides the hooks it assumes must declare False.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dirsync.connectors
from dirsync.connectors.active_directory.connector import ActiveDirectoryConnector
from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.entries import EntryConversion

ROOT = Path(dirsync.connectors.__file__).parent
PACKAGE = "dirsync.connectors"


def _module_name(path: Path) -> str:
    return ".".join((PACKAGE, *path.relative_to(ROOT).with_suffix("").parts))


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The connector modules ``path`` imports, wherever in it the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            # ``from package import module`` names the module among the imported names
            found.update({node.module} | {f"{node.module}.{alias.name}" for alias in node.names})
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & modules


def _graph() -> dict[str, set[str]]:
    """Each connector module → the connector modules it imports (the packages' empty
    ``__init__`` files aside: they import nothing)."""
    paths = {_module_name(path): path for path in ROOT.rglob("*.py") if path.stem != "__init__"}
    return {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, as the modules along it; empty if there is none."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str]:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return []
        for target in sorted(graph[name]):
            if found := visit(target, [*path, name]):
                return found
        done.add(name)
        return []

    for name in sorted(graph):
        if found := visit(name, []):
            return found
    return []


def test_the_connector_modules_import_each_other_without_a_cycle() -> None:
    graph = _graph()
    assert graph[f"{PACKAGE}.ldap.connector"] >= {f"{PACKAGE}.ldap.delta"}  # the check sees edges
    assert _cycle(graph) == []


def test_a_strategy_module_never_imports_the_connector_it_serves() -> None:
    graph = _graph()
    assert f"{PACKAGE}.ldap.connector" not in graph[f"{PACKAGE}.ldap.delta"]
    assert f"{PACKAGE}.ldap.connector" not in graph[f"{PACKAGE}.ldap.syncrepl"]
    incremental = graph[f"{PACKAGE}.active_directory.incremental"]
    assert f"{PACKAGE}.active_directory.connector" not in incremental
    assert f"{PACKAGE}.ldap.connector" not in incremental


@pytest.mark.parametrize("cls", [LdapConnector, ActiveDirectoryConnector])
def test_a_class_that_overrides_a_conversion_hook_declares_generic_entries_false(
    cls: type[EntryConversion],
) -> None:
    overrides = any(
        getattr(cls, hook) is not getattr(EntryConversion, hook)
        for hook in ("decode_external_id", "user_disabled")
    )
    assert cls.generic_entries is not overrides
