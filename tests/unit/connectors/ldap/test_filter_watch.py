"""Which groups a filter depends on through memberOf, read from the filter text alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dirsync.connectors.ldap.filter_watch import Watch, check, stamped, watch_of
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.errors import CursorExpired
from dirsync.model import Cursor

ACCESS = "cn=dirsync-users,ou=Roles,dc=acme,dc=example"


def _settings(tmp_path: Path, **filters: Any) -> LdapSourceSettings:
    data = {"type": "ldap", "url": "ldap://127.0.0.1", "base_dn": "dc=acme,dc=example", **filters}
    return LdapSourceSettings.model_validate(data, context={"base_dir": tmp_path})


def test_a_filter_without_member_of_needs_no_watch(tmp_path: Path) -> None:
    watch = watch_of(_settings(tmp_path, user_filter="(!(employeeType=contractor))"))
    assert not watch.needed


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("user_filter", f"(memberOf={ACCESS})"),
        ("user_filter", f"(&(mail=*)(|(MEMBEROF={ACCESS})(memberOf=cn=b,dc=acme,dc=example)))"),
        ("group_filter", f"(!(isMemberOf={ACCESS}))"),
        ("disabled_filter", f"(memberOf={ACCESS})"),
    ],
)
def test_every_group_a_filter_names_through_member_of_is_watched(
    tmp_path: Path, key: str, text: str
) -> None:
    watch = watch_of(_settings(tmp_path, **{key: text}))
    assert watch.blind is None and ACCESS in watch.dns


def test_an_escaped_dn_in_a_filter_is_watched_as_the_dn_it_names(tmp_path: Path) -> None:
    watch = watch_of(_settings(tmp_path, user_filter="(memberOf=cn=R\\26D,dc=acme,dc=example)"))
    assert watch.dns == ("cn=R&D,dc=acme,dc=example",)


@pytest.mark.parametrize(
    "text",
    ["(memberOf=*)", "(memberOf=cn=dirsync*)", f"(memberOf:1.2.840.113556.1.4.1941:={ACCESS})"],
    ids=["presence", "substring", "in-chain"],
)
def test_a_member_of_test_that_names_no_single_group_cannot_be_watched(
    tmp_path: Path, text: str
) -> None:
    watch = watch_of(_settings(tmp_path, user_filter=text))
    assert watch.needed and watch.blind is not None and "user_filter" in watch.blind


def _cursor(**data: str) -> Cursor:
    return Cursor(kind="ldap-syncrepl", value=json.dumps({"s": "x", **data}))


def test_a_cursor_is_trusted_only_with_the_digest_the_groups_have_now() -> None:
    watch = Watch(dns=(ACCESS,))
    cursor = stamped(_cursor(), "digest-1")
    assert cursor is not None
    check(watch, "digest-1", cursor)  # the same: no exception
    with pytest.raises(CursorExpired, match=ACCESS):
        check(watch, "digest-2", cursor)
    with pytest.raises(CursorExpired):
        check(watch, "digest-1", _cursor())  # taken before the filter named a group


def test_a_blind_watch_never_trusts_a_cursor() -> None:
    with pytest.raises(CursorExpired, match="reading in full"):
        check(Watch(blind="user_filter tests memberOf"), None, _cursor())
