"""Collections from the config and the group access that reaches them. Pure.

Each ``[[organization.collection]]`` names directory groups by name or by external id. The
collection is created once (matched by its external id afterwards) and its group access is kept
exactly as the config says, for the groups the directory has. Collections the config did not
create are never touched; collections dropped from the config are left as they are (they hold
vault items).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dirsync.organization import (
    CollectionAccess,
    DesiredOrganization,
    OrganizationState,
    OrgCollection,
)
from dirsync.plan import CollectionCreate, CollectionUpdate, GroupAccess
from dirsync.rules import CollectionRule


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownGroup:
    """A group that exists in the organization once the plan is applied."""

    external_id: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionsPlan:
    create: tuple[CollectionCreate, ...] = ()
    update: tuple[CollectionUpdate, ...] = ()
    warnings: tuple[str, ...] = ()


def known_groups(
    desired: DesiredOrganization, current: OrganizationState, *, synced: bool
) -> tuple[KnownGroup, ...]:
    """The groups a collection can name: the directory's when groups are synced, else the
    organization's own (``groups = false``: the sync does not create any)."""
    if synced:
        return tuple(KnownGroup(external_id=g.external_id, name=g.name) for g in desired.groups)
    return tuple(
        KnownGroup(external_id=g.external_id, name=g.name)
        for g in current.groups
        if g.external_id is not None
    )


def plan_collections(
    rules: Iterable[CollectionRule],
    groups: Iterable[KnownGroup],
    current: Iterable[OrgCollection],
) -> CollectionsPlan:
    """Creates and updates that bring the configured collections and their access in step."""
    known = sorted(groups, key=lambda g: (g.name, g.external_id))
    by_id = {g.external_id: g for g in known}
    existing = {c.external_id: c for c in current if c.external_id is not None}
    creates: list[CollectionCreate] = []
    updates: list[CollectionUpdate] = []
    warnings: list[str] = []
    for rule in rules:
        access = _wanted_access(rule, known, warnings)
        found = existing.get(rule.external_id)
        if found is None:
            creates.append(
                CollectionCreate(external_id=rule.external_id, name=rule.name, access=access)
            )
            continue
        if not found.managed:
            warnings.append(
                f"collection {rule.name!r}: external id {rule.external_id!r} belongs to the "
                f"collection {found.name!r}, which was not created by the config; left alone"
            )
            continue
        have = _planned(found.access, by_id)
        if found.name != rule.name or set(have) != set(access):
            updates.append(
                CollectionUpdate(
                    collection_id=found.id,
                    external_id=rule.external_id,
                    name=rule.name,
                    previous_name=found.name,
                    access=access,
                    previous_access=have,
                )
            )
    return CollectionsPlan(create=tuple(creates), update=tuple(updates), warnings=tuple(warnings))


def _wanted_access(
    rule: CollectionRule, known: list[KnownGroup], warnings: list[str]
) -> tuple[GroupAccess, ...]:
    wanted: dict[str, GroupAccess] = {}
    for reference in rule.groups:
        matches = [g for g in known if reference in (g.external_id, g.name)]
        if not matches:
            warnings.append(
                f"collection {rule.name!r}: the directory has no group named or with the "
                f"external id {reference!r}; it gets no access through it"
            )
        for group in matches:
            wanted[group.external_id] = GroupAccess(
                group_external_id=group.external_id,
                group_name=group.name,
                permission=rule.permission,
            )
    return tuple(sorted(wanted.values(), key=lambda a: (a.group_name, a.group_external_id)))


def _planned(
    access: frozenset[CollectionAccess], by_id: dict[str, KnownGroup]
) -> tuple[GroupAccess, ...]:
    """Stored access in the plan's terms; a group the directory no longer has is named by id."""
    planned = [
        GroupAccess(
            group_external_id=a.group_external_id,
            group_name=by_id[a.group_external_id].name
            if a.group_external_id in by_id
            else a.group_external_id,
            permission=a.permission,
        )
        for a in access
    ]
    return tuple(sorted(planned, key=lambda a: (a.group_name, a.group_external_id)))
