"""From the mirror to the desired organization: emails, duplicates, flattened groups, warnings."""

from __future__ import annotations

import re
from operator import attrgetter

from dirsync.mapping.groups import flatten_groups
from dirsync.model import USERNAME_REF_PREFIX, DirectoryUser, Mirror, username_ref
from dirsync.organization import DesiredGroup, DesiredOrganization, DesiredUser

# Deliberately loose: the directory is the authority on addresses; this only keeps out what
# cannot be an address at all (nothing before or after the @, spaces, several @).
#: one @, no white space, and no U+FFFD (a byte that was not UTF-8, replaced while decoding)
_EMAIL = re.compile(r"^[^@\s\ufffd]+@[^@\s\ufffd]+$")
_MAX_UNRESOLVED_SHOWN = 3
_EXTERNAL_ID = attrgetter("external_id")


def normalize_email(raw: str | None) -> str | None:
    if raw is None:
        return None
    email = raw.strip().lower()
    # an address already in its normal form stays the same object: lower() always copies,
    # and 100,000 copies are ~7 MB at a run's peak of memory
    return (raw if email == raw else email) or None


def describe(user: DirectoryUser) -> str:
    """How a warning names a directory user: its user name or ref, and its external id."""
    return f"{user.username or user.ref} ({user.external_id})"


def desired_organization(mirror: Mirror, *, linked_ids: frozenset[str]) -> DesiredOrganization:
    """The organization the directory asks for.

    ``linked_ids`` are the external ids already linked to members: when several directory users
    share an email, the one already linked keeps it; the others are skipped with a warning.
    """
    warnings: list[str] = []
    skipped: set[str] = set()
    # the first holder of each address, and the list of all holders only for the few shared
    # ones (a list per address was a sizeable part of planning at 100,000 users)
    first: dict[str, DirectoryUser] = {}
    shared: dict[str, list[DirectoryUser]] = {}
    for user in sorted(mirror.users.values(), key=_EXTERNAL_ID):
        email = normalize_email(user.email)
        if email is None:
            warnings.append(f"user {describe(user)} has no email address; not synced")
            skipped.add(user.external_id)
        elif not _EMAIL.match(email):
            warnings.append(f"user {describe(user)} has an invalid email {email!r}; not synced")
            skipped.add(user.external_id)
        elif (holder := first.setdefault(email, user)) is not user:
            shared.setdefault(email, [holder]).append(user)

    users: list[DesiredUser] = []
    for email in sorted(first):
        keeper: DirectoryUser | None = first[email]
        if (holders := shared.get(email)) is not None:
            keeper = _keeper(email, holders, linked_ids, warnings)
            skipped.update(u.external_id for u in holders if u is not keeper)
        if keeper is not None:
            users.append(
                DesiredUser(
                    external_id=keeper.external_id,
                    email=email,
                    name=keeper.name,
                    disabled=keeper.disabled,
                )
            )

    groups = _desired_groups(mirror, users, warnings)
    return DesiredOrganization(
        users=tuple(users),
        groups=groups,
        skipped_user_ids=frozenset(skipped),
        warnings=tuple(warnings),
    )


def _keeper(
    email: str, holders: list[DirectoryUser], linked_ids: frozenset[str], warnings: list[str]
) -> DirectoryUser | None:
    names = " and ".join(describe(u) for u in holders)
    linked = [u for u in holders if u.external_id in linked_ids]
    if len(linked) == 1:
        warnings.append(
            f"duplicate email {email}: {names}; it stays with the linked member "
            f"{describe(linked[0])}, the others are not synced"
        )
        return linked[0]
    warnings.append(f"duplicate email {email}: {names}; none of them is synced")
    return None


def _desired_groups(
    mirror: Mirror, users: list[DesiredUser], warnings: list[str]
) -> tuple[DesiredGroup, ...]:
    enabled = {u.external_id for u in users if not u.disabled}
    user_ids_by_ref = {u.ref: u.external_id for u in mirror.users.values()}
    flat = flatten_groups(mirror.groups, user_ids_by_ref)
    # user-name refs (posixGroup memberUid) only when some group uses one, which then did not
    # resolve: building them, or scanning every member ref for one, costs more at 100,000
    # users than flattening again in the rare directory that has them
    if any(r.startswith(USERNAME_REF_PREFIX) for refs in flat.unresolved.values() for r in refs):
        user_ids_by_ref.update(
            (username_ref(u.username), u.external_id) for u in mirror.users.values() if u.username
        )
        flat = flatten_groups(mirror.groups, user_ids_by_ref)
    groups = []
    for gid, group in sorted(mirror.groups.items(), key=lambda item: (item[1].name, item[0])):
        if missing := flat.unresolved.get(gid):
            shown = ", ".join(sorted(missing)[:_MAX_UNRESOLVED_SHOWN])
            more = len(missing) - _MAX_UNRESOLVED_SHOWN
            suffix = f" and {more} more" if more > 0 else ""
            warnings.append(
                f"group {group.name!r}: {len(missing)} member reference(s) match no user or "
                f"group that was read: {shown}{suffix}"
            )
        groups.append(
            DesiredGroup(
                external_id=gid,
                name=group.name,
                member_external_ids=flat.users[gid] & enabled,
            )
        )
    return tuple(groups)
