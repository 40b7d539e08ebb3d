"""Keeping the mirror: a complete picture of the directory, from a snapshot or a delta."""

from __future__ import annotations

from dataclasses import dataclass

from dirsync.model import DirectoryDelta, Mirror, Reading


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorUpdate:
    mirror: Mirror
    #: users the directory explicitly deleted (tombstones), as opposed to merely absent ones
    deleted_user_ids: frozenset[str]
    deleted_group_ids: frozenset[str]
    #: True when the mirror comes from a complete read, so absence means absence
    complete: bool


def apply_delta(mirror: Mirror, delta: DirectoryDelta) -> Mirror:
    users = dict(mirror.users)
    groups = dict(mirror.groups)
    for user_id in delta.deleted_user_ids:
        users.pop(user_id, None)
    for group_id in delta.deleted_group_ids:
        groups.pop(group_id, None)
    users.update((u.external_id, u) for u in delta.users)
    groups.update((g.external_id, g) for g in delta.groups)
    return Mirror(users=users, groups=groups)


def update_mirror(mirror: Mirror, reading: Reading) -> MirrorUpdate:
    if reading.snapshot is not None:
        return MirrorUpdate(
            mirror=Mirror.from_snapshot(reading.snapshot),
            deleted_user_ids=frozenset(),
            deleted_group_ids=frozenset(),
            complete=True,
        )
    assert reading.delta is not None
    return MirrorUpdate(
        mirror=apply_delta(mirror, reading.delta),
        deleted_user_ids=reading.delta.deleted_user_ids,
        deleted_group_ids=reading.delta.deleted_group_ids,
        complete=False,
    )
