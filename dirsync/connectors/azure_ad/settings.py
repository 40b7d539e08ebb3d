"""``[organization.source]`` with ``type = "azure_ad"``: a tenant, an app registration's
credentials and Graph's filters, validated.

The config validates a source with this class before any connector exists, so this module
imports pydantic and ``dirsync.config`` only, never msal or httpx.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dirsync.config.fields import Duration, FileSecret, InlineSecret, SourceSettings, existing_file


class AzureAdSourceSettings(SourceSettings):
    type: Literal["azure_ad"]
    tenant: str
    client_id: str
    client_secret: InlineSecret = None
    client_secret_file: FileSecret = None
    certificate_file: Path | None = None
    certificate_passphrase: InlineSecret = None
    authority: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    ca_file: Path | None = None
    proxy: str | None = None
    user_filter: str = ""
    group_filter: str = ""
    include_guests: bool = False
    email_attribute: Literal["mail", "userPrincipalName"] = "mail"
    #: where the email comes from when email_attribute is empty; "" = nowhere
    email_fallback: Literal["userPrincipalName", "mail", ""] = "userPrincipalName"
    page_size: int = Field(default=999, ge=1, le=999)
    timeout: Duration = timedelta(seconds=30)
    #: a deadline for the whole read (tokens and every page), on top of ``timeout`` per
    #: request: a server that trickles bytes cannot hold a run longer than this
    read_deadline: Duration = timedelta(minutes=15)
    #: attempts per request when Graph throttles (429) or is unavailable (503/504)
    max_attempts: int = Field(default=6, ge=1, le=20)

    @field_validator("user_filter", "group_filter")
    @classmethod
    def _group_name_filter(cls, value: str) -> str:
        if value and not re.match(r"^(include|exclude):", value.strip()):
            raise ValueError('use "include:Name A,Name B" or "exclude:Name A,Name B"')
        return value.strip()

    @field_validator("tenant", "client_id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip() or "/" in value:
            raise ValueError(f"{value!r} is not a tenant or client id")
        return value.strip()

    @field_validator("authority", "graph_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        text = value.strip().rstrip("/")
        if not re.match(r"^https://[^/\s]+(/[^\s]*)?$", text, re.IGNORECASE):
            raise ValueError(f"{value!r} is not an https:// URL")
        return text

    @field_validator("ca_file", "certificate_file")
    @classmethod
    def _file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return existing_file(value, info)

    @model_validator(mode="after")
    def _one_credential(self) -> AzureAdSourceSettings:
        given = [
            key
            for key in ("client_secret", "client_secret_file", "certificate_file")
            if getattr(self, key) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of client_secret, client_secret_file and certificate_file"
            )
        return self
