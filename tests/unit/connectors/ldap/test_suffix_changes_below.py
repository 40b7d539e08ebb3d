"""The change list's entries at or below a base: the DN is the base or ends with "," + base."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dirsync.connectors.ldap.suffix_changes import SuffixChanges

RDNS = st.sampled_from(["ou=a", "ou=b", "uid=x", "cn=y\\,z", "dc=org", "cn="])
DNS = st.lists(RDNS, min_size=1, max_size=5).map(",".join)


@given(
    changed=st.lists(st.tuples(DNS, st.uuids().map(str)), max_size=20),
    bases=st.lists(DNS, max_size=5),
)
def test_below_is_the_dn_itself_or_a_suffix_after_a_comma(
    changed: list[tuple[str, str]], bases: list[str]
) -> None:
    changes = SuffixChanges(changed=tuple(changed), deleted=frozenset({"gone"}), cookie=b"c")
    for base in [*bases, *(dn for dn, _ in changed)]:
        expected = [u for dn, u in changed if dn == base or dn.endswith("," + base)]
        assert changes.below(base) == expected
    assert changes.ids == frozenset(u for _, u in changed) | {"gone"}


def test_a_list_asked_below_a_base_gives_a_list_of_its_own() -> None:
    changes = SuffixChanges(changed=(("uid=x,ou=a", "u1"),), deleted=frozenset(), cookie=b"")
    changes.below("ou=a").append("mine")
    assert changes.below("ou=a") == ["u1"]
