"""A list request's ``filter``, ``startIndex`` and ``count`` (RFC 7644 §3.4.2), read. Pure.

Identity providers look a resource up before they create it: Entra ID and Okta send
``userName eq "..."`` (``displayName eq "..."`` for groups). Those equality filters are what
is served; any other filter is answered ``invalidFilter`` rather than with a wrong list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dirsync.scim.errors import ScimError

#: the most resources one page returns (advertised in /ServiceProviderConfig)
MAX_RESULTS = 1000
DEFAULT_COUNT = 100

_EQUALS = re.compile(r'^\s*([A-Za-z][\w.:-]*)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$', re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    #: the filtered attribute as the client spelled it, lower-cased, and the value; or None
    attribute: str | None = None
    value: str | None = None
    offset: int = 0
    count: int = DEFAULT_COUNT


def parse_filter(text: str | None, supported: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(attribute, value) of an ``attribute eq "value"`` filter on one of ``supported``."""
    if text is None or not text.strip():
        return None, None
    match = _EQUALS.match(text)
    usable = " or ".join(f'{a} eq "..."' for a in supported)
    if match is None:
        raise ScimError(
            400, f"only equality filters are supported: {usable}", scim_type="invalidFilter"
        )
    attribute = match.group(1).lower()
    # a full schema URN before the attribute names the same attribute
    attribute = attribute.rpartition(":")[2] if attribute.startswith("urn:") else attribute
    if attribute not in {a.lower() for a in supported}:
        raise ScimError(
            400,
            f"filtering on {match.group(1)} is not supported; use {usable}",
            scim_type="invalidFilter",
        )
    try:
        value = json.loads(match.group(2))
    except ValueError:
        message = "the filter's value is not a valid string"
        raise ScimError(400, message, scim_type="invalidFilter") from None
    return attribute, str(value)


def _integer(params: dict[str, Any], key: str, default: int) -> int:
    raw = params.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise ScimError(400, f"{key} must be an integer", scim_type="invalidValue") from None


def parse_list_query(params: dict[str, Any], supported: tuple[str, ...]) -> ListQuery:
    attribute, value = parse_filter(params.get("filter"), supported)
    start = max(1, _integer(params, "startIndex", 1))  # RFC 7644: less than 1 means 1
    count = min(MAX_RESULTS, max(0, _integer(params, "count", DEFAULT_COUNT)))
    return ListQuery(attribute=attribute, value=value, offset=start - 1, count=count)


def list_response(total: int, query: ListQuery, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": query.offset + 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
