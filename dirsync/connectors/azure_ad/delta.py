"""Graph objects → the directory model, and the merging of delta pages. Pure: no I/O.

A delta round spans several pages. The same user can recur (a replay: the last one wins), an
``@removed`` can be followed by the object again (restored: it is no longer deleted), and the
same group recurs with slices of ``members@delta`` that are merged in page order. Soft deletes
(``@removed`` reason ``changed``) and hard deletes (``deleted``) are both explicit deletions;
a soft-deleted user that comes back reappears as an ordinary change and is restored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dirsync.model import DirectoryDelta, DirectoryUser, GroupChange

#: the user properties dirsync asks Graph for
USER_SELECT = ("id", "displayName", "mail", "userPrincipalName", "accountEnabled", "userType")
GROUP_SELECT = ("id", "displayName")
_MEMBER_TYPES = frozenset({"#microsoft.graph.user", "#microsoft.graph.group"})


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRules:
    email_attribute: str = "mail"
    email_fallback: str = "userPrincipalName"
    include_guests: bool = False


def is_guest(item: Mapping[str, Any]) -> bool:
    return str(item.get("userType") or "").lower() == "guest"


def user_of(item: Mapping[str, Any], rules: UserRules) -> DirectoryUser:
    """A Graph user object as a DirectoryUser; the object id is both external id and ref."""
    object_id = str(item["id"])
    email = _text(item.get(rules.email_attribute))
    if email is None and rules.email_fallback:
        email = _text(item.get(rules.email_fallback))
    return DirectoryUser(
        external_id=object_id,
        ref=object_id,
        username=_text(item.get("userPrincipalName")),
        email=email,
        name=_text(item.get("displayName")),
        disabled=item.get("accountEnabled") is False,
    )


def member_ref(item: Mapping[str, Any]) -> str | None:
    """The ref of a user or group member; devices, contacts and service principals are none."""
    kind = item.get("@odata.type")
    if kind is not None and kind not in _MEMBER_TYPES:
        return None
    return str(item["id"])


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


class DeltaMerger:
    """Collects the pages of one delta round into one ``DirectoryDelta``."""

    def __init__(self, rules: UserRules, *, known_guests: frozenset[str] = frozenset()) -> None:
        self.rules = rules
        self._users: dict[str, DirectoryUser] = {}
        self._deleted_users: set[str] = set()
        #: the guests left out: known from earlier reads, and seen in this round
        self._guests: set[str] = set(known_guests)
        self._groups: dict[str, _GroupSlices] = {}
        self._deleted_groups: set[str] = set()
        #: users that came without some selected property; the connector fetches them whole
        self.partial: set[str] = set()
        self.objects = 0

    def add_user_page(self, items: Iterable[Mapping[str, Any]]) -> None:
        for item in items:
            self.objects += 1
            object_id = str(item["id"])
            if "@removed" in item:
                self._users.pop(object_id, None)
                self.partial.discard(object_id)
                self._guests.discard(object_id)
                self._deleted_users.add(object_id)
            elif is_guest(item) and not self.rules.include_guests:
                # left out like in a full read; if it was a member user before, it is gone now
                self._users.pop(object_id, None)
                self.partial.discard(object_id)
                self._deleted_users.add(object_id)
                self._guests.add(object_id)
            elif any(key not in item for key in USER_SELECT):
                # Graph may send only the changed properties: never guess the others
                self._users.pop(object_id, None)
                self._deleted_users.discard(object_id)
                self.partial.add(object_id)
            else:
                self._deleted_users.discard(object_id)
                self._guests.discard(object_id)
                self.partial.discard(object_id)
                self._users[object_id] = user_of(item, self.rules)

    def add_group_page(self, items: Iterable[Mapping[str, Any]]) -> None:
        for item in items:
            self.objects += 1
            object_id = str(item["id"])
            if "@removed" in item:
                self._groups.pop(object_id, None)
                self._deleted_groups.add(object_id)
                continue
            self._deleted_groups.discard(object_id)
            slices = self._groups.setdefault(object_id, _GroupSlices())
            if isinstance(name := item.get("displayName"), str) and name.strip():
                slices.name = name.strip()
            for member in item.get("members@delta") or ():
                if not isinstance(member, Mapping) or "id" not in member:
                    continue
                ref = member_ref(member)
                if ref is None:
                    continue
                if "@removed" in member:
                    slices.added.discard(ref)
                    slices.removed.add(ref)
                else:
                    slices.removed.discard(ref)
                    slices.added.add(ref)

    @property
    def guests(self) -> frozenset[str]:
        return frozenset(self._guests)

    def delta(self) -> DirectoryDelta:
        changes = []
        for object_id, slices in sorted(self._groups.items()):
            added = frozenset(slices.added - self._guests)
            changes.append(
                GroupChange(
                    external_id=object_id,
                    ref=object_id,
                    name=slices.name,
                    added_refs=added,
                    removed_refs=frozenset(slices.removed | (slices.added & self._guests)),
                )
            )
        return DirectoryDelta(
            users=tuple(self._users[i] for i in sorted(self._users)),
            deleted_user_ids=frozenset(self._deleted_users),
            deleted_group_ids=frozenset(self._deleted_groups),
            group_changes=tuple(changes),
        )


class _GroupSlices:
    __slots__ = ("added", "name", "removed")

    def __init__(self) -> None:
        self.name: str | None = None
        self.added: set[str] = set()
        self.removed: set[str] = set()
