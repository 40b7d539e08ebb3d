"""Ranged attribute retrieval (AD's ``member;range=0-1499``): the loop, pure and testable.

Windows AD returns at most ``MaxValRange`` (1,500) values of a multi-valued attribute per entry;
the rest must be asked for with ``member;range=1500-*``, and so on, until a range ends in ``*``.
A group read without that loop is silently truncated, so every step here is checked: a missing
or non-contiguous range raises ``RangeError`` instead of returning a shorter list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

_RANGE: Final = re.compile(r"^(?P<name>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)

#: fetch(dn, "member;range=1500-*") → that entry's raw attributes from a base search
RangeFetch = Callable[[str, str], dict[str, Sequence[Any]]]


class RangeError(ValueError):
    """A ranged attribute could not be read completely."""


def ranged_keys(attributes: dict[str, Any]) -> dict[str, tuple[str, int, int | None]]:
    """``{"member;range=0-1499": ("member", 0, 1499)}`` for every ranged key present."""
    found = {}
    for key in attributes:
        if ";" in key and (match := _RANGE.match(key)):  # most keys: no options, no regex
            high = match.group("high")
            found[key] = (
                match.group("name"),
                int(match.group("low")),
                None if high == "*" else int(high),
            )
    return found


def complete_ranges(dn: str, attributes: dict[str, Any], fetch: RangeFetch) -> dict[str, Any]:
    """``attributes`` with every ``name;range=a-b`` key replaced by the complete ``name`` list."""
    ranged = ranged_keys(attributes)
    if not ranged:
        return attributes
    result = {k: v for k, v in attributes.items() if k not in ranged}
    for key, (name, low, high) in ranged.items():
        values = list(attributes[key])
        if low != 0:
            raise RangeError(f"{dn}: {key} does not start at 0")
        # AD sends the plain attribute empty beside the ranged one; anything in it counts too
        values = list(result.pop(_plain_key(result, name), None) or ()) + values
        while high is not None:
            wanted = f"{name};range={high + 1}-*"
            page = fetch(dn, wanted)
            step = [(k, v) for k, v in ranged_keys(page).items() if v[0].lower() == name.lower()]
            if len(step) != 1:
                raise RangeError(f"{dn}: asked for {wanted}, the server returned no such range")
            page_key, (_, next_low, next_high) = step[0]
            if next_low != high + 1:
                raise RangeError(f"{dn}: asked for {wanted}, the server returned {page_key}")
            values.extend(page[page_key])
            high = next_high
        result[name] = values
    return result


def _plain_key(attributes: dict[str, Any], name: str) -> str:
    for key in attributes:
        if key.lower() == name.lower():
            return key
    return name
