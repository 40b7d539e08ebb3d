"""The connector's fast conversion of well-formed entries agrees with its general path.

``users_from``/``groups_from`` convert a well-formed entry in one pass and resolve member
values already seen by dict lookups; anything unusual goes through ``_user``/``_group``, which
warn. Whatever the entries, both must give the same users, groups and warnings, in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.connectors.ldap.wire import Attributes
from dirsync.model import DirectoryGroup, DirectoryUser

# plain values (the fast path's), near-plain ones and hostile ones
values = st.one_of(
    st.sampled_from(["u1", "Alice", " padded ", "", "a@x.org", "g1", "Ünïcode", "x'B"]),
    st.text(alphabet=st.sampled_from(list("abAB12 ,+=\\#\"'é")), max_size=8),
)
utf8 = values.map(lambda v: v.encode("utf-8"))
raw_values = st.one_of(utf8, utf8, utf8, st.just(b"\xff\xfe"))  # mostly UTF-8
user_dns = st.one_of(
    st.sampled_from(["alice", "bob", "Carol", "d.e", "e-f"]).map(
        lambda v: f"uid={v},ou=People,dc=example,dc=org"
    ),
    values.map(lambda v: f"uid={v},ou=People,dc=example,dc=org"),  # some do not parse
    st.just("UID=Alice, OU=people,DC=Example,DC=org"),  # another spelling of one above
    st.just("uid=f#'0101'B"),  # ends like a uniqueMember optional uid
    st.just("uid=f,ou=People,dc=example,dc=org#'0101'B"),
)
group_dns = st.sampled_from(["g1", "g2", "Staff"]).map(lambda v: f"cn={v},ou=Groups,dc=x")
dn_bytes = st.one_of(user_dns.map(str.encode), group_dns.map(str.encode), st.just(b"uid=\xff,dc=x"))


def _attributes(items: dict[str, list[Any]]) -> Any:
    """Attributes as the wire decoder gives them."""
    attributes = Attributes()
    for name, got in items.items():
        attributes[name.lower()] = got
    return attributes


@st.composite
def entries(
    draw: st.DrawFn, *, group: bool, member_attribute: str = "member", pool: tuple[bytes, ...] = ()
) -> dict[str, Any]:
    """An entry; a group's member values are mostly ``pool``'s (the users' DNs, byte for byte)
    so that whole member lists resolve by the fast path's lookups."""
    names = ["entryUUID", "cn", member_attribute] if group else ["entryUUID", "uid", "mail"]
    names += [] if group else ["displayName", "cn"]
    items: dict[str, list[Any]] = {}
    for name in names:
        if draw(st.integers(0, 6)) == 0:
            continue  # mostly present, sometimes missing
        if name == member_attribute:
            seen = st.sampled_from(pool) if pool else dn_bytes
            items[name] = draw(
                st.one_of(
                    st.lists(seen, max_size=6),
                    st.lists(st.one_of(seen, dn_bytes, raw_values), max_size=6),
                )
            )
        elif name == "entryUUID":
            items[name] = [draw(st.sampled_from([b"u1", b"u2", b"g1", b"u3", b" ", b"\xff"]))]
        else:
            items[name] = draw(st.lists(raw_values, max_size=2))
        if draw(st.integers(0, 19)) == 0 and items[name]:
            items[name][0] = items[name][0].decode("latin-1")  # str, as a caller might pass
    dn = draw(user_dns if not group else st.one_of(group_dns, user_dns))
    raw_dn: Any = draw(st.sampled_from([dn.encode()] * 4 + [dn.encode() + b"\xff", None]))
    entry: dict[str, Any] = {"dn": dn, "raw_attributes": _attributes(items)}
    if raw_dn is not None:
        entry["raw_dn"] = raw_dn
    return entry


def _connector(member_attribute: str) -> LdapConnector:
    settings = LdapSourceSettings.model_validate(
        {
            "type": "ldap",
            "url": "ldaps://127.0.0.1:636",
            "base_dn": "dc=example,dc=org",
            "email_suffix": "example.org",
            "member_attribute": member_attribute,
        },
        context={"base_dir": Path(".")},
    )
    return LdapConnector(settings, organization="acme")


def _general(
    source: LdapConnector, users: list[dict[str, Any]], groups: list[dict[str, Any]]
) -> tuple[list[DirectoryUser], list[DirectoryGroup], list[str]]:
    reader = source.reader(session=None, progress=None)  # type: ignore[arg-type]
    read_users = [u for e in users if (u := source._user(reader, e, "@example.org", {"u2"}))]
    read_groups = [g for e in groups if (g := source._group(reader, e))]
    return read_users, read_groups, reader.warnings


@pytest.mark.parametrize("member_attribute", ["member", "uniqueMember", "memberUid"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_fast_conversion_gives_what_the_general_path_gives_warnings_included(
    member_attribute: str, data: st.DataObject
) -> None:
    users = data.draw(st.lists(entries(group=False), max_size=8))
    pool = tuple(e["raw_dn"] for e in users if isinstance(e.get("raw_dn"), bytes))
    groups = data.draw(
        st.lists(entries(group=True, member_attribute=member_attribute, pool=pool), max_size=6)
    )
    source = _connector(member_attribute)
    reader = source.reader(session=None, progress=None)  # type: ignore[arg-type]
    fast = (
        source.users_from(reader, users, {"u2"}),
        source.groups_from(reader, groups),
        reader.warnings,
    )
    assert fast == _general(source, users, groups)


def test_member_values_seen_as_user_dns_resolve_to_their_refs() -> None:
    source = _connector("member")
    reader = source.reader(session=None, progress=None)  # type: ignore[arg-type]
    alice = "uid=Alice,ou=People,dc=example,dc=org"
    user_attributes = _attributes({"entryUUID": [b"u1"], "uid": [b"alice"]})
    (user,) = source.users_from(
        reader, [{"raw_dn": alice.encode(), "dn": alice, "raw_attributes": user_attributes}], set()
    )
    assert user.ref == "uid=alice,ou=people,dc=example,dc=org"
    assert user.email == "alice@example.org" and not user.disabled
    members = [alice.encode(), b"UID=alice,OU=People,DC=example,DC=org", b"not a dn"]
    group_attributes = _attributes({"entryUUID": [b"g1"], "cn": [b"Staff"], "member": members})
    gdn = "cn=Staff,ou=Groups,dc=example,dc=org"
    (group,) = source.groups_from(
        reader, [{"raw_dn": gdn.encode(), "dn": gdn, "raw_attributes": group_attributes}]
    )
    assert group.member_refs == frozenset({user.ref})
    assert reader.warnings == ["group Staff: member value 'not a dn' is not a DN; skipped"]


def test_a_unique_member_with_an_optional_uid_is_stripped_even_if_a_user_has_those_bytes() -> None:
    source = _connector("uniqueMember")
    reader = source.reader(session=None, progress=None)  # type: ignore[arg-type]
    odd = "uid=f,ou=People,dc=example,dc=org#'0101'B"  # a valid DN: '#' inside a value
    user_attributes = _attributes({"entryUUID": [b"u1"], "uid": [b"f"]})
    (user,) = source.users_from(
        reader, [{"raw_dn": odd.encode(), "dn": odd, "raw_attributes": user_attributes}], set()
    )
    assert user.ref == "uid=f,ou=people,dc=example,dc=org#'0101'b"
    group_attributes = _attributes(
        {"entryUUID": [b"g1"], "cn": [b"Staff"], "uniqueMember": [odd.encode()]}
    )
    gdn = "cn=Staff,ou=Groups,dc=example,dc=org"
    (group,) = source.groups_from(
        reader, [{"raw_dn": gdn.encode(), "dn": gdn, "raw_attributes": group_attributes}]
    )
    assert group.member_refs == frozenset({"uid=f,ou=people,dc=example,dc=org"})
