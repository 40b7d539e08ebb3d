"""Config validation: every problem names its key; secrets resolve and never print."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dirsync.config.fields import parse_duration
from dirsync.config.resolve import resolve_secrets
from dirsync.config.secrets import Secret
from dirsync.config.settings import find_config_path, load_config, parse_config
from dirsync.errors import ConfigError
from dirsync.rules import Deprovision, RemovalLimit

ROOT = Path(__file__).resolve().parents[3]


def org(**source: Any) -> dict[str, Any]:
    base = {"type": "ldap", "url": "ldaps://127.0.0.1:636", "base_dn": "dc=example,dc=org"}
    return {"organization": [{"name": "acme", "source": {**base, **source}}]}


def problems(raw: dict[str, Any], tmp_path: Path) -> list[str]:
    """What is wrong with ``raw``, its secrets read as a command acting on every
    organization reads them."""
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(parse_config(raw, base_dir=tmp_path))
    return caught.value.problems


def test_defaults_fit_openldap(tmp_path: Path) -> None:
    config = parse_config(org(), base_dir=tmp_path)
    (acme,) = config.organization
    source = acme.source
    assert source.type == "ldap"
    assert (source.user_object_class, source.group_object_class) == (
        "inetOrgPerson",
        "groupOfNames",
    )
    assert source.external_id_attribute == "entryUUID" and source.tls_verify is True
    rules = acme.rules()
    assert rules.remove_disabled and not rules.overwrite_existing
    assert rules.deprovision == Deprovision.REVOKE
    assert rules.max_removals == RemovalLimit(percent=10)
    assert acme.interval == timedelta(minutes=15)


def test_active_directory_has_its_own_defaults(tmp_path: Path) -> None:
    config = parse_config(org(type="active_directory", url="ldaps://127.0.0.1"), base_dir=tmp_path)
    source = config.organization[0].source
    assert source.external_id_attribute == "objectGUID"
    assert source.username_attribute == "sAMAccountName"


@pytest.mark.parametrize(
    "source",
    [
        org()["organization"][0]["source"],
        {"type": "active_directory", "url": "ldaps://127.0.0.1", "base_dn": "dc=example,dc=org"},
        {"type": "azure_ad", "tenant": "t", "client_id": "c", "client_secret": "s"},
    ],
    ids=["ldap", "active_directory", "azure_ad"],
)
def test_every_directory_source_has_a_read_deadline_parsed_like_the_other_durations(
    tmp_path: Path, source: dict[str, Any]
) -> None:
    def read_deadline(**more: str) -> timedelta:
        raw = {"organization": [{"name": "acme", "source": {**source, **more}}]}
        value: timedelta = parse_config(raw, base_dir=tmp_path).organization[0].source.read_deadline
        return value

    assert read_deadline() == timedelta(minutes=15)
    assert read_deadline(read_deadline="90s") == timedelta(seconds=90)
    raw = {"organization": [{"name": "acme", "source": {**source, "read_deadline": "0"}}]}
    assert any(
        p.startswith("organization[acme].source.read_deadline: ") for p in problems(raw, tmp_path)
    )


def test_unknown_keys_and_bad_values_name_their_key_path(tmp_path: Path) -> None:
    raw = org(bogus=1, url="http://nope", page_size=0)
    raw["organization"][0]["sync"] = {"max_removals": "lots", "deprovision": "delete"}
    raw["organization"][0]["interval"] = "soon"
    raw["stor"] = {}
    found = problems(raw, tmp_path)
    joined = "\n".join(found)
    assert "organization[acme].source.bogus: unknown key" in joined
    assert "organization[acme].source.url:" in joined and "not an LDAP URL" in joined
    assert "organization[acme].source.page_size:" in joined
    assert "organization[acme].sync.max_removals:" in joined
    assert "organization[acme].sync.deprovision:" in joined
    assert "organization[acme].interval:" in joined
    assert "stor: unknown key" in joined


def test_a_missing_required_key_and_an_unknown_type_are_named(tmp_path: Path) -> None:
    raw = org()
    del raw["organization"][0]["source"]["base_dn"]
    assert problems(raw, tmp_path) == ["organization[acme].source.base_dn: required key is missing"]
    found = problems(org(type="novell"), tmp_path)
    assert found[0].startswith("organization[acme].source.type:") and "ldap" in found[0]


def test_duplicate_organization_names_are_refused(tmp_path: Path) -> None:
    raw = org()
    raw["organization"].append(raw["organization"][0])
    assert any("used twice" in p for p in problems(raw, tmp_path))


def test_unbalanced_filters_are_refused_and_bare_ones_get_parentheses(tmp_path: Path) -> None:
    assert any("unbalanced" in p for p in problems(org(user_filter="(&(a=b)"), tmp_path))
    config = parse_config(org(user_filter="employeeType=staff"), base_dir=tmp_path)
    assert config.organization[0].source.user_filter == "(employeeType=staff)"


def test_secrets_come_from_a_file_an_environment_variable_or_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    config = parse_config(org(bind_password_file="pw"), base_dir=tmp_path)
    assert config.organization[0].source.password == Secret("from-file")

    monkeypatch.setenv("ACME_PW", "from-env")
    config = parse_config(org(bind_password="${ACME_PW}"), base_dir=tmp_path)
    assert config.organization[0].source.password == Secret("from-env")

    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "acme").write_text("from-systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = parse_config(org(bind_password_file="acme"), base_dir=tmp_path)
    assert config.organization[0].source.password == Secret("from-systemd")


def test_a_secret_never_shows_in_repr_or_errors(tmp_path: Path) -> None:
    config = parse_config(org(bind_password="canary-secret-123"), base_dir=tmp_path)
    assert "canary-secret-123" not in repr(config) and "canary-secret-123" not in str(config)
    with pytest.raises(ConfigError) as caught:
        parse_config(
            org(bind_password="canary-secret-123", bind_password_file="x"), base_dir=tmp_path
        )
    assert "canary-secret-123" not in str(caught.value)
    assert any("not both" in p for p in caught.value.problems)
    found = problems(org(bind_password_file="missing"), tmp_path)
    assert any("bind_password_file: file missing does not exist" in p for p in found)


def test_a_missing_secret_file_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    assert problems(org(bind_password_file="acme"), tmp_path) == [
        "organization[acme].source.bind_password_file: file acme does not exist (looked for "
        f"{tmp_path / 'creds' / 'acme'} and {tmp_path / 'acme'})"
    ]


def test_secrets_are_read_only_for_the_organizations_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    (tmp_path / "acme").write_text("acme-secret\n")
    raw = org(bind_password_file="acme")
    raw["organization"].append({**raw["organization"][0], "name": "beta"})
    raw["organization"][1]["source"] = {
        **raw["organization"][0]["source"],
        "bind_password_file": "beta",
    }
    config = parse_config(raw, base_dir=tmp_path)  # loading reads no secret
    resolve_secrets(config, ["acme"])
    assert config.get("acme").source.password == Secret("acme-secret")
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(config, ["acme", "beta"])
    assert caught.value.problems == [
        "organization[beta].source.bind_password_file: file beta does not exist "
        f"(looked for {tmp_path / 'beta'})"
    ]


def test_a_missing_environment_variable_is_a_config_error(tmp_path: Path) -> None:
    found = problems(org(bind_password="${DIRSYNC_TEST_UNSET_VAR}"), tmp_path)
    assert found == [
        "organization[acme].source.bind_password: environment variable DIRSYNC_TEST_UNSET_VAR "
        "is not set"
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), (90, 90)]
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "-5s", 0, True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_max_removals_takes_a_count_or_a_percentage(tmp_path: Path) -> None:
    raw = org()
    raw["organization"][0]["sync"] = {"max_removals": 7}
    assert (
        parse_config(raw, base_dir=tmp_path).organization[0].rules().max_removals.limit(1000) == 7
    )
    raw["organization"][0]["sync"] = {"max_removals": "25%"}
    limit = parse_config(raw, base_dir=tmp_path).organization[0].rules().max_removals
    assert limit.limit(100) == 25


def test_config_files_are_found_in_the_documented_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIRSYNC_CONFIG", str(tmp_path / "env.toml"))
    assert find_config_path("explicit.toml") == Path("explicit.toml")
    assert find_config_path(None) == tmp_path / "env.toml"


def test_a_broken_toml_file_is_a_config_error_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[organization\nname = ")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_the_example_config_documents_valid_keys(tmp_path: Path) -> None:
    raw = tomllib.loads((ROOT / "config.example.toml").read_text())
    # the example points at files on a real install; everything else must validate
    found = problems(raw, tmp_path)
    assert all(("ca_file" in p or "bind_password_file" in p) for p in found), found


def test_the_store_url_comes_from_a_credential_and_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+psycopg://dirsync:canary-pw-77@db.example/dirsync"
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "store-url").write_text(url + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))

    config = parse_config({**org(), "store": {"url_file": "store-url"}}, base_dir=tmp_path)

    assert config.store.url == url
    with pytest.raises(ConfigError) as caught:
        parse_config({**org(), "store": {"url_file": "absent"}}, base_dir=tmp_path)
    assert caught.value.problems == [
        f"store: url_file: file absent does not exist (looked for {credentials / 'absent'} "
        f"and {tmp_path / 'absent'})"
    ]
    with pytest.raises(ConfigError) as caught:
        parse_config({**org(), "store": {"url": url, "url_file": "store-url"}}, base_dir=tmp_path)
    assert caught.value.problems == ["store: give the store's url or its url_file, not both"]
    assert "canary-pw-77" not in str(caught.value)
