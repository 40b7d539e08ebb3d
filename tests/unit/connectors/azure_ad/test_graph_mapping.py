"""Pure parts of the Azure AD connector: Graph objects, delta merging, filters, config."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from dirsync.config.settings import parse_config
from dirsync.connectors.azure_ad.cursor import GraphCursor
from dirsync.connectors.azure_ad.delta import USER_SELECT, DeltaMerger, UserRules, user_of
from dirsync.connectors.azure_ad.filters import apply_filters
from dirsync.errors import ConfigError, CursorExpired
from dirsync.mapping.mirror import apply_delta
from dirsync.model import (
    Cursor,
    DirectoryDelta,
    DirectoryGroup,
    DirectoryUser,
    GroupChange,
    Mirror,
)

USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"


def graph_user(object_id: str, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": object_id,
        "displayName": object_id.title(),
        "mail": f"{object_id}@t.example",
        "userPrincipalName": f"{object_id}@t.onmicrosoft.example",
        "accountEnabled": True,
        "userType": "Member",
    }
    item.update(overrides)
    return item


def member(object_id: str, kind: str = USER, removed: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {"@odata.type": kind, "id": object_id}
    if removed:
        item["@removed"] = {"reason": "deleted"}
    return item


def test_a_graph_user_becomes_a_directory_user_keyed_by_object_id() -> None:
    user = user_of(graph_user("ann", accountEnabled=False), UserRules())
    assert user == DirectoryUser(
        external_id="ann",
        ref="ann",
        username="ann@t.onmicrosoft.example",
        email="ann@t.example",
        name="Ann",
        disabled=True,
    )


def test_the_email_falls_back_to_the_user_principal_name_unless_configured_off() -> None:
    item = graph_user("bob", mail=None)
    assert user_of(item, UserRules()).email == "bob@t.onmicrosoft.example"
    assert user_of(item, UserRules(email_fallback="")).email is None


def test_slices_of_members_delta_across_pages_are_merged_in_order() -> None:
    merger = DeltaMerger(UserRules())
    merger.add_group_page([{"id": "g", "displayName": "Team", "members@delta": [member("a")]}])
    merger.add_group_page([{"id": "x", "displayName": "Other"}])
    merger.add_group_page(
        [{"id": "g", "members@delta": [member("b"), member("c", removed=True), member("a")]}]
    )
    merger.add_group_page([{"id": "g", "members@delta": [member("b", removed=True)]}])
    merger.add_group_page([{"id": "g", "members@delta": [member("n", GROUP)]}])
    merger.add_group_page([{"id": "g", "members@delta": [member("d", "#microsoft.graph.device")]}])
    change = next(c for c in merger.delta().group_changes if c.external_id == "g")
    assert change.name == "Team"
    assert change.added_refs == {"a", "n"}
    assert change.removed_refs == {"b", "c"}


def test_replayed_and_restored_users_end_in_their_last_state() -> None:
    merger = DeltaMerger(UserRules())
    merger.add_user_page([graph_user("ann", displayName="Old"), graph_user("bob")])
    merger.add_user_page([graph_user("ann", displayName="New"), {"id": "bob", "@removed": {}}])
    merger.add_user_page([{"id": "cy", "@removed": {"reason": "changed"}}, graph_user("cy")])
    merger.add_user_page([graph_user("ann", displayName="New")])
    delta = merger.delta()
    assert {u.external_id: u.name for u in delta.users} == {"ann": "New", "cy": "Cy"}
    assert delta.deleted_user_ids == {"bob"}


def test_guests_in_a_delta_are_left_out_and_their_group_additions_too() -> None:
    merger = DeltaMerger(UserRules())
    merger.add_user_page([graph_user("gus", userType="Guest")])
    merger.add_group_page([{"id": "g", "members@delta": [member("gus"), member("ann")]}])
    delta = merger.delta()
    assert delta.users == ()
    assert delta.group_changes[0].added_refs == {"ann"}
    with_guests = DeltaMerger(UserRules(include_guests=True))
    with_guests.add_user_page([graph_user("gus", userType="Guest")])
    assert [u.external_id for u in with_guests.delta().users] == ["gus"]


def test_guests_known_from_earlier_reads_stay_out_of_groups_and_the_cursor_keeps_them() -> None:
    merger = DeltaMerger(UserRules(), known_guests=frozenset({"old-guest", "gone-guest"}))
    merger.add_user_page([{"id": "gone-guest", "@removed": {"reason": "deleted"}}])
    merger.add_user_page([graph_user("new-guest", userType="Guest"), graph_user("ann")])
    merger.add_group_page(
        [{"id": "g", "members@delta": [member("old-guest"), member("new-guest"), member("ann")]}]
    )
    assert merger.delta().group_changes[0].added_refs == {"ann"}
    assert merger.guests == {"old-guest", "new-guest"}
    cursor = GraphCursor(
        users="https://g/u", groups="https://g/g", settings="s", guests=merger.guests
    ).to_cursor()
    parsed = GraphCursor.parse(cursor, graph_url="https://g", settings="s", organization="acme")
    assert parsed.guests == {"old-guest", "new-guest"}


@pytest.mark.parametrize(
    ("value", "graph_url", "settings"),
    [
        ("not json", "https://g", "s"),
        (
            '{"users": "https://other/u", "groups": "https://other/g", "settings": "s"}',
            "https://g",
            "s",
        ),
        ('{"users": "https://g/u", "groups": "https://g/g", "settings": "old"}', "https://g", "s"),
    ],
)
def test_a_cursor_from_elsewhere_or_other_settings_means_a_full_read(
    value: str, graph_url: str, settings: str
) -> None:
    with pytest.raises(CursorExpired):
        GraphCursor.parse(
            Cursor(kind="graph_delta", value=value),
            graph_url=graph_url,
            settings=settings,
            organization="acme",
        )


def test_a_user_without_every_selected_property_is_marked_partial_not_guessed() -> None:
    merger = DeltaMerger(UserRules())
    merger.add_user_page([{"id": "ann", "displayName": "Only the name"}])
    assert merger.partial == {"ann"} and merger.delta().users == ()
    merger.add_user_page([graph_user("ann")])
    assert merger.partial == set()
    assert set(USER_SELECT) <= set(graph_user("x"))


def test_group_changes_patch_the_mirror_and_deleted_groups_stay_deleted() -> None:
    mirror = Mirror(
        groups={
            "g": DirectoryGroup(
                external_id="g", ref="g", name="Team", member_refs=frozenset({"a", "b"})
            )
        },
    )
    delta_changes = (
        GroupChange(
            external_id="g", ref="g", added_refs=frozenset({"c"}), removed_refs=frozenset({"a"})
        ),
        GroupChange(external_id="new", ref="new", name="New", added_refs=frozenset({"a"})),
        GroupChange(external_id="gone", ref="gone", name="Gone"),
    )
    patched = apply_delta(
        mirror, DirectoryDelta(group_changes=delta_changes, deleted_group_ids=frozenset({"gone"}))
    )
    assert patched.groups["g"].name == "Team"
    assert patched.groups["g"].member_refs == {"b", "c"}
    assert patched.groups["new"].member_refs == {"a"}
    assert "gone" not in patched.groups


def _people() -> tuple[list[DirectoryUser], list[DirectoryGroup]]:
    users = [DirectoryUser(external_id=i, ref=i, email=f"{i}@t.example") for i in "abcz"]
    groups = [
        DirectoryGroup(
            external_id="eng", ref="eng", name="Engineering", member_refs=frozenset({"a", "b"})
        ),
        DirectoryGroup(
            external_id="all", ref="all", name="All Staff", member_refs=frozenset({"eng", "c"})
        ),
    ]
    return users, groups


def test_an_include_group_filter_keeps_flattened_membership_of_the_named_groups() -> None:
    users, groups = _people()
    kept_users, kept_groups, warnings = apply_filters(
        users, groups, user_filter="", group_filter="include:ALL STAFF, Nope"
    )
    assert [g.name for g in kept_groups] == ["All Staff"]
    assert kept_groups[0].member_refs == {"a", "b", "c"}
    assert len(kept_users) == 4
    assert warnings == ["group_filter: no group named 'nope' in the tenant; it matches nothing"]


def test_user_filters_keep_or_drop_transitive_members() -> None:
    users, groups = _people()
    included, _, _ = apply_filters(users, groups, user_filter="include:All Staff", group_filter="")
    assert {u.external_id for u in included} == {"a", "b", "c"}
    excluded, kept_groups, _ = apply_filters(
        users, groups, user_filter="exclude:Engineering", group_filter=""
    )
    assert {u.external_id for u in excluded} == {"c", "z"}
    assert next(g for g in kept_groups if g.name == "Engineering").member_refs == frozenset()


def _azure_config(tmp_path: Path, **source: Any) -> dict[str, Any]:
    data = {"type": "azure_ad", "tenant": "contoso", "client_id": "app", "client_secret": "s"}
    data.update(source)
    return {"organization": [{"name": "acme", "source": data}]}


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"authority": "http://login.example"}, "source.authority: 'http://login.example' is not"),
        ({"ca_file": "missing.pem"}, "source.ca_file: file missing.pem does not exist"),
        ({"certificate_file": "app.pem"}, "set exactly one of client_secret"),
        ({"group_filter": "Engineering"}, 'use "include:Name A,Name B"'),
        ({"email_attribute": "otherMails"}, "source.email_attribute"),
        ({"certificate_file": "nope.pem", "client_secret": None}, "does not exist"),
    ],
)
def test_azure_ad_settings_name_the_key_that_is_wrong(
    tmp_path: Path, source: dict[str, Any], problem: str
) -> None:
    (tmp_path / "app.pem").write_text("not used\n")
    raw = _azure_config(tmp_path, **source)
    raw["organization"][0]["source"] = {
        k: v for k, v in raw["organization"][0]["source"].items() if v is not None
    }
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, base_dir=tmp_path)
    assert problem in str(raised.value)
    assert "organization[acme]" in str(raised.value)


def test_azure_ad_settings_trim_urls_and_keep_the_secret_hidden(tmp_path: Path) -> None:
    config = parse_config(
        _azure_config(tmp_path, graph_url="https://graph.microsoft.us/", client_secret="hush"),
        base_dir=tmp_path,
    )
    source = config.organization[0].source
    assert source.graph_url == "https://graph.microsoft.us"  # type: ignore[union-attr]
    assert "hush" not in repr(config)


def test_the_example_config_documents_valid_azure_ad_keys(tmp_path: Path) -> None:
    text = (Path(__file__).parents[4] / "config.example.toml").read_text()
    # the globex example runs up to the next blank line (the AD example follows it)
    block = text[text.index('# [[organization]]\n# name = "globex"') :].split("\n\n")[0]
    lines = [
        line[2:]
        for line in block.splitlines()
        if line.startswith("# ") and not line.startswith("# #")
    ]
    (tmp_path / "globex").write_text("secret\n")
    config = parse_config(tomllib.loads("\n".join(lines)), base_dir=tmp_path)
    source = config.organization[0].source
    assert source.type == "azure_ad"
    assert source.client_secret_file is not None and source.include_guests is False
