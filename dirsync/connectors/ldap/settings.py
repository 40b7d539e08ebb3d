"""``[organization.source]`` with ``type = "ldap"``: what an LDAP source may say, validated.

The config validates a source with this class (the ``dirsync.sources`` entry point ``ldap``)
before any connector exists, so this module imports pydantic and ``dirsync.config`` only,
never the transport.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dirsync.config.fields import Duration, FileSecret, InlineSecret, SourceSettings, existing_file
from dirsync.config.secrets import Secret


class LdapSourceSettings(SourceSettings):
    type: Literal["ldap"]
    url: str
    ca_file: Path | None = None
    tls_verify: bool = True
    start_tls: bool = False
    bind_dn: str | None = None
    bind_password: InlineSecret = None
    bind_password_file: FileSecret = None
    #: a bind with a password over unencrypted ldap:// sends it in clear: only when allowed
    allow_plain_ldap: bool = False
    base_dn: str
    user_path: str = ""
    group_path: str = ""
    user_object_class: str = "inetOrgPerson"
    group_object_class: str = "groupOfNames"
    user_filter: str = ""
    group_filter: str = ""
    #: an LDAP filter that selects the disabled users, e.g. "(pwdAccountLockedTime=*)"
    disabled_filter: str = ""
    email_attribute: str = "mail"
    email_suffix: str = ""
    username_attribute: str = "uid"
    name_attribute: str = "displayName"
    member_attribute: str = "member"
    group_name_attribute: str = "cn"
    external_id_attribute: str = "entryUUID"
    page_size: int = Field(default=500, ge=1, le=100_000)
    timeout: Duration = timedelta(seconds=30)
    #: a deadline for the whole read (connect, bind and every search), on top of ``timeout``
    #: per wait: a server that trickles bytes cannot hold a run longer than this
    read_deadline: Duration = timedelta(minutes=15)
    #: how a run after a complete read reads changes only: "auto" (syncrepl where the server
    #: offers it and the external id is entryUUID, else modify_timestamp), "syncrepl",
    #: "modify_timestamp", or "off" (every run reads everything)
    incremental: Literal["auto", "syncrepl", "modify_timestamp", "off"] = "auto"
    #: modify_timestamp mode: how often an id-only scan looks for deleted entries
    deletion_scan_interval: Duration = timedelta(hours=1)

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        if not re.match(r"^ldaps?://[^/\s]+/?$", value.strip(), re.IGNORECASE):
            raise ValueError(
                f"{value!r} is not an LDAP URL; use ldap://host[:port] or ldaps://host[:port]"
            )
        return value.strip()

    @field_validator("user_filter", "group_filter", "disabled_filter")
    @classmethod
    def _filter_shape(cls, value: str) -> str:
        text = value.strip()
        if not text:
            return ""
        if not text.startswith("("):
            text = f"({text})"
        depth = 0
        for char in text:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                break
        if depth != 0:
            raise ValueError(f"{value!r} is not a valid LDAP filter: unbalanced parentheses")
        return text

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return existing_file(value, info)

    @model_validator(mode="after")
    def _one_password(self) -> LdapSourceSettings:
        if self.bind_password is not None and self.bind_password_file is not None:
            raise ValueError("set bind_password or bind_password_file, not both")
        if self.start_tls and any(u.lower().startswith("ldaps://") for u in self.urls):
            raise ValueError("start_tls is for ldap:// URLs; ldaps:// is already encrypted")
        if self.incremental == "syncrepl" and self.external_id_attribute.lower() != "entryuuid":
            raise ValueError(
                'incremental = "syncrepl" needs external_id_attribute = "entryUUID" '
                "(syncrepl names deleted entries by entryUUID only)"
            )
        return self

    @model_validator(mode="after")
    def _encrypted_binds(self) -> LdapSourceSettings:
        """A password never crosses the network in clear unless the config says it may; an
        anonymous read (no password) of a plain ``ldap://`` URL sends nothing secret."""
        plain = [u for u in self.urls if u.lower().startswith("ldap://")]
        secret = self.password is not None
        if plain and secret and not self.start_tls and not self.allow_plain_ldap:
            raise ValueError(
                f"{plain[0]} is unencrypted LDAP: the bind password would cross the network in "
                "clear; use ldaps:// or start_tls = true, or set allow_plain_ldap = true"
            )
        return self

    @property
    def urls(self) -> tuple[str, ...]:
        """The servers to try, in order (one for OpenLDAP; Active Directory may list more)."""
        return (self.url,)

    @property
    def password(self) -> Secret | None:
        return self.bind_password if self.bind_password is not None else self.bind_password_file

    @property
    def uses_tls(self) -> bool:
        return self.start_tls or self.url.lower().startswith("ldaps://")
