"""Groups pushed over real HTTPS, in Entra ID's and Okta's shapes, read back through the command
line: the organization's groups and their members follow, one planned run per request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.scim.conftest import Certificates, Scim, serve
from tests.integration.scim.test_scim_users import entra_user, patch

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def users(client: httpx.Client, *names: str) -> dict[str, str]:
    """Creates the users; their ids by name."""
    ids = {}
    for name in names:
        created = client.post("/Users", json=entra_user(f"{name}@acme.example", given=name))
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    return ids


def groups(scim: Scim) -> dict[str, list[str]]:
    return {g["name"]: g["members"] for g in scim.cli("groups", "--org", "acme")}


def group_body(name: str, *member_ids: str) -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": i} for i in member_ids],
    }


def test_a_group_and_its_members_follow_entra_and_okta_patches(scim: Scim) -> None:
    client = scim.client()
    ids = users(client, "ada", "bob", "cy", "dee")
    created = client.post("/Groups", json=group_body("Sales", ids["ada"], ids["bob"]))
    assert created.status_code == 201, created.text
    group = created.json()
    assert {m["value"] for m in group["members"]} == {ids["ada"], ids["bob"]}
    assert {m["type"] for m in group["members"]} == {"User"}
    assert groups(scim) == {"Sales": ["ada@acme.example", "bob@acme.example"]}
    member = {m["email"]: m for m in scim.cli("members", "--org", "acme")}
    assert member["ada@acme.example"]["groups"] == ["Sales"]
    url = f"/Groups/{group['id']}"

    # Entra ID: members added and removed in one request, the removal with a value list
    entra = patch(
        {"op": "Add", "path": "members", "value": [{"value": ids["cy"]}, {"value": ids["dee"]}]},
        {"op": "Remove", "path": "members", "value": [{"value": ids["ada"]}]},
    )
    answer = client.patch(url, json=entra)
    assert answer.status_code == 204, answer.text
    assert groups(scim)["Sales"] == ["bob@acme.example", "cy@acme.example", "dee@acme.example"]

    # Okta: a filtered removal, and a rename without a path
    okta = patch(
        {"op": "remove", "path": f'members[value eq "{ids["bob"]}"]'},
        {"op": "replace", "value": {"id": group["id"], "displayName": "Sales EU"}},
    )
    answer = client.patch(url, json=okta, params={"attributes": "displayName"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["displayName"] == "Sales EU"
    assert groups(scim) == {"Sales EU": ["cy@acme.example", "dee@acme.example"]}

    # Entra ID's look-up by name, without members
    found = client.get(
        "/Groups",
        params={"filter": 'displayName eq "sales eu"', "excludedAttributes": "members"},
    ).json()
    assert found["totalResults"] == 1
    assert "members" not in found["Resources"][0]
    actions = [e["action"] for e in scim.cli("events", "--org", "acme")]
    assert actions.count("group.create") == 1 and actions.count("group.update") >= 2


def test_a_disabled_or_deleted_user_leaves_the_group(scim_lenient: Scim) -> None:
    scim = scim_lenient  # two removals in one hour: more than the default 10% of three
    client = scim.client()
    ids = users(client, "ada", "bob", "cy")
    client.post("/Groups", json=group_body("Ops", *ids.values()))
    off = patch({"op": "Replace", "path": "active", "value": False})
    assert client.patch(f"/Users/{ids['ada']}", json=off).status_code == 200
    assert client.delete(f"/Users/{ids['bob']}").status_code == 204
    assert groups(scim) == {"Ops": ["cy@acme.example"]}


def test_a_group_naming_someone_unknown_is_refused_and_changes_nothing(scim: Scim) -> None:
    client = scim.client()
    ids = users(client, "ada")
    refused = client.post("/Groups", json=group_body("Ops", ids["ada"], "no-such-id"))
    assert refused.status_code == 400
    assert refused.json()["scimType"] == "invalidValue"
    assert "no-such-id" in refused.json()["detail"]
    assert groups(scim) == {}
    group = client.post("/Groups", json=group_body("Ops")).json()
    add = patch({"op": "add", "path": "members", "value": [{"value": "nobody"}]})
    assert client.patch(f"/Groups/{group['id']}", json=add).status_code == 400
    assert groups(scim) == {"Ops": []}


def test_hundreds_of_members_change_in_one_patch_and_a_group_is_deleted(scim: Scim) -> None:
    client = scim.client()
    ids = list(users(client, *(f"u{i:03}" for i in range(120))).values())
    group = client.post("/Groups", json=group_body("All", *ids[:100])).json()
    swap = patch(
        {"op": "Remove", "path": "members", "value": [{"value": i} for i in ids[:50]]},
        {"op": "Add", "path": "members", "value": [{"value": i} for i in ids[100:]]},
    )
    assert client.patch(f"/Groups/{group['id']}", json=swap).status_code == 204
    read = client.get(f"/Groups/{group['id']}").json()
    assert {m["value"] for m in read["members"]} == set(ids[50:])
    assert len(groups(scim)["All"]) == 70
    assert client.delete(f"/Groups/{group['id']}").status_code == 204
    assert client.get(f"/Groups/{group['id']}").status_code == 404
    assert groups(scim) == {}
    assert len(scim.cli("members", "--org", "acme")) == 120  # the users stay


def test_a_groups_external_id_reads_back_filters_and_follows_patches(scim: Scim) -> None:
    client = scim.client()
    ids = users(client, "ada")
    body = {**group_body("Sales", ids["ada"]), "externalId": "sales-1"}
    group = client.post("/Groups", json=body).json()
    assert group["externalId"] == "sales-1"
    url = f"/Groups/{group['id']}"
    listed = client.get(
        "/Groups",
        params={"filter": 'externalId eq "sales-1"', "excludedAttributes": "members"},
    ).json()
    assert [(g["id"], g["externalId"]) for g in listed["Resources"]] == [(group["id"], "sales-1")]

    # a members PATCH keeps it; a PATCH of externalId changes it (with a rename, Okta's shape)
    added = patch({"op": "remove", "path": "members", "value": [{"value": ids["ada"]}]})
    assert client.patch(url, json=added).status_code == 204
    assert client.get(url).json()["externalId"] == "sales-1"
    okta = patch({"op": "replace", "value": {"externalId": "sales-2", "displayName": "Sales EU"}})
    answer = client.patch(url, json=okta, params={"attributes": "externalId,displayName"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["externalId"], answer.json()["displayName"]) == ("sales-2", "Sales EU")
    assert (
        client.get("/Groups", params={"filter": 'externalId eq "sales-1"'}).json()["totalResults"]
        == 0
    )
    assert client.put(url, json={**body, "externalId": "sales-3"}).json()["externalId"] == (
        "sales-3"
    )


@pytest.fixture
def scim_vault(tmp_path: Path, certificates: Certificates) -> Iterator[Scim]:
    """acme with 10 seats and a collection, "Sales vault", reached through the group "Sales"."""
    vault = {"name": "Sales vault", "external_id": "sales-vault", "groups": ["Sales"]}
    yield from serve(tmp_path, certificates, seats=10, collection=[vault])


def test_collections_are_reached_through_pushed_groups_and_the_overview_shows_the_organization(
    scim_vault: Scim,
) -> None:
    """A collection names a group the identity provider pushes: it gets the group's access,
    and the group's members reach it, as in a sync; PATCHes of the group's members move who
    reaches it. ``status`` (the overview) lists the pushed organization with the others."""
    scim = scim_vault
    client = scim.client()
    ids = users(client, "ada", "bob", "cy")
    created = client.post("/Groups", json=group_body("Sales", ids["ada"], ids["bob"]))
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]

    def reached() -> dict[str, Any]:
        return {c["name"]: c for c in scim.cli("collections", "--org", "acme")}

    collection = reached()["Sales vault"]
    assert collection["managed"] is True
    assert collection["groups"] == [{"name": "Sales", "permission": "read"}]
    assert collection["members"] == ["ada@acme.example", "bob@acme.example"]
    moved = patch(
        {"op": "Add", "path": "members", "value": [{"value": ids["cy"]}]},
        {"op": "Remove", "path": "members", "value": [{"value": ids["ada"]}]},
    )
    assert client.patch(f"/Groups/{group_id}", json=moved).status_code == 204
    assert reached()["Sales vault"]["members"] == ["bob@acme.example", "cy@acme.example"]

    overview = {row["organization"]: row for row in scim.cli("status")}
    assert set(overview) == {"acme", "beta"}
    assert overview["acme"]["outcome"] == "applied"
    assert overview["acme"]["seats"] == {"used": 3, "total": 10}
    assert overview["acme"]["members"]["invited"] == 3
