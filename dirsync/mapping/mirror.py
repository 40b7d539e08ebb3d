"""Keeping the mirror: a complete picture of the directory, from a snapshot or a delta."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dirsync.model import (
    DirectoryDelta,
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    GroupChange,
    Mirror,
    Reading,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorUpdate:
    mirror: Mirror
    #: users the directory explicitly deleted (tombstones), as opposed to merely absent ones
    deleted_user_ids: frozenset[str]
    deleted_group_ids: frozenset[str]
    #: True when the mirror comes from a complete read, so absence means absence
    complete: bool
    warnings: tuple[str, ...] = ()


def _drop_deleted_refs(
    mirror: Mirror, delta: DirectoryDelta, vanished: frozenset[str] = frozenset()
) -> Mirror:
    """A deleted entry also leaves the groups that named it, as the directory itself does
    (AD's link clean-up, slapd's refint), even when the delta does not carry those groups.

    Also when an entry is created again under the same DN in the same delta: the directory
    dropped the old one from its groups, and a group that names the new one is in the delta
    (connectors read again the groups that name a changed entry). ``vanished`` are the ids of
    users and groups an id scan no longer found, dropped likewise."""
    gone = {mirror.users[i].ref for i in delta.deleted_user_ids | vanished if i in mirror.users}
    gone |= {mirror.groups[i].ref for i in delta.deleted_group_ids | vanished if i in mirror.groups}
    if not gone:
        return mirror
    groups = {
        gid: replace(g, member_refs=g.member_refs - gone) if g.member_refs & gone else g
        for gid, g in mirror.groups.items()
    }
    return Mirror(users=mirror.users, groups=groups)


def apply_delta(
    mirror: Mirror, delta: DirectoryDelta, vanished: frozenset[str] = frozenset()
) -> Mirror:
    """The mirror patched with a delta; ``vanished``: ids an id scan no longer found, whose
    references leave the groups as a deleted entry's do."""
    mirror = _drop_deleted_refs(mirror, delta, vanished)
    users = dict(mirror.users)
    groups = dict(mirror.groups)
    for user_id in delta.deleted_user_ids:
        users.pop(user_id, None)
    for group_id in delta.deleted_group_ids:
        groups.pop(group_id, None)
    users.update((u.external_id, u) for u in delta.users)
    groups.update((g.external_id, g) for g in delta.groups)
    for change in delta.group_changes:
        if change.external_id in delta.deleted_group_ids:
            continue
        groups[change.external_id] = _changed_group(groups.get(change.external_id), change)
    return Mirror(users=users, groups=groups)


def _changed_group(group: DirectoryGroup | None, change: GroupChange) -> DirectoryGroup:
    """A group with a partial change applied; an unknown group is named by its id until named."""
    members = group.member_refs if group is not None else frozenset()
    return DirectoryGroup(
        external_id=change.external_id,
        ref=group.ref if group is not None else change.ref,
        name=change.name or (group.name if group is not None else change.external_id),
        member_refs=(members - change.removed_refs) | change.added_refs,
        idp_id=group.idp_id if group is not None else None,
    )


def mirror_of(snapshot: DirectorySnapshot) -> tuple[Mirror, tuple[str, ...]]:
    """The mirror of a complete read, and a warning for each external id seen twice.

    An external id is unique in a sane directory; twice means a misconfigured
    ``external_id_attribute``. The first entry in ref order keeps it, deterministically.
    """
    warnings: list[str] = []
    users: dict[str, DirectoryUser] = {}
    for user in sorted(snapshot.users, key=lambda u: u.ref):
        if (kept := users.setdefault(user.external_id, user)) is not user:
            warnings.append(
                f"external id {user.external_id} is on two users, {kept.ref} and {user.ref}; "
                "the second is ignored (is external_id_attribute unique?)"
            )
    groups: dict[str, DirectoryGroup] = {}
    for group in sorted(snapshot.groups, key=lambda g: g.ref):
        if (kept_group := groups.setdefault(group.external_id, group)) is not group:
            warnings.append(
                f"external id {group.external_id} is on two groups, {kept_group.ref} and "
                f"{group.ref}; the second is ignored"
            )
    return Mirror(users=users, groups=groups), tuple(warnings)


def update_mirror(mirror: Mirror, reading: Reading) -> MirrorUpdate:
    if reading.snapshot is not None:
        complete, warnings = mirror_of(reading.snapshot)
        return MirrorUpdate(
            mirror=complete,
            deleted_user_ids=frozenset(),
            deleted_group_ids=frozenset(),
            complete=True,
            warnings=warnings,
        )
    assert reading.delta is not None
    delta = reading.delta
    if delta.present_user_ids is None or delta.present_group_ids is None:
        return MirrorUpdate(
            mirror=apply_delta(mirror, delta),
            deleted_user_ids=delta.deleted_user_ids,
            deleted_group_ids=delta.deleted_group_ids,
            complete=False,
        )
    # an id scan as complete as a full read: what it did not see is absent
    kept_users = delta.present_user_ids | {u.external_id for u in delta.users}
    kept_groups = delta.present_group_ids | {g.external_id for g in delta.groups}
    vanished = frozenset(i for i in mirror.users if i not in kept_users)
    vanished |= frozenset(i for i in mirror.groups if i not in kept_groups)
    patched = apply_delta(mirror, delta, vanished)
    patched = Mirror(
        users={k: u for k, u in patched.users.items() if k in kept_users},
        groups={k: g for k, g in patched.groups.items() if k in kept_groups},
    )
    return MirrorUpdate(
        mirror=patched,
        deleted_user_ids=delta.deleted_user_ids,
        deleted_group_ids=delta.deleted_group_ids,
        complete=True,
    )
