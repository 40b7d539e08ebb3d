"""Load connectors by source type from the ``dirsync.connectors`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from dirsync.config.fields import SourceSettings
from dirsync.connectors.base import Connector
from dirsync.errors import ConfigError

GROUP = "dirsync.connectors"


def available() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def create_connector(settings: SourceSettings, *, organization: str) -> Connector:
    """A connector for ``settings.type``; a helpful error lists the types that exist."""
    found = available()
    entry = found.get(settings.type)
    if entry is None:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(
            f"organization[{organization}].source.type: no connector {settings.type!r} is "
            f"installed (available: {known})"
        )
    factory = entry.load()
    connector: Connector = factory(settings, organization=organization)
    return connector
