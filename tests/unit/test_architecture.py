"""The layers of ``shared/design.md``, read from the code's own imports.

Every import statement of every module under ``dirsync/`` counts, wherever it stands: at the
top, inside a function, or under ``if TYPE_CHECKING:``. The folders are the layers: a module
may import its own folder and the layers below it, never one above, and no chain of imports
leads back to where it started.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dirsync

ROOT = Path(dirsync.__file__).parent

#: the layers from the top down; a module's layer is its first folder (or the module itself at
#: the package root). Each may import only the layers after it in this list, and its own.
LAYERS = (
    ("__main__", "cli"),
    ("daemon",),
    ("sync", "scim"),  # side by side: two drivers of a run (a sync reads, a push is sent)
    ("connectors", "state"),  # side by side, and neither may import the other
    ("mapping", "lifecycle", "logs", "version"),
    ("config",),
    ("errors", "model", "organization", "plan", "rules"),  # the values
)
#: the sideways imports the design allows: the store implements the core's StoredDirectory port
#: (``mapping/scope.py``) and the filters of Azure AD flatten groups as the core does
ALLOWED_UPWARDS = {
    ("state", "mapping"),
    ("connectors", "mapping"),
    ("errors", "plan"),  # PlanRefused carries the plan it refused (typing only)
}
#: what a connector family may import of another: Active Directory is LDAP with more
FAMILIES = {"active_directory": {"ldap"}, "ldap": set(), "azure_ad": set(), "scim": set()}


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _name(path): path
        for path in ROOT.rglob("*.py")
        if "migrations" not in path.parts and "testing" not in path.parts
    }


def _imports(path: Path, package: str, known: set[str]) -> set[str]:
    """The dirsync modules a file imports, wherever the statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    """Each production module of dirsync → the dirsync modules it imports (packages' empty
    ``__init__`` files aside: importing ``a.b.c`` is an edge to ``a.b.c`` only)."""
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imports(path, package, known) - {name}
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _rank(layer: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if layer in names)


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
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


def test_the_check_sees_the_imports_it_judges() -> None:
    graph = import_graph()
    assert len(graph) > 100
    assert "dirsync.sync.run" in graph["dirsync.cli.commands"]
    assert "dirsync.state.store" in graph["dirsync.sync.run"]
    # an import inside a function counts (the daemon's, only for ``dirsync run``)
    assert "dirsync.daemon.process" in graph["dirsync.cli.commands"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_chain_of_imports_leads_back_to_where_it_started() -> None:
    assert find_cycle(import_graph()) == []


def test_imports_point_down_or_sideways_never_up() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if module != "dirsync"
        for target in targets
        if _rank(_layer(target)) < _rank(_layer(module))
        and (_layer(module), _layer(target)) not in ALLOWED_UPWARDS
    )
    assert upward == []


def test_connectors_and_the_store_never_import_each_other() -> None:
    crossing = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if {_layer(module), _layer(target)} == {"connectors", "state"}
    )
    assert crossing == []


def test_a_connector_family_imports_no_other_family_but_the_one_it_builds_on() -> None:
    def family(module: str) -> str | None:
        parts = module.split(".")
        return parts[2] if len(parts) > 3 and parts[1] == "connectors" else None

    crossing = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if (mine := family(module))
        and (theirs := family(target))
        and theirs != mine
        and theirs not in FAMILIES[mine]
    )
    assert crossing == []


def test_no_production_module_imports_the_testing_helpers() -> None:
    users = sorted(
        name
        for name, path in _modules().items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom | ast.Import)
        and any(
            module == "dirsync.testing" or module.startswith("dirsync.testing.")
            for module in (
                [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
            )
        )
    )
    assert users == []
