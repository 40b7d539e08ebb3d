"""The contract, end to end: the dirsync CLI against the local Graph and a real SQLite store."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from dirsync.testing.connect_proxy import ConnectProxy
from dirsync.testing.graph_fake import Fault, GraphFake
from dirsync.testing.graph_tenant import Tenant
from dirsync.testing.slapd import free_ports
from tests.integration.azure.conftest import CLIENT_ID, SECRET, AzureDirsync


def contoso(tenant: Tenant) -> dict[str, str]:
    """Ann and Bob in Engineering, nested in All Staff with Carol; Olaf disabled; a guest."""
    ids = {
        "ann": tenant.add_user(display_name="Ann Andersen", mail="Ann@Contoso.example"),
        "bob": tenant.add_user(display_name="Bob Brown", mail=None, upn="bob@contoso.example"),
        "carol": tenant.add_user(display_name="Carol Chen", mail="carol@contoso.example"),
        "olaf": tenant.add_user(display_name="Olaf", mail="olaf@contoso.example", enabled=False),
        "gus": tenant.add_user(display_name="Gus Guest", mail="gus@partner.example", guest=True),
    }
    ids["eng"] = tenant.add_group(
        display_name="Engineering", members=(ids["ann"], ids["bob"], ids["olaf"], ids["gus"])
    )
    ids["all"] = tenant.add_group(display_name="All Staff", members=(ids["eng"], ids["carol"]))
    return ids


def test_a_full_sync_invites_members_flattens_groups_and_leaves_guests_out(
    azure: AzureDirsync,
) -> None:
    ids = contoso(azure.tenant)
    result = azure.sync_json()
    assert result["outcome"] == "applied", result
    assert sorted(i["email"] for i in result["plan"]["invite"]) == [
        "ann@contoso.example",
        "bob@contoso.example",
        "carol@contoso.example",
    ]
    members = azure.members()
    assert set(members) == {"ann@contoso.example", "bob@contoso.example", "carol@contoso.example"}
    assert members["ann@contoso.example"]["external_id"] == ids["ann"]
    assert members["ann@contoso.example"]["name"] == "Ann Andersen"
    assert members["bob@contoso.example"]["groups"] == ["All Staff", "Engineering"]
    groups = azure.groups()
    assert groups["All Staff"]["external_id"] == ids["all"]
    assert groups["All Staff"]["members"] == [
        "ann@contoso.example",
        "bob@contoso.example",
        "carol@contoso.example",
    ]
    assert groups["Engineering"]["members"] == ["ann@contoso.example", "bob@contoso.example"]
    requested = {r.path for r in azure.graph.graph_requests(azure.tenant.tenant_id)}
    assert {"/v1.0/users", "/v1.0/groups", f"/v1.0/groups/{ids['all']}/members"} <= requested
    users_query = next(r.query for r in azure.graph.graph_requests() if r.path == "/v1.0/users")
    assert set(users_query["$select"].split(",")) == {
        "id",
        "displayName",
        "mail",
        "userPrincipalName",
        "accountEnabled",
        "userType",
    }


def test_the_next_sync_follows_the_delta_links_and_applies_the_changes(
    azure: AzureDirsync,
) -> None:
    ids = contoso(azure.tenant)
    azure.set(sync={"max_removals": "100%"})
    azure.sync_json()
    azure.graph.clear_requests()
    t = azure.tenant
    t.update_user(ids["ann"], displayName="Ann Berg", mail="ann.berg@contoso.example")
    t.update_user(ids["bob"], accountEnabled=False)
    t.remove_member(ids["all"], ids["carol"])
    dave = t.add_user(display_name="Dave", mail="dave@contoso.example")
    t.add_member(ids["eng"], dave)
    t.soft_delete_user(ids["carol"])

    result = azure.sync_json()
    assert result["outcome"] == "applied", result
    assert [i["email"] for i in result["plan"]["invite"]] == ["dave@contoso.example"]
    assert {r["email"] for r in result["plan"]["revoke"]} == {
        "bob@contoso.example",
        "carol@contoso.example",
    }
    paths = {r.path for r in azure.graph.graph_requests()}
    assert paths == {"/v1.0/users/delta", "/v1.0/groups/delta"}
    members = azure.members()
    assert members["ann.berg@contoso.example"]["name"] == "Ann Berg"
    assert members["carol@contoso.example"]["status"] == "revoked"
    assert azure.groups()["All Staff"]["members"] == [
        "ann.berg@contoso.example",
        "dave@contoso.example",
    ]

    t.restore_user(ids["carol"])  # a soft delete undone: the member comes back
    again = azure.sync_json()
    assert [r["email"] for r in again["plan"]["restore"]] == ["carol@contoso.example"]
    assert azure.members()["carol@contoso.example"]["status"] == "invited"


def test_include_guests_brings_guests_in_even_after_a_delta_cursor_exists(
    azure: AzureDirsync,
) -> None:
    contoso(azure.tenant)
    azure.sync_json()
    assert "gus@partner.example" not in azure.members()
    azure.set(source={"include_guests": True})
    result = azure.sync_json()  # other settings, so the stored cursor is not continued
    assert [i["email"] for i in result["plan"]["invite"]] == ["gus@partner.example"]
    assert azure.groups()["Engineering"]["members"] == [
        "ann@contoso.example",
        "bob@contoso.example",
        "gus@partner.example",
    ]


def test_each_organization_has_its_own_tenant_credentials_and_cursor(
    azure: AzureDirsync, graph: GraphFake
) -> None:
    contoso(azure.tenant)
    other = graph.add_tenant(azure.tenant.tenant_id + "-globex")
    graph.add_app(other.tenant_id, "globex-app", secret="globex-" + SECRET)
    other.add_user(display_name="Gina", mail="gina@globex.example")
    azure.sync_json()  # creates acme's store and cursor
    globex = {
        **azure.source,
        "tenant": other.tenant_id,
        "client_id": "globex-app",
        "client_secret": "globex-" + SECRET,
    }
    text = azure.config.read_text() + '\n[[organization]]\nname = "globex"\n'
    text += "[organization.source]\n" + "".join(
        f"{k} = {json.dumps(str(v))}\n" for k, v in globex.items()
    )
    azure.config.write_text(text)
    results = {r["organization"]: r for r in azure.json("sync")}
    assert results["acme"]["outcome"] == "unchanged"
    assert [i["email"] for i in results["globex"]["plan"]["invite"]] == ["gina@globex.example"]
    assert [m["email"] for m in azure.json("members", "--org", "globex")] == ["gina@globex.example"]
    assert "gina@globex.example" not in azure.members()


def test_the_test_command_shows_what_graph_yields_after_filters(azure: AzureDirsync) -> None:
    ids = contoso(azure.tenant)
    azure.set(source={"group_filter": "include:All Staff,Nobody", "user_filter": "exclude:Ghosts"})
    shown = azure.json("test", "--org", "acme")
    assert set(shown) >= {"organization", "users", "groups", "warnings"}
    assert {u["email"] for u in shown["users"]} == {
        "ann@contoso.example",
        "bob@contoso.example",
        "carol@contoso.example",
        "olaf@contoso.example",
    }
    olaf = next(u for u in shown["users"] if u["email"] == "olaf@contoso.example")
    assert olaf == {
        "email": "olaf@contoso.example",
        "external_id": ids["olaf"],
        "name": "Olaf",
        "disabled": True,
    }
    assert [g["name"] for g in shown["groups"]] == ["All Staff"]
    assert shown["groups"][0]["members"] == [
        "ann@contoso.example",
        "bob@contoso.example",
        "carol@contoso.example",
    ]
    assert any("'nobody'" in w and "group_filter" in w for w in shown["warnings"])
    assert any("'ghosts'" in w and "user_filter" in w for w in shown["warnings"])


def test_a_user_filter_keeps_only_transitive_members_of_the_named_groups(
    azure: AzureDirsync,
) -> None:
    contoso(azure.tenant)
    azure.tenant.add_user(display_name="Zed", mail="zed@contoso.example")
    azure.set(source={"user_filter": "include:all staff"})
    azure.sync_json()
    assert set(azure.members()) == {
        "ann@contoso.example",
        "bob@contoso.example",
        "carol@contoso.example",
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("tenant", "the tenant 'no-such-tenant' is unknown"),
        ("secret", "the client secret is wrong"),
        ("expired", "the client secret of application " + CLIENT_ID + " has expired"),
        ("permission", "403 Authorization_RequestDenied"),
        ("client", f"application {CLIENT_ID} does not exist in tenant"),
    ],
)
def test_authentication_problems_fail_with_exit_1_and_a_distinct_message(
    azure: AzureDirsync, change: str, expected: str
) -> None:
    contoso(azure.tenant)
    app = azure.tenant.apps[CLIENT_ID]
    if change == "tenant":
        azure.set(source={"tenant": "no-such-tenant"})
    elif change == "secret":
        azure.set(source={"client_secret": "not-the-secret"})
    elif change == "expired":
        app.secret_expired = True
    elif change == "permission":
        app.permission = False
    else:
        azure.set(source={"client_id": "00000000-0000-0000-0000-000000000000"})
        expected = expected.replace(CLIENT_ID, "00000000-0000-0000-0000-000000000000")
    code, out, err = azure.run("sync")
    assert code == 1, (out, err)
    assert expected in out + err
    assert "organization acme" in out + err
    assert SECRET not in out + err and "not-the-secret" not in out + err
    assert azure.members() == {}


def test_a_certificate_credential_gets_a_token_and_an_unregistered_one_is_refused(
    azure: AzureDirsync, graph: GraphFake, tmp_path: Path
) -> None:
    contoso(azure.tenant)
    ca = trustme.CA()
    rsa = trustme.KeyType.RSA  # Entra takes RSA keys only
    registered = ca.issue_cert("dirsync-app", key_type=rsa)
    graph.add_app(
        azure.tenant.tenant_id, CLIENT_ID, certificate_pem=registered.cert_chain_pems[0].bytes()
    )
    pem = tmp_path / "app.pem"
    pem.write_bytes(registered.private_key_pem.bytes() + registered.cert_chain_pems[0].bytes())
    azure.set(source={"client_secret": None, "certificate_file": str(pem)})
    azure.source.pop("client_secret")
    azure.write()
    assert azure.sync_json()["outcome"] == "applied"

    other = ca.issue_cert("someone-else", key_type=rsa)
    pem.write_bytes(other.private_key_pem.bytes() + other.cert_chain_pems[0].bytes())
    code, _out, err = azure.run("sync", "--full")
    assert code == 1
    assert f"the certificate is not registered for application {CLIENT_ID}" in err

    locked = registered.private_key_pem.bytes()
    key = serialization.load_pem_private_key(locked, password=None)
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-passphrase"),
        )
        + registered.cert_chain_pems[0].bytes()
    )
    code, _out, err = azure.run("sync")
    assert code == 2 and "certificate_passphrase" in err
    azure.set(source={"certificate_passphrase": "key-passphrase"})
    assert azure.sync_json("--full")["outcome"] in ("applied", "unchanged")
    azure.source.pop("certificate_passphrase")
    azure.write()

    ec_key = trustme.CA().issue_cert("ec")
    pem.write_bytes(ec_key.private_key_pem.bytes() + ec_key.cert_chain_pems[0].bytes())
    code, _out, err = azure.run("sync")
    assert code == 2
    assert "certificate_file" in err and "RSA" in err


def test_an_unknown_ca_fails_with_exit_1_because_tls_is_verified(azure: AzureDirsync) -> None:
    contoso(azure.tenant)
    azure.source.pop("ca_file")
    azure.write()
    code, _out, err = azure.run("sync")
    assert code == 1
    assert "TLS" in err and "certificate verify failed" in err.lower()


@pytest.mark.parametrize("kind", ["truncate", "malformed", "no_value"])
def test_a_broken_page_fails_the_run_and_changes_nothing(azure: AzureDirsync, kind: str) -> None:
    ids = contoso(azure.tenant)
    azure.set(sync={"overwrite_existing": True, "max_removals": "100%"})
    azure.sync_json()
    before = azure.dump()
    azure.tenant.update_user(ids["ann"], displayName="Changed")
    azure.graph.fail(Fault(kind=kind, path="/v1.0/users"))
    result = azure.sync_json(code=1)
    assert result["outcome"] == "failed" and result["error"]
    after = azure.dump()
    assert {k: v for k, v in after.items() if k != "runs"} == {
        k: v for k, v in before.items() if k != "runs"
    }


def test_a_suddenly_empty_tenant_is_refused_and_changes_nothing(azure: AzureDirsync) -> None:
    ids = contoso(azure.tenant)
    azure.set(sync={"overwrite_existing": True, "max_removals": "100%"})
    azure.sync_json()
    before = azure.dump()
    for key in ("ann", "bob", "carol", "olaf", "gus"):
        azure.tenant.hard_delete_user(ids[key])
    result = azure.sync_json("--full", code=3)
    assert result["outcome"] == "refused"
    assert any("no users" in reason for reason in result["refusal"])
    assert {k: v for k, v in azure.dump().items() if k != "runs"} == {
        k: v for k, v in before.items() if k != "runs"
    }


@pytest.mark.parametrize("how", ["--full", "delta"])
def test_a_half_missing_tenant_is_refused_by_max_removals(azure: AzureDirsync, how: str) -> None:
    users = [
        azure.tenant.add_user(display_name=f"U{i}", mail=f"u{i}@contoso.example") for i in range(20)
    ]
    azure.set(sync={"overwrite_existing": True})
    azure.sync_json()
    before = azure.dump()
    for user in users[:10]:
        azure.tenant.hard_delete_user(user)
    result = azure.sync_json(*(["--full"] if how == "--full" else []), code=3)
    assert result["outcome"] == "refused"
    assert any("max_removals" in reason for reason in result["refusal"])
    assert {k: v for k, v in azure.dump().items() if k != "runs"} == {
        k: v for k, v in before.items() if k != "runs"
    }


@pytest.mark.parametrize("how", ["gone", "sync_state_not_found"])
def test_an_expired_delta_token_means_one_full_read_then_delta_again(
    azure: AzureDirsync, how: str
) -> None:
    ids = contoso(azure.tenant)
    azure.set(sync={"overwrite_existing": True, "max_removals": "100%"})
    azure.sync_json()
    azure.graph.expire_delta_tokens(azure.tenant.tenant_id, how=how)
    azure.tenant.hard_delete_user(ids["carol"])
    azure.tenant.update_user(ids["ann"], displayName="Ann Again")
    azure.graph.clear_requests()

    result = azure.sync_json()
    assert result["outcome"] == "applied", result
    assert [r["email"] for r in result["plan"]["revoke"]] == ["carol@contoso.example"]
    statuses = [(r.path, r.status) for r in azure.graph.graph_requests()]
    assert statuses[0] == ("/v1.0/users/delta", 410 if how == "gone" else 400)
    assert ("/v1.0/users", 200) in statuses
    assert azure.members()["ann@contoso.example"]["name"] == "Ann Again"

    azure.graph.clear_requests()
    azure.tenant.update_user(ids["bob"], displayName="Bob Again")
    assert azure.sync_json()["outcome"] == "applied"
    assert {r.path for r in azure.graph.graph_requests()} == {
        "/v1.0/users/delta",
        "/v1.0/groups/delta",
    }


def test_no_secret_or_bearer_token_appears_in_logs_output_or_store(
    azure: AzureDirsync, graph: GraphFake, caplog: pytest.LogCaptureFixture
) -> None:
    ids = contoso(azure.tenant)
    azure.config.write_text(azure.config.read_text() + '\n[logging]\nlevel = "debug"\n')
    caplog.set_level(logging.DEBUG)
    issued_before = len(graph.desk.issued)
    outputs = []
    for args in (("sync", "--json"), ("test", "--json"), ("sync",)):
        azure.tenant.update_user(ids["ann"], displayName=f"Ann {len(outputs)}")
        code, out, err = azure.run(*args)
        assert code == 0, err
        outputs += [out, err]
    azure.set(source={"client_secret": "wrong-" + SECRET})
    outputs += list(azure.run("sync", "--json")[1:])
    tokens = graph.desk.issued[issued_before:]
    assert tokens, "the runs above got tokens from the local Graph"
    captured = "\n".join([*outputs, caplog.text, repr(azure.dump())])
    assert SECRET not in captured
    for token in tokens:
        assert token not in captured
    assert not re.search(r"Bearer\s+\S{8,}", captured)


def test_the_proxy_carries_both_the_token_and_the_graph_requests(azure: AzureDirsync) -> None:
    contoso(azure.tenant)
    port = azure.graph.url.rsplit(":", 1)[1]
    with ConnectProxy() as proxy:
        azure.set(source={"proxy": proxy.url})
        assert azure.sync_json()["outcome"] == "applied"
    # msal's requests session and the httpx client each open their own tunnel
    assert proxy.tunnels.count(f"127.0.0.1:{port}") >= 2
    closed = free_ports(1)[0]
    azure.set(source={"proxy": f"http://127.0.0.1:{closed}"})
    code, _out, err = azure.run("sync", "--full")
    assert code == 1 and "cannot reach" in err


def test_an_unreachable_login_host_fails_with_exit_1_and_names_it(azure: AzureDirsync) -> None:
    closed = free_ports(1)[0]
    azure.set(source={"authority": f"https://127.0.0.1:{closed}"})
    code, _out, err = azure.run("sync")
    assert code == 1
    assert f"organization acme: cannot reach https://127.0.0.1:{closed}" in err
