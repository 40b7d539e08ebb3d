"""apply_delta: explicit deletions also leave the groups that named the deleted entries."""

from __future__ import annotations

from dirsync.mapping.mirror import apply_delta, update_mirror
from dirsync.model import DirectoryDelta, DirectoryGroup, DirectoryUser, Mirror, Reading


def _user(uid: str) -> DirectoryUser:
    return DirectoryUser(external_id=uid, ref=f"cn={uid},dc=x", email=f"{uid}@x.example")


def test_a_deleted_user_leaves_the_groups_that_named_it_without_a_group_change() -> None:
    alice, bob = _user("alice"), _user("bob")
    team = DirectoryGroup(
        external_id="g1",
        ref="cn=team,dc=x",
        name="Team",
        member_refs=frozenset({alice.ref, bob.ref}),
    )
    outer = DirectoryGroup(
        external_id="g2", ref="cn=outer,dc=x", name="Outer", member_refs=frozenset({team.ref})
    )
    mirror = Mirror(users={"alice": alice, "bob": bob}, groups={"g1": team, "g2": outer})

    patched = apply_delta(
        mirror,
        DirectoryDelta(deleted_user_ids=frozenset({"bob"}), deleted_group_ids=frozenset({"g1"})),
    )

    assert set(patched.users) == {"alice"}
    assert set(patched.groups) == {"g2"}
    assert patched.groups["g2"].member_refs == frozenset()


def test_a_user_re_created_under_the_same_dn_is_in_only_the_groups_the_delta_names_it_in() -> None:
    """Deleting an entry took it out of its groups (refint, AD's link clean-up): a new entry
    under the same DN is in the groups that name it now, which the connectors read again
    with it (the groups naming a changed entry), not in the old entry's."""
    old, new = _user("old"), DirectoryUser(external_id="new", ref="cn=old,dc=x")
    team = DirectoryGroup(
        external_id="g1", ref="cn=team,dc=x", name="Team", member_refs=frozenset({old.ref})
    )
    other = DirectoryGroup(
        external_id="g2", ref="cn=other,dc=x", name="Other", member_refs=frozenset({old.ref})
    )
    mirror = Mirror(users={"old": old}, groups={"g1": team, "g2": other})

    patched = apply_delta(
        mirror, DirectoryDelta(users=(new,), groups=(other,), deleted_user_ids=frozenset({"old"}))
    )

    assert patched.groups["g1"].member_refs == frozenset()
    assert patched.groups["g2"].member_refs == {new.ref}
    assert set(patched.users) == {"new"}


def test_a_user_an_id_scan_no_longer_finds_leaves_the_groups_too() -> None:
    """modify_timestamp's id scan: absent now, so absent from its groups, and a new entry
    later created under its DN is not taken for a member of them."""
    gone, kept = _user("gone"), _user("kept")
    team = DirectoryGroup(
        external_id="g1",
        ref="cn=team,dc=x",
        name="Team",
        member_refs=frozenset({gone.ref, kept.ref}),
    )
    mirror = Mirror(users={"gone": gone, "kept": kept}, groups={"g1": team})
    scan = DirectoryDelta(present_user_ids=frozenset({"kept"}), present_group_ids=frozenset({"g1"}))

    update = update_mirror(mirror, Reading(delta=scan))

    assert update.complete is True
    assert set(update.mirror.users) == {"kept"}
    assert update.mirror.groups["g1"].member_refs == {kept.ref}
