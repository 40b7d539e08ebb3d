"""Which changed entries a delta reads the naming groups of, given what the mirror holds."""

from __future__ import annotations

from collections.abc import Collection

from dirsync.connectors.ldap.holders import _not_held
from dirsync.model import DirectoryGroup, DirectoryUser

ANN = DirectoryUser(external_id="u-ann", ref="uid=ann,ou=people,dc=x")
BOB = DirectoryUser(external_id="u-bob", ref="uid=bob,ou=people,dc=x")
NEW = DirectoryUser(external_id="u-new", ref="uid=new,ou=people,dc=x")
STAFF = DirectoryGroup(external_id="g-staff", ref="cn=staff,ou=groups,dc=x", name="staff")


def test_only_entries_new_to_the_mirror_or_under_another_dn_are_searched_for() -> None:
    asked: list[set[str]] = []

    def held(ids: Collection[str]) -> dict[str, str]:
        asked.append(set(ids))
        mirror = {
            "u-ann": "uid=ann,ou=people,dc=x",  # same DN: its groups are as they were
            "u-bob": "uid=bob,ou=old,dc=x",  # moved: refint rewrote the groups naming it
            "g-staff": "cn=staff,ou=groups,dc=x",
        }
        return {i: mirror[i] for i in ids if i in mirror}

    assert _not_held([ANN, BOB, NEW], [STAFF], held) == {BOB.ref, NEW.ref}
    assert asked == [{"u-ann", "u-bob", "u-new", "g-staff"}]


def test_without_what_the_mirror_holds_every_changed_entry_is_searched_for() -> None:
    assert _not_held([ANN, NEW], [STAFF], None) == {ANN.ref, NEW.ref, STAFF.ref}
    assert _not_held([], [], lambda ids: {}) == set()
