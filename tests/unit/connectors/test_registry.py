"""A source type's connector and its settings class, two entry points, must agree."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pytest

from dirsync.config.fields import SourceSettings
from dirsync.config.sources import installed, lookup
from dirsync.connectors.azure_ad.settings import AzureAdSourceSettings
from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.connectors.registry import available, create_connector, disagreements
from dirsync.errors import ConfigError


class AcmeSettings(SourceSettings):
    type: Literal["acme"]


class OtherSettings(SourceSettings):
    type: Literal["other"]


class AcmeConnector:
    settings_class: ClassVar[type[SourceSettings]] = OtherSettings

    def __init__(self, settings: Any, *, organization: str) -> None:
        self.settings = settings


class NamelessConnector:
    def __init__(self, settings: Any, *, organization: str) -> None:
        self.settings = settings


def test_every_installed_connector_reads_the_settings_its_source_type_validates_with() -> None:
    assert disagreements() == []
    assert available().keys() == installed().keys() >= {"ldap", "active_directory", "azure_ad"}
    for name, entry in available().items():
        assert entry.load().settings_class is lookup(name, installed())


def test_each_way_two_entry_points_can_disagree_is_named() -> None:
    connectors: dict[str, Any] = {
        "ldap": LdapConnector,
        "acme": AcmeConnector,
        "nameless": NamelessConnector,
        "lonely": LdapConnector,
    }
    source_types: dict[str, Any] = {
        "ldap": LdapSourceSettings,
        "acme": AcmeSettings,
        "nameless": AcmeSettings,
        "orphan": AcmeSettings,
        "lonely_settings": object,
    }
    here = __name__
    assert disagreements(connectors, source_types) == [
        f"acme: the connector's settings_class is {here}.OtherSettings, "
        f"the dirsync.sources entry names {here}.AcmeSettings",
        "lonely: a connector without settings (no dirsync.sources entry)",
        "lonely_settings: settings without a connector (no dirsync.connectors entry)",
        f"nameless: the connector's settings_class is None, "
        f"the dirsync.sources entry names {here}.AcmeSettings",
        "orphan: settings without a connector (no dirsync.connectors entry)",
    ]
    source_types["lonely"] = object
    assert "lonely: source type 'lonely' names <class 'object'>, which is not a " in "\n".join(
        disagreements(connectors, source_types)
    )


def test_a_connector_is_created_only_for_the_settings_it_reads() -> None:
    settings = LdapSourceSettings.model_validate(
        {"type": "ldap", "url": "ldap://127.0.0.1", "base_dn": "dc=example,dc=org"}
    )
    connector = create_connector(settings, organization="acme")
    assert isinstance(connector, LdapConnector) and connector.settings is settings

    stray = AzureAdSourceSettings.model_construct(type="ldap")  # as a second package might
    with pytest.raises(ConfigError) as caught:
        create_connector(stray, organization="acme")
    assert str(caught.value) == (
        "organization[acme].source.type: the 'ldap' connector reads "
        "dirsync.connectors.ldap.settings.LdapSourceSettings, not the "
        "dirsync.connectors.azure_ad.settings.AzureAdSourceSettings the config was validated with"
    )


def test_an_unknown_type_still_lists_the_installed_connectors() -> None:
    with pytest.raises(ConfigError, match=r"no connector 'acme' is installed \(available: "):
        create_connector(AcmeSettings(type="acme"), organization="acme")
