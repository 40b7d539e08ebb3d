"""Load connectors by source type from the ``dirsync.connectors`` entry-point group.

A source type has two entry points of the same name: its connector here, and its settings class
in ``dirsync.sources``, which the config validates the source with before any connector is
loaded (``dirsync.config.sources``). Each connector class names its settings class
(``settings_class``), so the two can be checked to agree: ``disagreements`` lists where they do
not, and ``create_connector`` refuses settings of a class its connector does not read.

The installed entry points are scanned once per process, and each connector class loaded
once: a one-shot ``sync`` of 500 organizations creates 500 connectors, and scanning every
installed package's metadata for each took a fifth of a no-change cycle. A package installed
later is seen by the next process (the daemon's next start), as its code would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from dirsync.config import sources
from dirsync.config.fields import SourceSettings
from dirsync.connectors.base import Connector
from dirsync.errors import ConfigError

GROUP = "dirsync.connectors"


class ConnectorClass(Protocol):
    """What a ``dirsync.connectors`` entry point loads: a connector class naming its settings."""

    @property
    def settings_class(self) -> type[SourceSettings]: ...

    def __call__(self, settings: Any, *, organization: str) -> Connector: ...


def available() -> dict[str, Any]:
    """The installed connectors' entry points by source type (scanned once per process)."""
    return dict(_installed())


@cache
def _installed() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


@cache
def _loaded(entry: EntryPoint) -> ConnectorClass:
    factory: ConnectorClass = entry.load()
    return factory


def create_connector(settings: SourceSettings, *, organization: str) -> Connector:
    """A connector for ``settings.type``; a helpful error lists the types that exist."""
    found = _installed()
    entry = found.get(settings.type)
    if entry is None:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(
            f"organization[{organization}].source.type: no connector {settings.type!r} is "
            f"installed (available: {known})"
        )
    factory = _loaded(entry)
    expected = getattr(factory, "settings_class", None)
    if expected is None or not isinstance(settings, expected):
        # two packages, or two versions of one, that register the same type differently
        raise ConfigError(
            f"organization[{organization}].source.type: the {settings.type!r} connector reads "
            f"{_name(expected)}, not the {_name(type(settings))} the config was validated with"
        )
    connector: Connector = factory(settings, organization=organization)
    return connector


def disagreements(
    connectors: Mapping[str, EntryPoint | ConnectorClass] | None = None,
    source_types: sources.SourceTypes | None = None,
) -> list[str]:
    """Where the source types (default: the installed ones) do not pair a connector with the
    settings class the config validates its sources with; empty when every one does."""
    connectors = available() if connectors is None else connectors
    source_types = sources.installed() if source_types is None else source_types
    problems = []
    for name in sorted(connectors.keys() | source_types.keys()):
        if name not in source_types:
            problems.append(f"{name}: a connector without settings (no {sources.GROUP} entry)")
            continue
        if name not in connectors:
            problems.append(f"{name}: settings without a connector (no {GROUP} entry)")
            continue
        try:
            settings_class = sources.lookup(name, source_types)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        entry = connectors[name]
        connector = entry.load() if isinstance(entry, EntryPoint) else entry
        declared = getattr(connector, "settings_class", None)
        if declared is not settings_class:
            problems.append(
                f"{name}: the connector's settings_class is {_name(declared)}, "
                f"the {sources.GROUP} entry names {_name(settings_class)}"
            )
    return problems


def _name(cls: object) -> str:
    return f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)
