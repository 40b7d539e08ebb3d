"""A source is validated by the class its type names: installed types and a plug-in's alike."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, Literal

import pytest

from dirsync.config.fields import InlineSecret, SourceSettings
from dirsync.config.secrets import Secret
from dirsync.config.settings import OrganizationSettings, parse_config
from dirsync.config.sources import GROUP, SourceTypes, installed, lookup
from dirsync.connectors.active_directory.settings import ActiveDirectorySourceSettings
from dirsync.connectors.azure_ad.settings import AzureAdSourceSettings
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.errors import ConfigError


class AcmeDirectorySettings(SourceSettings):
    """What a third-party package would ship beside its connector."""

    type: Literal["acme_directory"]
    endpoint: str
    token: InlineSecret = None
    page_size: int = 100


LDAP = {"type": "ldap", "url": "ldap://127.0.0.1:389", "base_dn": "dc=example,dc=org"}
ACME = {"type": "acme_directory", "endpoint": "https://directory.acme.example"}


def config(*sources: dict[str, Any]) -> dict[str, Any]:
    return {"organization": [{"name": f"org{i}", "source": s} for i, s in enumerate(sources)]}


def problems(raw: dict[str, Any], tmp_path: Path, sources: SourceTypes | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir=tmp_path, sources=sources)
    return caught.value.problems


def with_acme() -> dict[str, Any]:
    return {**installed(), "acme_directory": AcmeDirectorySettings}


def test_the_installed_source_types_name_each_familys_settings_class() -> None:
    found = {name: entry.load() for name, entry in installed().items()}
    assert (
        found.items()
        >= {
            "ldap": LdapSourceSettings,
            "active_directory": ActiveDirectorySourceSettings,
            "azure_ad": AzureAdSourceSettings,
        }.items()
    )
    assert all(entry.group == GROUP for entry in installed().values())


def test_a_plug_in_source_type_is_validated_by_its_own_class(tmp_path: Path) -> None:
    parsed = parse_config(
        config(LDAP, {**ACME, "token": "t0ken"}), base_dir=tmp_path, sources=with_acme()
    )
    ldap, acme = (org.source for org in parsed.organization)
    assert type(ldap) is LdapSourceSettings
    assert isinstance(acme, AcmeDirectorySettings)
    assert (acme.endpoint, acme.token, acme.page_size) == (ACME["endpoint"], Secret("t0ken"), 100)
    dumped = parsed.model_dump()["organization"][1]["source"]
    assert dumped["endpoint"] == ACME["endpoint"]  # its own keys, not only the base's ``type``


def test_a_plug_ins_problems_name_their_key_paths_as_the_built_in_types_do(
    tmp_path: Path,
) -> None:
    raw = config({"type": "acme_directory", "page_size": "many", "colour": "red"})
    assert problems(raw, tmp_path, with_acme()) == [
        "organization[org0].source.endpoint: required key is missing",
        "organization[org0].source.page_size: "
        "Input should be a valid integer, unable to parse string as an integer",
        "organization[org0].source.colour: unknown key",
    ]


def test_a_key_named_like_a_source_type_keeps_its_place_in_the_path(tmp_path: Path) -> None:
    raw = config({**LDAP, "ldap": 1}, {**LDAP, "type": "active_directory", "azure_ad": {"a": 1}})
    assert problems(raw, tmp_path) == [
        "organization[org0].source.ldap: unknown key",
        "organization[org1].source.azure_ad: unknown key",
    ]


def test_an_unknown_type_lists_the_types_that_exist(tmp_path: Path) -> None:
    assert problems(config({"type": "novell"}), tmp_path) == [
        'organization[org0].source.type: must be one of "ldap", "active_directory", '
        '"azure_ad", "scim"'
    ]
    # dirsync's own types first, as the message always listed them, then the others by name
    sources = {**with_acme(), "a_directory": AcmeDirectorySettings}
    assert problems(config({"type": 5}), tmp_path, sources) == [
        'organization[org0].source.type: must be one of "ldap", "active_directory", '
        '"azure_ad", "scim", "a_directory", "acme_directory"'
    ]
    # without the plug-in installed, its type is as unknown as any other
    assert "acme_directory" not in problems(config(ACME), tmp_path)[0]
    assert problems(config(LDAP), tmp_path, {}) == [
        "organization[org0].source.type: no source type is installed"
    ]


def test_a_source_without_a_type_or_that_is_no_table_is_named(tmp_path: Path) -> None:
    assert problems(config({"url": "ldap://x"}), tmp_path)[0].startswith(
        "organization[org0].source.type: must be one of"
    )
    assert problems(config("ldap"), tmp_path) == [  # type: ignore[arg-type]
        "organization[org0].source: "
        "Input should be a valid dictionary or object to extract fields from"
    ]


def test_a_type_is_loaded_only_when_a_config_uses_it(tmp_path: Path) -> None:
    broken = EntryPoint(name="broken", value="dirsync_no_such_module:Settings", group=GROUP)
    sources = {**installed(), "broken": broken}
    parsed = parse_config(config(LDAP), base_dir=tmp_path, sources=sources)
    assert parsed.organization[0].source.type == "ldap"
    (problem,) = problems(config({"type": "broken"}), tmp_path, sources)
    assert problem.startswith(
        "organization[org0].source.type: source type 'broken' is installed but its settings "
        "do not load: ModuleNotFoundError("
    )


def test_a_type_must_name_a_source_settings_class() -> None:
    class NotSettings:
        pass

    with pytest.raises(ValueError, match=r"'odd' names .*NotSettings.*not a SourceSettings"):
        lookup("odd", {"odd": NotSettings})  # type: ignore[dict-item]
    assert lookup("ldap", installed()) is LdapSourceSettings


def test_organization_settings_alone_use_the_installed_types_and_keep_an_instance() -> None:
    org = OrganizationSettings.model_validate({"name": "acme", "source": LDAP})
    assert type(org.source) is LdapSourceSettings
    settings = LdapSourceSettings.model_validate(LDAP)
    assert OrganizationSettings(name="acme", source=settings).source is settings


def test_validating_a_config_imports_no_directory_or_store_library(tmp_path: Path) -> None:
    sources = [
        LDAP,
        {**LDAP, "type": "active_directory", "url": "ldaps://127.0.0.1"},
        {"type": "azure_ad", "tenant": "contoso", "client_id": "app", "client_secret": "s"},
    ]
    body = f"""
import json, sys
from pathlib import Path
from dirsync.config.settings import parse_config
parse_config(json.loads({json.dumps(json.dumps(config(*sources)))}), base_dir=Path("."))
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""
    result = subprocess.run(
        [sys.executable, "-c", body], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    loaded = set(json.loads(result.stdout))
    assert "dirsync" in loaded
    assert not loaded & {"ldap3", "httpx", "msal", "sqlalchemy"}


def test_the_config_package_imports_no_connector() -> None:
    # imports point down, connectors -> config: a source type's class arrives by entry point
    body = """
import importlib, json, pkgutil, sys
import dirsync.config as package
for info in pkgutil.walk_packages(package.__path__, "dirsync.config."):
    importlib.import_module(info.name)
print(json.dumps(sorted(name for name in sys.modules if name.startswith("dirsync."))))
"""
    result = subprocess.run(
        [sys.executable, "-c", body], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    assert "dirsync.config.sources" in loaded
    assert not [name for name in loaded if name.startswith("dirsync.connectors")]
