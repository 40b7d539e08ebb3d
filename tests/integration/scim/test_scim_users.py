"""Users pushed over real HTTPS, in the shapes Entra ID and Okta send, read back through the
command line: each push is a planned, guarded, one-transaction run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dirsync.scim.app import MAX_BODY
from tests.integration.scim.conftest import TOKENS, Scim, SettableClock

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def entra_user(user_name: str, *, mail: str | None = None, given: str = "Ada") -> dict[str, Any]:
    """A create as Entra ID's default attribute mapping sends it."""
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": user_name.split("@")[0],
        "userName": user_name,
        "active": True,
        "displayName": f"{given} Lovelace",
        "name": {"formatted": f"{given} Lovelace", "familyName": "Lovelace", "givenName": given},
        "meta": {"resourceType": "User"},
        "roles": [],
    }
    if mail:
        body["emails"] = [{"primary": True, "type": "work", "value": mail}]
    return body


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def members(scim: Scim, organization: str = "acme") -> dict[str, dict[str, Any]]:
    return {m["email"]: m for m in scim.cli("members", "--org", organization)}


def test_a_created_user_is_invited_and_reads_back_by_id_and_by_user_name(scim: Scim) -> None:
    client = scim.client()
    created = client.post("/Users", json=entra_user("ada@acme.example"))
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/scim+json")
    user = created.json()
    assert user["userName"] == "ada@acme.example"
    assert user["active"] is True
    assert created.headers["location"] == f"{scim.url()}/Users/{user['id']}"

    assert client.get(f"/Users/{user['id']}").json() == user
    # Entra's and Okta's look-up before a create: userName eq, in any case
    found = client.get("/Users", params={"filter": 'userName eq "ADA@acme.example"'}).json()
    assert found["totalResults"] == 1
    assert found["Resources"] == [user]
    assert client.get("/Users", params={"filter": 'userName eq "bob@x"'}).json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }

    member = members(scim)["ada@acme.example"]
    assert member["status"] == "invited"
    assert member["external_id"] == user["id"]
    assert member["name"] == "Ada Lovelace"
    events = scim.cli("events", "--org", "acme")
    assert [(e["action"], e["actor"]) for e in events] == [("member.invite", "scim:acme")]


def test_the_primary_email_is_the_members_address_when_it_differs_from_user_name(
    scim: Scim,
) -> None:
    client = scim.client()
    body = entra_user("ada@acme.onmicrosoft.com", mail="Ada.Lovelace@acme.example")
    assert client.post("/Users", json=body).status_code == 201
    assert list(members(scim)) == ["ada.lovelace@acme.example"]


