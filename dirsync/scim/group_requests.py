"""The ``/Groups`` requests: reads from the stored mirror, changes pushed as one delta each.

A group's members are the ids of users or groups of the same organization; a request naming
one that does not exist is answered 400 ``invalidValue`` and changes nothing. A PATCH applies
its member changes as sets (``groups.py``), however many members the group has.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from scim2_models import Context, Group

from dirsync.config.settings import OrganizationSettings
from dirsync.model import DirectoryDelta, DirectoryGroup
from dirsync.scim import listing
from dirsync.scim.bodies import parsed, selection_of
from dirsync.scim.errors import invalid_value, not_found
from dirsync.scim.groups import GroupPatch, directory_group, group_document, parse_group_patch
from dirsync.scim.push import Pusher
from dirsync.state.sql_store import SqlStore

#: the attributes a list of groups may be filtered on
FILTERABLE = ("displayName", "externalId")


@dataclass(frozen=True, slots=True)
class GroupRequests:
    store: SqlStore
    pusher: Pusher
    organization: OrganizationSettings
    base_url: str

    @property
    def name(self) -> str:
        return self.organization.name

    def document(self, group: DirectoryGroup, selection: Any = None) -> dict[str, Any]:
        kinds = self.store.mirror_kinds(self.name, group.member_refs) if group.member_refs else {}
        return group_document(group, base_url=self.base_url, kinds=kinds, selection=selection)

    # -- reads -------------------------------------------------------------------------------

    def get(self, group_id: str, params: dict[str, Any]) -> dict[str, Any]:
        selection = selection_of(params)
        return self.document(self._stored(group_id, members=_wants_members(params)), selection)

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        selection = selection_of(params)
        query = listing.parse_list_query(params, FILTERABLE)
        total, groups = self.store.mirror_groups(
            self.name,
            name=None if query.attribute == "externalid" else query.value,
            idp_id=query.value if query.attribute == "externalid" else None,
            offset=query.offset,
            limit=query.count,
            members=_wants_members(params),
        )
        documents = [self.document(g, selection) for g in groups]
        return listing.list_response(total, query, documents)

    # -- changes -----------------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        group = directory_group(
            parsed(Group, body, Context.RESOURCE_CREATION_REQUEST), uuid.uuid4().hex
        )
        with self.pusher.lock(self.name):
            self._known_members(group.member_refs, group.external_id)
            self._push(DirectoryDelta(groups=(group,)), approvable=False)
        return self.document(group)

    def replace(self, group_id: str, body: Any) -> dict[str, Any]:
        group = directory_group(parsed(Group, body, Context.RESOURCE_REPLACEMENT_REQUEST), group_id)
        with self.pusher.lock(self.name):
            stored = self._stored(group_id)
            self._known_members(group.member_refs - stored.member_refs, group_id)
            self._push(DirectoryDelta(groups=(group,)))
        return self.document(group)

    def patch(self, group_id: str, body: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        """The group after the PATCH when the client asks for it (``attributes``, RFC 7644
        §3.5.2), else None (204): a 10,000-member group is not sent back for every change.

        A PATCH that adds and removes named members reads only those of the group's edges
        and pushes them as a partial change (``GroupChange``, as Graph's ``members@delta``
        is): its cost is what it names, however large the group. One that replaces the
        members, removes all of them or changes another attribute reads the group whole."""
        patch = parse_group_patch(body)
        with self.pusher.lock(self.name):
            if patch.by_difference:
                self._patch_members(group_id, patch)
            else:
                stored = self._stored(group_id)
                group = patch.apply(stored)
                if group != stored:
                    self._known_members(group.member_refs - stored.member_refs, group_id)
                    self._push(DirectoryDelta(groups=(group,)))
        if not params.get("attributes"):
            return None
        return self.document(self._stored(group_id), selection_of(params))

    def _patch_members(self, group_id: str, patch: GroupPatch) -> None:
        stored = self._stored(group_id, members=False)
        present = self.store.mirror_members_among(self.name, group_id, patch.named_refs)
        change = patch.change(stored, present)
        if change.added_refs or change.removed_refs:
            self._known_members(change.added_refs, group_id)
            self._push(DirectoryDelta(group_changes=(change,)))

    def delete(self, group_id: str) -> None:
        with self.pusher.lock(self.name):
            self._stored(group_id, members=False)
            self._push(DirectoryDelta(deleted_group_ids=frozenset({group_id})))

    # -- helpers -----------------------------------------------------------------------------

    def _stored(self, group_id: str, *, members: bool = True) -> DirectoryGroup:
        _, found = self.store.mirror_groups(self.name, group_id=group_id, members=members)
        if not found:
            raise not_found("Group", group_id)
        return found[0]

    def _known_members(self, added: frozenset[str], group_id: str) -> None:
        """Every member the request adds to the group must be a user or group of this
        organization, and not the group itself."""
        if group_id in added:
            raise invalid_value("a group cannot be its own member")
        if unknown := added - self.store.mirror_kinds(self.name, added).keys():
            shown = ", ".join(sorted(unknown)[:5])
            more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
            raise invalid_value(f"no user or group with id {shown}{more} in this organization")

    def _push(self, delta: DirectoryDelta, *, approvable: bool = True) -> None:
        self.pusher.push(self.name, self.organization.rules(), delta, approvable=approvable)


def _wants_members(params: dict[str, Any]) -> bool:
    """Whether the response carries members: not when they are excluded (Entra ID asks so)."""
    excluded = str(params.get("excludedAttributes") or "").lower()
    attributes = str(params.get("attributes") or "").lower()
    if "members" in {a.strip() for a in excluded.split(",")}:
        return False
    return not attributes or "members" in {a.strip() for a in attributes.split(",")}
