"""Small builders for tests of the pure core, and a pure model of applying a plan.

``apply_plan`` mirrors what the store does with a plan, on plain values, so that pure tests can
check properties such as idempotence without a database; the store's own tests check that the
store does the same.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import count

from dirsync.mapping.mirror import mirror_of
from dirsync.model import DirectoryGroup, DirectorySnapshot, DirectoryUser, Mirror, Reading
from dirsync.organization import (
    CollectionAccess,
    Member,
    MemberStatus,
    OrganizationState,
    OrgCollection,
    OrgGroup,
    Permission,
    Role,
)
from dirsync.plan import GroupAccess, Plan
from dirsync.rules import CollectionRule

_ids = count(1000)


def user(
    uid: str,
    *,
    email: str | None = "",
    name: str | None = None,
    disabled: bool = False,
    external_id: str | None = None,
) -> DirectoryUser:
    """A directory user ``uid``; email defaults to ``<uid>@example.org``."""
    return DirectoryUser(
        external_id=external_id or f"id-{uid}",
        ref=f"uid={uid},ou=people,dc=example,dc=org",
        username=uid,
        email=f"{uid}@example.org" if email == "" else email,
        name=name if name is not None else uid.title(),
        disabled=disabled,
    )


def group(
    name: str, *members: DirectoryUser | DirectoryGroup, external_id: str | None = None
) -> DirectoryGroup:
    return DirectoryGroup(
        external_id=external_id or f"gid-{name}",
        ref=f"cn={name.lower()},ou=groups,dc=example,dc=org",
        name=name,
        member_refs=frozenset(m.ref for m in members),
    )


def reading(*entries: DirectoryUser | DirectoryGroup) -> Reading:
    return Reading(
        snapshot=DirectorySnapshot(
            users=tuple(e for e in entries if isinstance(e, DirectoryUser)),
            groups=tuple(e for e in entries if isinstance(e, DirectoryGroup)),
        ),
        entries_read=len(entries),
    )


def mirror(*entries: DirectoryUser | DirectoryGroup) -> Mirror:
    snapshot = reading(*entries).snapshot
    assert snapshot is not None
    return mirror_of(snapshot)[0]


def member(
    email: str,
    *,
    external_id: str | None = None,
    status: MemberStatus = MemberStatus.CONFIRMED,
    role: Role = Role.USER,
    name: str | None = None,
    **extra: object,
) -> Member:
    return Member(
        id=next(_ids),
        email=email,
        external_id=external_id,
        name=name,
        status=status,
        role=role,
        **extra,  # type: ignore[arg-type]  # restore_status / revoked_reason for lifecycle tests
    )


def org(
    *members: Member,
    groups: tuple[OrgGroup, ...] = (),
    collections: tuple[OrgCollection, ...] = (),
) -> OrganizationState:
    return OrganizationState(name="acme", members=members, groups=groups, collections=collections)


def collection_rule(
    name: str, *groups: str, permission: Permission = Permission.READ, external_id: str = ""
) -> CollectionRule:
    """A configured collection; its external id defaults to ``col-<name>``."""
    return CollectionRule(
        name=name,
        external_id=external_id or f"col-{name.lower()}",
        groups=groups,
        permission=permission,
    )


def collection(
    name: str,
    *access: tuple[str, Permission],
    external_id: str = "",
    managed: bool = True,
) -> OrgCollection:
    """A stored collection; ``access`` pairs a group external id with a permission."""
    return OrgCollection(
        id=next(_ids),
        external_id=external_id or f"col-{name.lower()}",
        name=name,
        managed=managed,
        access=frozenset(CollectionAccess(group_external_id=g, permission=p) for g, p in access),
    )


def apply_plan(state: OrganizationState, plan: Plan) -> OrganizationState:
    """What the store does with a plan, on values."""
    members = {m.id: m for m in state.members}
    for invite in plan.invite:
        new_id = next(_ids)
        members[new_id] = Member(
            id=new_id,
            email=invite.email,
            external_id=invite.external_id,
            name=invite.name,
            status=MemberStatus.INVITED,
        )
    for update in plan.update:
        members[update.member_id] = replace(
            members[update.member_id],
            email=update.email,
            name=update.name,
            external_id=update.external_id,
        )
    for revoke in plan.revoke:
        members[revoke.member_id] = replace(
            members[revoke.member_id],
            status=MemberStatus.REVOKED,
            restore_status=revoke.previous_status,
            revoked_reason=revoke.reason,
        )
    for restore in plan.restore:
        members[restore.member_id] = replace(
            members[restore.member_id],
            status=restore.to_status,
            restore_status=None,
            revoked_reason=None,
        )
    removed = {r.external_id for r in plan.remove}
    for remove in plan.remove:
        del members[remove.member_id]

    groups = {g.external_id: g for g in state.groups}
    for create in plan.create_groups:
        groups[create.external_id] = OrgGroup(
            id=next(_ids),
            external_id=create.external_id,
            name=create.name,
            member_external_ids=create.member_external_ids,
        )
    for change in plan.update_groups:
        old = groups[change.external_id]
        groups[change.external_id] = replace(
            old,
            name=change.name,
            member_external_ids=(old.member_external_ids | change.add_member_ids)
            - change.remove_member_ids,
        )
    for delete in plan.delete_groups:
        groups.pop(delete.external_id, None)
    groups = {
        k: replace(g, member_external_ids=g.member_external_ids - removed)
        for k, g in groups.items()
    }
    for again in plan.reinvite:
        members[again.member_id] = replace(members[again.member_id], invited_at=None)
    return replace(
        state,
        members=tuple(members.values()),
        groups=tuple(groups.values()),
        collections=_apply_collections(state.collections, plan, set(groups)),
    )


def _apply_collections(
    current: tuple[OrgCollection, ...], plan: Plan, groups: set[str | None]
) -> tuple[OrgCollection, ...]:
    """Access to a group that does not exist is dropped, as the store's foreign key does."""

    def access(entries: tuple[GroupAccess, ...]) -> frozenset[CollectionAccess]:
        return frozenset(
            CollectionAccess(group_external_id=a.group_external_id, permission=a.permission)
            for a in entries
            if a.group_external_id in groups
        )

    collections = {c.external_id: c for c in current}
    for create in plan.create_collections:
        collections[create.external_id] = OrgCollection(
            id=next(_ids),
            external_id=create.external_id,
            name=create.name,
            access=access(create.access),
        )
    for change in plan.update_collections:
        collections[change.external_id] = replace(
            collections[change.external_id], name=change.name, access=access(change.access)
        )
    return tuple(collections.values())