def test_entra_patches_update_the_name_and_email_and_active_false_revokes(scim: Scim) -> None:
    client = scim.client()
    user = client.post("/Users", json=entra_user("ada@acme.example")).json()
    other = client.post("/Users", json=entra_user("bob@acme.example", given="Bob")).json()
    url = f"/Users/{user['id']}"

    # Entra ID's shapes: capitalised ops, filtered paths, the boolean as a string
    renamed = client.patch(
        url,
        json=patch(
            {"op": "Replace", "path": "displayName", "value": "Ada King"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ada.king@acme.example"},
        ),
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["emails"][0]["value"] == "ada.king@acme.example"
    assert members(scim)["ada.king@acme.example"]["name"] == "Ada King"
    assert "ada@acme.example" not in members(scim)

    disabled = client.patch(url, json=patch({"op": "Replace", "path": "active", "value": "False"}))
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False
    assert members(scim)["ada.king@acme.example"]["status"] == "revoked"
    assert members(scim)["bob@acme.example"]["status"] == "invited"  # untouched

    # the RFC 7644 shape without a path, as Okta sends it
    enabled = client.patch(url, json=patch({"op": "replace", "value": {"active": True}}))
    assert enabled.json()["active"] is True
    assert members(scim)["ada.king@acme.example"]["status"] == "invited"
    actions = [e["action"] for e in scim.cli("events", "--org", "acme")]
    assert actions == [f"member.{a}" for a in ("invite", "invite", "update", "revoke", "restore")]
    assert other["id"] != user["id"]


def test_a_replace_changes_the_member_and_keeps_the_id(scim: Scim) -> None:
    client = scim.client()
    user = client.post("/Users", json=entra_user("ada@acme.example")).json()
    replaced = client.put(f"/Users/{user['id']}", json=entra_user("ada@acme.example", given="Al"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == user["id"]
    assert members(scim)["ada@acme.example"]["name"] == "Al Lovelace"


def test_delete_is_an_explicit_deletion_that_deprovisions_the_member(scim: Scim) -> None:
    client = scim.client()
    ada = client.post("/Users", json=entra_user("ada@acme.example")).json()
    client.post("/Users", json=entra_user("bob@acme.example", given="Bob"))
    deleted = client.delete(f"/Users/{ada['id']}")
    assert deleted.status_code == 204, deleted.text
    gone = client.get(f"/Users/{ada['id']}")
    assert gone.status_code == 404
    assert gone.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert gone.json()["status"] == "404"
    assert members(scim)["ada@acme.example"]["status"] == "revoked"  # deprovision = "revoke"
    assert client.delete(f"/Users/{ada['id']}").status_code == 404


def test_a_wrong_token_or_another_organizations_token_gets_401_and_changes_nothing(
    scim: Scim,
) -> None:
    for client in (
        scim.client("acme", token="not-the-token"),
        scim.client("acme", token=TOKENS["beta"]),
        scim.client("nobody", token=TOKENS["acme"]),
    ):
        answer = client.post("/Users", json=entra_user("eve@acme.example"))
        assert answer.status_code == 401
        assert answer.json()["status"] == "401"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert TOKENS["acme"] not in answer.text
        assert client.get("/Users").status_code == 401
    anonymous = scim.client("acme")
    anonymous.headers.pop("Authorization")
    assert anonymous.get("/ServiceProviderConfig").status_code == 401
    assert scim.cli("members", "--org", "acme") == []
    assert scim.cli("members", "--org", "beta") == []


def test_organizations_are_apart(scim: Scim) -> None:
    assert (
        scim.client("beta").post("/Users", json=entra_user("ada@beta.example")).status_code == 201
    )
    assert scim.client("acme").get("/Users").json()["totalResults"] == 0
    assert list(members(scim, "beta")) == ["ada@beta.example"]


def test_a_user_name_taken_in_any_case_is_a_409_uniqueness(scim: Scim) -> None:
    client = scim.client()
    assert client.post("/Users", json=entra_user("ada@acme.example")).status_code == 201
    again = client.post("/Users", json=entra_user("ADA@acme.example"))
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"
    assert len(members(scim)) == 1


def test_requests_the_endpoint_does_not_serve_get_a_scim_error(scim: Scim) -> None:
    client = scim.client()
    answer = client.get("/Users", params={"filter": 'userName sw "ada"'})
    assert answer.status_code == 400
    assert answer.json()["scimType"] == "invalidFilter"
    no_name = client.post("/Users", json={**entra_user("ada@acme.example"), "userName": " "})
    assert no_name.status_code == 400
    assert no_name.json()["scimType"] == "invalidValue"
    broken = client.post(
        "/Users", content=b"{not json", headers={"Content-Type": "application/scim+json"}
    )
    assert broken.status_code == 400
    assert broken.json()["scimType"] == "invalidSyntax"
    assert client.get("/Nothing").status_code == 404
    assert scim.cli("members", "--org", "acme") == []


def test_a_push_beyond_the_seats_is_refused_whole_and_changes_nothing(
    scim_two_seats: Scim,
) -> None:
    scim = scim_two_seats
    client = scim.client()
    for name in ("ada", "bob"):
        assert client.post("/Users", json=entra_user(f"{name}@acme.example")).status_code == 201
    before = scim.cli("events", "--org", "acme")
    refused = client.post("/Users", json=entra_user("cy@acme.example"))
    assert refused.status_code == 403, refused.text
    assert "seats" in refused.json()["detail"]
    assert sorted(members(scim)) == ["ada@acme.example", "bob@acme.example"]
    assert client.get("/Users").json()["totalResults"] == 2  # not in the mirror either
    assert scim.cli("events", "--org", "acme") == before
    [status] = scim.cli("status", "--org", "acme")
    assert status["outcome"] == "refused"  # the refusal is recorded as a run


def test_a_user_without_an_address_is_kept_and_not_invited_until_it_has_one(scim: Scim) -> None:
    client = scim.client()
    created = client.post("/Users", json=entra_user("ada"))
    assert created.status_code == 201, created.text
    assert scim.cli("members", "--org", "acme") == []
    [status] = scim.cli("status", "--org", "acme")
    assert status["outcome"] == "unchanged"
    given = {"op": "add", "path": "emails", "value": [{"value": "ada@acme.example"}]}
    assert client.patch(f"/Users/{created.json()['id']}", json=patch(given)).status_code == 200
    assert members(scim)["ada@acme.example"]["status"] == "invited"


def test_pages_of_users(scim: Scim) -> None:
    client = scim.client()
    for index in range(5):
        client.post("/Users", json=entra_user(f"user{index}@acme.example"))
    first = client.get("/Users", params={"startIndex": 1, "count": 2}).json()
    rest = client.get("/Users", params={"startIndex": 3, "count": 10}).json()
    assert (first["totalResults"], first["itemsPerPage"], rest["itemsPerPage"]) == (5, 2, 3)
    seen = [u["userName"] for u in first["Resources"] + rest["Resources"]]
    assert sorted(seen) == [f"user{i}@acme.example" for i in range(5)]


def test_a_burst_of_single_deletions_is_refused_like_one_big_plan(
    scim_window: Scim, clock: SettableClock
) -> None:
    scim = scim_window  # max_removals = 2 within removal_window = 1h
    client = scim.client()
    ids = [
        client.post("/Users", json=entra_user(f"u{i}@acme.example")).json()["id"] for i in range(5)
    ]
    for user_id in ids[:2]:
        clock.now += timedelta(minutes=10)
        assert client.delete(f"/Users/{user_id}").status_code == 204
    clock.now += timedelta(minutes=10)
    refused = client.delete(f"/Users/{ids[2]}")
    assert refused.status_code == 403, refused.text
    assert "removal_window" in refused.json()["detail"]
    off = patch({"op": "Replace", "path": "active", "value": "False"})
    assert client.patch(f"/Users/{ids[3]}", json=off).status_code == 403  # a revocation too
    renamed = patch({"op": "Replace", "path": "displayName", "value": "Still Here"})
    assert client.patch(f"/Users/{ids[3]}", json=renamed).status_code == 200  # no removal
    assert client.get(f"/Users/{ids[2]}").status_code == 200
    statuses = {m["email"]: m["status"] for m in scim.cli("members", "--org", "acme")}
    assert statuses == {
        "u0@acme.example": "revoked",
        "u1@acme.example": "revoked",
        "u2@acme.example": "invited",
        "u3@acme.example": "invited",
        "u4@acme.example": "invited",
    }
    clock.now += timedelta(minutes=45)  # the first deletion has left the window
    assert client.delete(f"/Users/{ids[2]}").status_code == 204
    assert client.delete(f"/Users/{ids[3]}").status_code == 403


def test_the_token_is_checked_before_the_body_and_a_body_has_a_size_limit(scim: Scim) -> None:
    huge = b'{"userName": "' + b"a" * (MAX_BODY + 1) + b'"}'
    headers = {"Content-Type": "application/scim+json"}
    stranger = scim.client("acme", token="wrong")
    assert stranger.post("/Users", content=huge, headers=headers).status_code == 401
    too_large = scim.client().post("/Users", content=huge, headers=headers)
    assert too_large.status_code == 413
    assert too_large.json()["status"] == "413"
    assert scim.cli("members", "--org", "acme") == []


def test_external_id_reads_back_filters_and_follows_put_and_patch(scim: Scim) -> None:
    client = scim.client()
    user = client.post("/Users", json=entra_user("ada@acme.example")).json()
    assert user["externalId"] == "ada"
    url = f"/Users/{user['id']}"
    assert client.get(url).json()["externalId"] == "ada"
    # what Entra ID sends when its matching attribute is externalId (case-exact, RFC 7643)
    found = client.get("/Users", params={"filter": 'externalId eq "ada"'}).json()
    assert [u["id"] for u in found["Resources"]] == [user["id"]]
    assert (
        client.get("/Users", params={"filter": 'externalId eq "ADA"'}).json()["totalResults"] == 0
    )

    # a PATCH of externalId alone is kept (the mirror changes, the organization does not)
    changed = client.patch(url, json=patch({"op": "Replace", "path": "externalId", "value": "a-7"}))
    assert changed.status_code == 200, changed.text
    assert changed.json()["externalId"] == "a-7"
    assert client.get(url).json()["externalId"] == "a-7"
    assert (
        client.get("/Users", params={"filter": 'externalId eq "ada"'}).json()["totalResults"] == 0
    )
    # a PATCH of something else keeps it
    renamed = patch({"op": "replace", "path": "displayName", "value": "Ada King"})
    assert client.patch(url, json=renamed).json()["externalId"] == "a-7"
    # a replace carries it (and one without it has none: PUT replaces the whole resource)
    body = {**entra_user("ada@acme.example"), "externalId": "a-8"}
    assert client.put(url, json=body).json()["externalId"] == "a-8"
    without = {k: v for k, v in entra_user("ada@acme.example").items() if k != "externalId"}
    assert "externalId" not in client.put(url, json=without).json()
    assert (
        client.get("/Users", params={"filter": 'externalId eq "a-8"'}).json()["totalResults"] == 0
    )
    assert list(members(scim)) == ["ada@acme.example"]


def test_the_service_provider_config_says_truly_that_etags_and_bulk_are_not_supported(
    scim: Scim,
) -> None:
    """ETags and bulk are not built: the configuration says so, no response carries a
    version to match, and a bulk request is answered 501 and changes nothing."""
    client = scim.client()
    config = client.get("/ServiceProviderConfig").json()
    assert config["etag"] == {"supported": False}
    assert config["bulk"]["supported"] is False
    assert config["patch"] == {"supported": True}
    created = client.post("/Users", json=entra_user("ada@acme.example"))
    read = client.get(created.headers["location"])
    for answer in (created, read):
        assert "etag" not in answer.headers
        assert "version" not in answer.json()["meta"]
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "b1", "data": entra_user("bo@a.example")}
        ],
    }
    refused = client.post("/Bulk", json=bulk)
    assert refused.status_code == 501
    assert refused.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert list(members(scim)) == ["ada@acme.example"]
