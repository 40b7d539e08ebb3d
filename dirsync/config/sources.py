"""Which class validates an ``[organization.source]``: the one its ``type`` names.

A source type is an entry point in the ``dirsync.sources`` group: its name is the ``type`` the
config writes, its object the type's settings class, a ``SourceSettings``. A connector is then
an entry point of the same name in ``dirsync.connectors`` whose class names the same settings
class (``dirsync.connectors.registry`` checks that the two agree): installing a package with
both entry points adds a source type, with no edit here. The settings have a group of their own
(dlt's connector ``spec``) because validating a config must not import the connectors, and
with them the LDAP transport, httpx and msal: the settings modules import pydantic and
``dirsync.config``.

A source is validated in two steps: its common key ``type`` first, then the whole table by the
class that type names, so that a problem inside it has the key path of any other problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticKnownError

from dirsync.config.fields import SourceSettings

GROUP = "dirsync.sources"

#: how a source type is known: by its entry point (loaded when a config uses the type) or, for
#: tests and programs that embed dirsync, by its settings class itself
SourceTypes = Mapping[str, EntryPoint | type[SourceSettings]]

#: the order in which "must be one of" has always listed dirsync's own types (that of the
#: documentation); the types of other packages follow, alphabetically
_LISTED_FIRST = ("ldap", "active_directory", "azure_ad", "scim")


def installed() -> dict[str, EntryPoint]:
    """The source types of every installed package, by name."""
    return {entry.name: entry for entry in entry_points(group=GROUP)}


def lookup(name: object, available: SourceTypes) -> type[SourceSettings]:
    """The settings class of source type ``name``; a ``ValueError`` says why there is none."""
    entry = available.get(name) if isinstance(name, str) else None
    if entry is None:
        listed = [n for n in _LISTED_FIRST if n in available]
        listed += sorted(n for n in available if n not in _LISTED_FIRST)
        if not listed:
            raise ValueError("no source type is installed")
        raise ValueError("must be one of " + ", ".join(f'"{n}"' for n in listed))
    if isinstance(entry, EntryPoint):
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken package: a problem to report, not a traceback
            message = f"source type {name!r} is installed but its settings do not load: {exc!r}"
            raise ValueError(message) from None
    else:
        loaded = entry
    if not (isinstance(loaded, type) and issubclass(loaded, SourceSettings)):
        raise ValueError(f"source type {name!r} names {loaded!r}, which is not a SourceSettings")
    return loaded


def validate_source(value: Any, info: ValidationInfo) -> SourceSettings:
    """``[organization.source]`` validated by the class its ``type`` names.

    The types come from the validation context's ``sources`` (``parse_config`` looks them up
    once per file), else from the installed entry points.
    """
    context = info.context or {}
    available: SourceTypes | None = context.get("sources")
    if available is None:
        available = installed()
    if isinstance(value, SourceSettings):
        name: object = value.type
    elif isinstance(value, dict):
        name = value.get("type")
    else:
        # pydantic's own words for a table that is not one, as the config has always said
        raise PydanticKnownError("model_attributes_type")
    try:
        settings_class = lookup(name, available)
    except ValueError as exc:
        # the problem is the type's own: organization[acme].source.type
        problem = PydanticCustomError("source_type", "{problem}", {"problem": str(exc)})
        error = InitErrorDetails(type=problem, loc=("type",), input=name)
        raise ValidationError.from_exception_data("SourceSettings", [error]) from None
    # a ValidationError raised in a validator joins the outer one, each location under this
    # field's: a problem reads organization[acme].source.url, as any other key's does
    return settings_class.model_validate(value, context=info.context)
