"""The SCIM endpoint's pure parts: a pushed user as a directory user, list queries, tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scim2_models import Context

from dirsync.config.settings import parse_config
from dirsync.errors import ConfigError
from dirsync.model import DirectoryGroup, DirectoryUser
from dirsync.scim.auth import authorize, bearer_token
from dirsync.scim.errors import ScimError
from dirsync.scim.groups import GroupPatch, parse_group_patch
from dirsync.scim.listing import MAX_RESULTS, parse_filter, parse_list_query
from dirsync.scim.users import ScimUser, directory_user, scim_user

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def pushed(**attributes: Any) -> Any:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], **attributes}
    return ScimUser.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)


@pytest.mark.parametrize(
    ("attributes", "email"),
    [
        ({"userName": "ada@acme.example"}, "ada@acme.example"),
        (
            {
                "userName": "ada@acme.onmicrosoft.com",
                "emails": [
                    {"value": "home@ada.example", "type": "home"},
                    {"value": "ada@acme.example", "primary": True},
                ],
            },
            "ada@acme.example",
        ),
        (
            {
                "userName": "ada",
                "emails": [
                    {"value": "home@ada.example", "type": "home"},
                    {"value": "ada@acme.example", "type": "work"},
                ],
            },
            "ada@acme.example",
        ),
        ({"userName": "ada", "emails": [{"value": "home@ada.example"}]}, "home@ada.example"),
        ({"userName": "ada"}, None),
    ],
)
def test_the_address_is_the_primary_then_work_then_any_email_then_an_address_user_name(
    attributes: dict[str, Any], email: str | None
) -> None:
    assert directory_user(pushed(**attributes), "id1").email == email


def test_the_name_is_the_display_name_then_formatted_then_given_and_family() -> None:
    names = [
        {"displayName": "Ada L", "name": {"formatted": "Ada Lovelace"}},
        {"name": {"formatted": "Ada Lovelace", "givenName": "X"}},
        {"name": {"givenName": "Ada", "familyName": "Lovelace"}},
    ]
    found = [directory_user(pushed(userName="a@b.example", **n), "i").name for n in names]
    assert found == ["Ada L", "Ada Lovelace", "Ada Lovelace"]
    assert directory_user(pushed(userName="a@b.example"), "i").name is None


def test_active_false_disables_and_an_absent_active_is_enabled() -> None:
    assert directory_user(pushed(userName="a@b.example", active=False), "i").disabled
    assert not directory_user(pushed(userName="a@b.example"), "i").disabled


def test_a_stored_user_reads_back_as_what_was_kept() -> None:
    stored = DirectoryUser(
        external_id="i",
        ref="i",
        username="Ada@b.example",
        email="ada@b.example",
        name="Ada",
        idp_id="E-1",
    )
    resource = scim_user(stored, location="https://h/scim/v2/acme/Users/i")
    assert directory_user(resource, "i") == stored


def test_external_id_is_the_identity_providers_id_and_a_blank_one_is_none() -> None:
    assert directory_user(pushed(userName="a@b.example", externalId=" E-1 "), "i").idp_id == "E-1"
    assert directory_user(pushed(userName="a@b.example", externalId=" "), "i").idp_id is None
    assert directory_user(pushed(userName="a@b.example"), "i").idp_id is None


def test_list_queries() -> None:
    query = parse_list_query(
        {"filter": 'UserName EQ "ada\\"s@x.example"', "startIndex": "3", "count": "5000"},
        ("userName",),
    )
    assert (query.attribute, query.value) == ("username", 'ada"s@x.example')
    assert (query.offset, query.count) == (2, MAX_RESULTS)
    assert parse_list_query({"startIndex": "-4"}, ("userName",)).offset == 0
    assert parse_filter(
        'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"', ("userName",)
    ) == ("username", "a")
    for text in ('userName sw "a"', 'emails eq "a"', 'userName eq "a" or userName eq "b"'):
        with pytest.raises(ScimError) as caught:
            parse_filter(text, ("userName",))
        assert (caught.value.status, caught.value.scim_type) == (400, "invalidFilter")
    with pytest.raises(ScimError):
        parse_list_query({"count": "many"}, ("userName",))


def test_bearer_tokens() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def _config(tmp_path: Path) -> Any:
    (tmp_path / "beta.token").write_text("beta-secret\n")
    raw = {
        "organization": [
            {"name": "acme", "source": {"type": "scim", "token": "acme-secret"}},
            {"name": "beta", "source": {"type": "scim", "token_file": "beta.token"}},
            {
                "name": "ldap",
                "source": {"type": "ldap", "url": "ldap://127.0.0.1", "base_dn": "dc=x"},
            },
        ]
    }
    return parse_config(raw, base_dir=tmp_path)


def test_only_the_organizations_own_token_is_let_in(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert authorize(config, "acme", "Bearer acme-secret").name == "acme"
    assert authorize(config, "beta", "Bearer beta-secret").name == "beta"
    for name, header in [
        ("acme", "Bearer beta-secret"),
        ("acme", "Bearer acme-secret2"),
        ("acme", None),
        ("ldap", "Bearer acme-secret"),  # not a pushed organization
        ("nobody", "Bearer acme-secret"),
    ]:
        with pytest.raises(ScimError) as caught:
            authorize(config, name, header)
        assert caught.value.status == 401
        assert "secret" not in str(caught.value)


def test_a_pushed_source_needs_exactly_one_token_and_its_rules_say_pushed(tmp_path: Path) -> None:
    assert _config(tmp_path).get("acme").rules().pushed
    assert not _config(tmp_path).get("ldap").rules().pushed
    for source in ({"type": "scim"}, {"type": "scim", "token": "a", "token_file": "b"}):
        with pytest.raises(ConfigError) as caught:
            parse_config({"organization": [{"name": "a", "source": source}]}, base_dir=tmp_path)
        assert "exactly one of token and token_file" in str(caught.value.problems)


def test_scim_listen_is_https_only(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    problems = {
        "scim_listen": "needs scim_cert_file and scim_key_file",
        "scim_cert_file": "need scim_listen",
    }
    for key, message in problems.items():
        daemon = {key: "127.0.0.1:8443" if key == "scim_listen" else "c.pem"}
        with pytest.raises(ConfigError) as caught:
            parse_config({"daemon": daemon}, base_dir=tmp_path)
        assert message in " ".join(caught.value.problems)
    with pytest.raises(ConfigError) as caught:
        parse_config({"daemon": {"scim_listen": "nowhere"}}, base_dir=tmp_path)
    assert "daemon.scim_listen" in " ".join(caught.value.problems)
    daemon = {"scim_listen": "[::1]:8443", "scim_cert_file": "c.pem", "scim_key_file": "c.pem"}
    assert parse_config({"daemon": daemon}, base_dir=tmp_path).daemon.scim_listen == "[::1]:8443"


def test_the_example_config_documents_a_valid_scim_organization(tmp_path: Path) -> None:
    import tomllib

    text = (Path(__file__).parents[3] / "config.example.toml").read_text()
    block = text[text.index('# [[organization]]\n# name = "umbrella"') :].split("\n\n")[0]
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    (tmp_path / "umbrella-scim").write_text("token\n")
    config = parse_config(tomllib.loads("\n".join(lines)), base_dir=tmp_path)
    assert config.organization[0].source.type == "scim"
    assert config.organization[0].rules().pushed


GROUP = DirectoryGroup(
    external_id="g1", ref="g1", name="Staff", member_refs=frozenset({"a", "b", "c"})
)


def _patch(*operations: dict[str, Any]) -> GroupPatch:
    return parse_group_patch({"schemas": [PATCH_SCHEMA], "Operations": list(operations)})


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "add", "path": "members", "value": [{"value": "d"}, {"value": "a"}]}],
        [{"op": "Remove", "path": "members", "value": [{"value": "b"}, {"value": "z"}]}],
        [{"op": "remove", "path": 'members[value eq "c"]'}],
        # the last operation on a ref decides, as applying them in order does
        [
            {"op": "add", "path": "members", "value": [{"value": "d"}]},
            {"op": "remove", "path": "members", "value": [{"value": "d"}, {"value": "a"}]},
            {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "e"}]},
        ],
        [{"op": "add", "value": {"members": [{"value": "f"}]}}],
    ],
)
def test_a_patch_of_named_members_is_the_partial_change_applying_it_makes(
    operations: list[dict[str, Any]],
) -> None:
    """A PATCH that adds and removes named members is pushed as a partial change computed
    from the refs it names alone; applied to the group, it gives what applying it whole does,
    and it names only refs the group really gains or loses."""
    patch = _patch(*operations)
    assert patch.by_difference
    change = patch.change(GROUP, GROUP.member_refs & patch.named_refs)
    whole = patch.apply(GROUP)
    assert (GROUP.member_refs - change.removed_refs) | change.added_refs == whole.member_refs
    assert change.added_refs == whole.member_refs - GROUP.member_refs
    assert change.removed_refs == GROUP.member_refs - whole.member_refs


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "members", "value": [{"value": "a"}]},
        {"op": "remove", "path": "members"},
        {"op": "replace", "path": "displayName", "value": "Everyone"},
        {"op": "replace", "value": {"members": [{"value": "a"}]}},
    ],
)
def test_a_patch_that_replaces_or_empties_the_members_or_renames_takes_the_group_whole(
    operation: dict[str, Any],
) -> None:
    assert not _patch(operation).by_difference
