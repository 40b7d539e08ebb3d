"""One tenant of the local Graph (``graph_fake.py``): its users, groups, change log and deltas.

Every change bumps the tenant's sequence number and is logged per object (and per group
member), so the changes since any delta token can be computed: the current state of each
changed user, ``@removed`` for deleted ones (reason ``changed`` for a soft delete, ``deleted``
for a hard one), and for each changed group its new name and ``members@delta`` additions and
removals. Not thread-safe by itself: the server holds its lock around every call.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"


def new_id() -> str:
    """A fresh object id in Graph's GUID form."""
    return str(uuid.uuid4())


@dataclass
class App:
    """An app registration: a client secret, or a certificate (PEM), and its Graph permission."""

    client_id: str
    secret: str | None = None
    secret_expired: bool = False
    certificate_pem: bytes | None = None
    permission: bool = True


@dataclass
class Paging:
    """How the server cuts answers into pages."""

    max_page: int = 100
    empty_pages: bool = False  # an empty page with a nextLink before every page
    replay: bool = False  # each page repeats the last object of the one before
    member_slice: int = 0  # >0: a group's members@delta come in slices of this size
    partial_users: bool = False  # changed users in a delta come without accountEnabled/userType


@dataclass
class Tenant:
    tenant_id: str
    apps: dict[str, App] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    soft_deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    paging: Paging = field(default_factory=Paging)
    seq: int = 0
    kinds: dict[str, str] = field(default_factory=dict)
    user_log: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    group_log: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    member_log: dict[str, dict[str, int]] = field(default_factory=dict)
    #: soft-deleted users' group memberships, given back on restore
    _restorable: dict[str, set[str]] = field(default_factory=dict)

    # -- mutations (the control API) --------------------------------------------------------

    def _tick(self) -> int:
        self.seq += 1
        return self.seq

    def add_user(
        self,
        *,
        display_name: str,
        mail: str | None = None,
        upn: str | None = None,
        enabled: bool = True,
        guest: bool = False,
        object_id: str | None = None,
    ) -> str:
        object_id = object_id or new_id()
        self.users[object_id] = {
            "id": object_id,
            "displayName": display_name,
            "mail": mail,
            "userPrincipalName": upn or f"u{next(_ids)}@{self.tenant_id}.example",
            "accountEnabled": enabled,
            "userType": "Guest" if guest else "Member",
        }
        self.kinds[object_id] = USER_TYPE
        self.user_log[object_id] = (self._tick(), None)
        return object_id

    def update_user(self, object_id: str, **changes: Any) -> None:
        self.users[object_id].update(changes)
        self.user_log[object_id] = (self._tick(), None)

    def soft_delete_user(self, object_id: str) -> None:
        self.soft_deleted[object_id] = self.users.pop(object_id)
        self._restorable[object_id] = self._drop_memberships(object_id)
        self.user_log[object_id] = (self._tick(), "changed")

    def restore_user(self, object_id: str) -> None:
        self.users[object_id] = self.soft_deleted.pop(object_id)
        self.user_log[object_id] = (self._tick(), None)
        for gid in self._restorable.pop(object_id, set()):
            if gid in self.groups:
                self.add_member(gid, object_id)

    def hard_delete_user(self, object_id: str) -> None:
        self.users.pop(object_id, None)
        self.soft_deleted.pop(object_id, None)
        self._restorable.pop(object_id, None)
        self._drop_memberships(object_id)
        self.user_log[object_id] = (self._tick(), "deleted")

    def add_group(
        self, *, display_name: str, members: tuple[str, ...] = (), object_id: str | None = None
    ) -> str:
        object_id = object_id or new_id()
        self.groups[object_id] = {"id": object_id, "displayName": display_name}
        self.kinds[object_id] = GROUP_TYPE
        self.members[object_id] = set()
        self.group_log[object_id] = (self._tick(), None)
        for member in members:
            self.add_member(object_id, member)
        return object_id

    def rename_group(self, object_id: str, display_name: str) -> None:
        self.groups[object_id]["displayName"] = display_name
        self.group_log[object_id] = (self._tick(), None)

    def delete_group(self, object_id: str) -> None:
        del self.groups[object_id]
        del self.members[object_id]
        self._drop_memberships(object_id)
        self.group_log[object_id] = (self._tick(), "deleted")

    def add_member(self, group_id: str, member_id: str) -> None:
        self.members[group_id].add(member_id)
        self.member_log.setdefault(group_id, {})[member_id] = self._tick()

    def remove_member(self, group_id: str, member_id: str) -> None:
        self.members[group_id].discard(member_id)
        self.member_log.setdefault(group_id, {})[member_id] = self._tick()

    def _drop_memberships(self, member_id: str) -> set[str]:
        dropped = {gid for gid, members in self.members.items() if member_id in members}
        for gid in dropped:
            self.remove_member(gid, member_id)
        return dropped

    # -- reads ------------------------------------------------------------------------------

    def member_items(self, group_id: str) -> list[dict[str, Any]]:
        return [{"@odata.type": self.kinds[m], "id": m} for m in sorted(self.members[group_id])]

    def user_changes(self, since: int | None, select: list[str]) -> list[dict[str, Any]]:
        if since is None:
            return [_select(self.users[i], select) for i in sorted(self.users)]
        out = []
        for object_id, (seq, reason) in sorted(self.user_log.items()):
            if seq <= since:
                continue
            if object_id in self.users:
                item = _select(self.users[object_id], select)
                if self.paging.partial_users:
                    item.pop("accountEnabled", None)
                    item.pop("userType", None)
                out.append(item)
            else:
                out.append({"id": object_id, "@removed": {"reason": reason or "deleted"}})
        return out

    def group_changes(self, since: int | None, with_members: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if since is None:
            for gid in sorted(self.groups):
                whole: dict[str, Any] = dict(self.groups[gid])
                if with_members:
                    whole["members@delta"] = self.member_items(gid)
                out.append(whole)
            return out
        touched = {g for g, (seq, _) in self.group_log.items() if seq > since}
        if with_members:
            touched |= {
                g for g, log in self.member_log.items() if any(s > since for s in log.values())
            }
        for gid in sorted(touched):
            if gid not in self.groups:
                reason = self.group_log.get(gid, (0, "deleted"))[1] or "deleted"
                out.append({"id": gid, "@removed": {"reason": reason}})
                continue
            item: dict[str, Any] = {"id": gid}
            if self.group_log[gid][0] > since:
                item["displayName"] = self.groups[gid]["displayName"]
            if with_members:
                item["members@delta"] = [
                    {"@odata.type": self.kinds.get(m, USER_TYPE), "id": m}
                    if m in self.members[gid]
                    else {
                        "@odata.type": self.kinds.get(m, USER_TYPE),
                        "id": m,
                        "@removed": {"reason": "deleted"},
                    }
                    for m, seq in sorted(self.member_log.get(gid, {}).items())
                    if seq > since
                ]
            out.append(item)
        return out


def _select(item: dict[str, Any], select: list[str]) -> dict[str, Any]:
    if not select:
        return dict(item)
    return {k: item.get(k) for k in ["id", *select] if k in item}


def slice_members(items: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """Split each group's members@delta into items of ``size`` members (Graph does this)."""
    if size <= 0:
        return items
    out = []
    for item in items:
        members = item.get("members@delta")
        if not members or len(members) <= size:
            out.append(item)
            continue
        for start in range(0, len(members), size):
            part = {"id": item["id"], "members@delta": members[start : start + size]}
            if start == 0 and "displayName" in item:
                part["displayName"] = item["displayName"]
            out.append(part)
    return out


def paginate(items: list[dict[str, Any]], size: int, paging: Paging) -> list[list[dict[str, Any]]]:
    pages = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
    if paging.replay:
        pages = [pages[0]] + [
            ([pages[i - 1][-1]] if pages[i - 1] else []) + pages[i] for i in range(1, len(pages))
        ]
    if paging.empty_pages:
        pages = [p for page in pages for p in ([], page)]
    return pages
