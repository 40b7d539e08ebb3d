"""A bind password never crosses the network in clear unless the config says so: plain
``ldap://`` with credentials is a config error for every LDAP-family source (OpenLDAP and
Active Directory alike) unless ``allow_plain_ldap = true``; LDAPS, StartTLS and an anonymous
read are fine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dirsync.cli.main import cli
from dirsync.config.settings import parse_config
from dirsync.errors import ConfigError

TYPES = ["ldap", "active_directory"]
REFUSAL = (
    "organization[acme].source: ldap://dc1.acme.example is unencrypted LDAP: the bind password "
    "would cross the network in clear; use ldaps:// or start_tls = true, or set "
    "allow_plain_ldap = true"
)


def source(tmp_path: Path, kind: str, **settings: Any) -> Any:
    raw = {
        "organization": [
            {"name": "acme", "source": {"type": kind, "base_dn": "DC=acme,DC=example", **settings}}
        ]
    }
    return parse_config(raw, base_dir=tmp_path).organization[0].source


@pytest.mark.parametrize("kind", TYPES)
def test_plain_ldap_with_a_password_is_refused_unless_allowed(tmp_path: Path, kind: str) -> None:
    (tmp_path / "pw").write_text("secret\n")
    for password in ({"bind_password": "secret"}, {"bind_password_file": "pw"}):
        with pytest.raises(ConfigError) as caught:
            source(tmp_path, kind, url="ldap://dc1.acme.example", bind_dn="cn=r", **password)
        assert caught.value.problems == [REFUSAL]
        assert "secret" not in str(caught.value)
        allowed = source(
            tmp_path, kind, url="ldap://dc1.acme.example", allow_plain_ldap=True, **password
        )
        assert allowed.allow_plain_ldap
        assert source(tmp_path, kind, url="ldap://dc1.acme.example", start_tls=True, **password)
        assert source(tmp_path, kind, url="ldaps://dc1.acme.example", **password)


@pytest.mark.parametrize("kind", TYPES)
def test_an_anonymous_read_of_plain_ldap_sends_nothing_secret_and_is_accepted(
    tmp_path: Path, kind: str
) -> None:
    assert source(tmp_path, kind, url="ldap://dc1.acme.example").password is None


def test_one_plain_domain_controller_in_a_list_is_enough_to_refuse(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        source(
            tmp_path,
            "active_directory",
            url=["ldaps://dc2.acme.example", "ldap://dc1.acme.example"],
            bind_password="secret",
        )
    assert caught.value.problems == [REFUSAL]


def test_config_check_says_why_plain_ldap_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "dirsync.toml"
    config.write_text(
        '[[organization]]\nname = "acme"\n[organization.source]\ntype = "ldap"\n'
        'url = "ldap://dc1.acme.example"\nbase_dn = "dc=acme,dc=example"\n'
        'bind_dn = "cn=reader,dc=acme,dc=example"\nbind_password = "${NOT_READ}"\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "config", "check"])
    assert result.exit_code == 2
    assert result.stderr == f"{config}: 1 problem(s)\n  {REFUSAL}\n"
