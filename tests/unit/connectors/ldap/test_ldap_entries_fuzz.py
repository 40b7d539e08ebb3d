"""Raw directory entries as a server may send them, turned into users and groups.

Missing and multi-valued attributes, bytes that are not UTF-8, DNs that do not parse, member
values with every escape: the connector's conversion and then the whole pure pipeline give
users, groups, a plan and warnings, never an exception.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.connectors.ldap.wire import Attributes
from dirsync.errors import PlanRefused
from dirsync.mapping.pipeline import plan_run
from dirsync.model import DirectorySnapshot, Mirror, Reading
from dirsync.organization import OrganizationState
from dirsync.rules import SyncRules

SPECIALS = ',+"\\<>;=#* ()\x00é'
dn_values = st.text(alphabet=st.sampled_from(list(SPECIALS) + list("abcAB12")), max_size=12)
raw_text = st.one_of(
    dn_values.map(lambda v: v.encode("utf-8")),
    st.binary(max_size=20),  # anything, non-UTF-8 included
    st.just(b"\xff\xfe\x00bad"),
    st.text(max_size=300).map(lambda v: v.encode("utf-8")),
)


def escaped(value: str) -> str:
    return "".join("\\" + c if c in ',+"\\<>;=#' else c for c in value) or "x"


dns = st.one_of(
    dn_values.map(lambda v: f"uid={escaped(v)},ou=People,dc=example,dc=org"),
    dn_values.map(lambda v: f"cn={escaped(v)},ou=Groups,dc=example,dc=org"),
    st.binary(max_size=30).map(lambda b: b.decode("latin-1")),  # not a DN at all
    st.just("uid=a\\2Ab,ou=People,dc=example,dc=org"),
)


@st.composite
def raw_entries(draw: st.DrawFn, *, group: bool) -> dict[str, object]:
    attributes = Attributes()
    optional = ["entryUUID", "cn", "member"] if group else ["entryUUID", "uid", "mail", "cn"]
    if not group:
        optional.append("displayName")
    for name in optional:
        if draw(st.booleans()) or (name == "entryUUID" and draw(st.booleans())):
            count = draw(st.integers(0, 60 if name == "member" else 3))
            if name == "member":
                attributes[name.lower()] = [
                    d.encode("utf-8", "surrogatepass") for d in draw(st.lists(dns, max_size=count))
                ]
            elif name == "entryUUID":
                attributes[name.lower()] = [
                    draw(st.sampled_from([b"u1", b"u2", b"g1", b"\xff", b""])) for _ in range(count)
                ]
            else:
                attributes[name.lower()] = [draw(raw_text) for _ in range(count)]
    dn = draw(dns)
    return {"raw_dn": dn.encode("utf-8", "surrogatepass"), "dn": dn, "raw_attributes": attributes}


def connector(tmp_path: Path) -> LdapConnector:
    settings = LdapSourceSettings.model_validate(
        {
            "type": "ldap",
            "url": "ldaps://127.0.0.1:636",
            "base_dn": "dc=example,dc=org",
            "email_suffix": "@example.org",
        },
        context={"base_dir": tmp_path},
    )
    return LdapConnector(settings, organization="acme")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(raw_entries(group=False), max_size=12),
    st.lists(raw_entries(group=True), max_size=6),
)
def test_any_raw_entries_become_users_groups_and_a_plan_never_an_exception(
    users: list[dict[str, object]], groups: list[dict[str, object]]
) -> None:
    source = connector(Path("."))
    # the conversion methods use only settings and warnings, not the session
    reader = source.reader(session=None, progress=None)  # type: ignore[arg-type]
    read_users = source.users_from(reader, users, disabled_ids=set())
    read_groups = source.groups_from(reader, groups)
    assert all(u.external_id and u.ref is not None for u in read_users)
    snapshot = DirectorySnapshot(users=tuple(read_users), groups=tuple(read_groups))
    with contextlib.suppress(PlanRefused):
        plan_run(
            mirror=Mirror(),
            reading=Reading(snapshot=snapshot, warnings=tuple(reader.warnings)),
            current=OrganizationState(name="acme"),
            rules=SyncRules(),
        )


def test_bad_bytes_and_extra_values_are_warnings_and_the_entry_still_counts() -> None:
    source = connector(Path("."))
    reader = source.reader(session=None, progress=None)  # type: ignore[arg-type]
    attributes = Attributes()
    attributes["entryuuid"] = [b"u1", b"u-extra"]
    attributes["uid"] = [b"alice"]
    attributes["mail"] = [b"al\xffice@example.org", b"second@example.org"]
    attributes["displayname"] = [b"A" * 100_000]
    dn = "uid=alice,ou=People,dc=example,dc=org"
    (user,) = source.users_from(
        reader, [{"raw_dn": dn.encode(), "dn": dn, "raw_attributes": attributes}], set()
    )
    assert user.external_id == "u1" and user.username == "alice"
    assert user.email is not None and "\ufffd" in user.email
    assert any("not valid UTF-8" in w for w in reader.warnings)
    group_attributes = Attributes()
    group_attributes["entryuuid"] = [b"g1"]
    group_attributes["cn"] = [b"Staff"]
    group_attributes["member"] = [dn.encode(), b"not a dn", b"\xff\xfe"]
    gdn = "cn=Staff,ou=Groups,dc=example,dc=org"
    (group,) = source.groups_from(
        reader, [{"raw_dn": gdn.encode(), "dn": gdn, "raw_attributes": group_attributes}]
    )
    assert group.member_refs == frozenset({user.ref})
    assert any("not a DN" in w for w in reader.warnings)
    # an address with a byte that was not UTF-8 is not invited as a mangled address
    planned = plan_run(
        mirror=Mirror(),
        reading=Reading(snapshot=DirectorySnapshot(users=(user,), groups=(group,))),
        current=OrganizationState(name="acme"),
        rules=SyncRules(),
    )
    assert planned.plan.invite == () and any("invalid email" in w for w in planned.warnings)
