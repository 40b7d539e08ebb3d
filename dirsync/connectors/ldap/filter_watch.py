"""Filters that depend on group membership through ``memberOf``: watched between runs.

A ``user_filter`` such as ``(memberOf=cn=dirsync-users,ou=Roles,dc=acme,dc=example)`` (only
members of an access group are synced) selects users by an attribute that OpenLDAP's memberof
overlay (and 389 DS's, as ``memberOf`` or ``isMemberOf``) writes into the users' entries when
the *group* changes. Those writes are internal: syncprov does not send them and the users'
modifyTimestamp does not move, so a delta would not see a user leave or enter the filter.
Active Directory's ``memberOf`` is a back-link that changes without the user changing
(no uSNChanged, no DirSync entry): the same holds there, and its connector uses this too. Yet
removing someone from the access group is how many administrators offboard.

So the groups such a filter names are watched: each cursor carries a digest of their
``entryCSN``, ``modifyTimestamp`` and member values, taken before the read; a delta run first
takes it again, and when it differs (a group changed, was renamed or deleted) the delta is
refused with ``CursorExpired`` naming the group, and the run reads in full. A filter that
tests ``memberOf`` in a way that names no group (``(memberOf=*)``, a substring) cannot be
watched: every run with it reads in full, with that reason logged. The same holds for
``group_filter`` and ``disabled_filter``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Final

from dirsync.connectors.ldap.reader import LdapReader
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.errors import CursorExpired
from dirsync.model import Cursor

#: attributes a directory's membership overlay maintains in the member's entry
BACK_LINKS: Final = frozenset({"memberof", "ismemberof"})
#: what a watched group's digest covers: any change to it moves entryCSN or modifyTimestamp
#: where the server keeps them, and its member values where it does not
_WATCHED: Final = (
    "entryCSN", "modifyTimestamp", "uSNChanged", "member", "uniqueMember", "memberUid"
)  # fmt: skip
_NO_SUCH_OBJECT: Final = 32
#: one assertion of a filter: ``(attr=value)``, ``(attr:rule:=value)``, ``(attr>=value)``...
_ASSERTION: Final = re.compile(r"\(\s*([A-Za-z0-9;.-]+)(:[^=()]*)?([~<>]?=)((?:[^()\\]|\\.)*)\)")


@dataclass(frozen=True, slots=True)
class Watch:
    """What the filters need watched: the group DNs they name, or ``blind`` when a filter
    tests a back-link without naming a group (then no delta can be trusted)."""

    dns: tuple[str, ...] = ()
    blind: str | None = None

    @property
    def needed(self) -> bool:
        return bool(self.dns) or self.blind is not None


def watch_of(settings: LdapSourceSettings) -> Watch:
    dns: set[str] = set()
    for key in ("user_filter", "group_filter", "disabled_filter"):
        for attribute, rule, operator, value in _ASSERTION.findall(getattr(settings, key)):
            if attribute.lower() not in BACK_LINKS:
                continue
            if rule or operator != "=" or _has_wildcard(value):
                return Watch(
                    blind=f"{key} tests {attribute} without naming one group "
                    f"({attribute}{rule}{operator}{value})"
                )
            dns.add(_unescape(value.strip()))
    return Watch(dns=tuple(sorted(dns)))


def _has_wildcard(value: str) -> bool:
    return re.search(r"(?<!\\)\*", value) is not None


def _unescape(value: str) -> str:
    """RFC 4515 ``\\2a``-style escapes back to characters."""
    return re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def digest(reader: LdapReader, watch: Watch) -> str:
    """A digest of the watched groups as they are now (an absent group counts as absent)."""
    state: dict[str, object] = {}
    for dn in watch.dns:
        entries, result = reader.session.search(
            dn, "(objectClass=*)", list(_WATCHED), what="watched group", base_scope=True
        )
        if result.get("result") == _NO_SUCH_OBJECT:
            reader.warnings.append(
                f"the group {dn} that a filter names through memberOf does not exist, or the "
                "bind account cannot read it; its changes cannot be watched"
            )
            state[dn.lower()] = None
            continue
        reader.session.check_result(result, what="watched group", base=dn, count=len(entries))
        values: dict[str, list[str]] = {}
        for entry in entries:
            for name, items in entry["raw_attributes"].items():
                values[name.lower()] = sorted(
                    (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).lower()
                    for v in items
                )
        state[dn.lower()] = values
    text = json.dumps(state, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def check(watch: Watch, watched: str | None, cursor: Cursor) -> None:
    """Raise ``CursorExpired`` unless the cursor was taken with the watched groups as they
    are now (``watched``, their digest), so the run reads in full instead of trusting it."""
    if watch.blind is not None:
        raise CursorExpired(f"{watch.blind}: a delta cannot see whom it selects; reading in full")
    try:
        then = json.loads(cursor.value).get("w")
    except (ValueError, AttributeError):
        then = None
    if then != watched:
        names = "; ".join(watch.dns)
        raise CursorExpired(
            f"a group that a filter names through memberOf changed since the last run ({names}):"
            " the directory changed its members' memberOf without reporting it; reading in full"
        )


def stamped(cursor: Cursor | None, watched: str | None) -> Cursor | None:
    """The cursor with the watched groups' digest in it (as it was before the read)."""
    if cursor is None or watched is None:
        return cursor
    data = json.loads(cursor.value)
    data["w"] = watched
    return Cursor(kind=cursor.kind, value=json.dumps(data, sort_keys=True))
