"""The seams inside ``dirsync/connectors`` are one-way, and what a class declares is true.

A strategy module (``ldap/delta.py``, ``active_directory/incremental.py``) describes the
connector it needs with a Protocol rather than importing it, so the imports between the
connector modules form no cycle, not even one under ``if TYPE_CHECKING:`` or inside a
function. And the fast conversion is chosen by a declaration (``generic_entries``), so a
class that overrides the hooks it assumes must declare False.
"""

from __future__ import annotations

import pytest

from dirsync.connectors.active_directory.connector import ActiveDirectoryConnector
from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.entries import EntryConversion
from tests.unit.test_architecture import find_cycle, import_graph

PACKAGE = "dirsync.connectors"


def _graph() -> dict[str, set[str]]:
    """Each connector module → the connector modules it imports, wherever the import stands."""
    return {
        name: {target for target in targets if target.startswith(PACKAGE + ".")}
        for name, targets in import_graph().items()
        if name.startswith(PACKAGE + ".")
    }


def test_the_connector_modules_import_each_other_without_a_cycle() -> None:
    graph = _graph()
    assert graph[f"{PACKAGE}.ldap.connector"] >= {f"{PACKAGE}.ldap.delta"}  # the check sees edges
    assert find_cycle(graph) == []


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
