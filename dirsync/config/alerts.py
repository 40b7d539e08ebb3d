"""``[[alert]]``: where the daemon reports an organization's incidents and their recovery.

``type = "webhook"``: ``url`` (https, or http to loopback), optional ``secret_file`` (sent as
``Authorization: Bearer``) and ``ca_file``. ``type = "email"``: ``smtp_url`` (``smtp://`` with
STARTTLS when the server offers it, ``smtp+starttls://`` requiring it, ``smtps://``), optional
``username`` and ``password_file``, ``ca_file``, ``from`` and ``to``. Both take
``organizations`` (default: all) and ``on`` (default: every event).

An alert table is validated by the class its ``type`` names, as a source table is, so that a
problem reads ``alert[0].url: ...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticKnownError

from dirsync.config.fields import FileSecret, Settings, existing_file

#: what an alert can be sent for
Event = Literal["failed", "refused", "stale", "recovered"]
EVENTS: tuple[Event, ...] = ("failed", "refused", "stale", "recovered")
_LOOPBACK = re.compile(r"^http://(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?(/|$)", re.I)
_SMTP = re.compile(r"^(smtp|smtps|smtp\+starttls)://[^/@\s]+(:\d{1,5})?/?$", re.I)


class AlertSettings(Settings):
    type: str
    #: the organizations it reports on; empty = every one
    organizations: tuple[str, ...] = ()
    on: tuple[Event, ...] = EVENTS
    ca_file: Path | None = None

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return existing_file(value, info)

    def covers(self, organization: str, event: str) -> bool:
        return event in self.on and (not self.organizations or organization in self.organizations)

    @property
    def label(self) -> str:
        """How logs name this alert (never a secret)."""
        return self.type


class WebhookAlert(AlertSettings):
    type: Literal["webhook"]
    url: str
    secret_file: FileSecret = None

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        text = value.strip()
        if not (text.lower().startswith("https://") or _LOOPBACK.match(text)):
            raise ValueError(f"{value!r} is not an https:// URL (http:// only to loopback)")
        return text

    @property
    def label(self) -> str:
        return f"webhook {self.url.split('?', 1)[0]}"


class EmailAlert(AlertSettings):
    type: Literal["email"]
    smtp_url: str
    sender: str = Field(alias="from")
    to: tuple[str, ...] = Field(min_length=1)
    username: str | None = None
    password_file: FileSecret = None

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        if not _SMTP.match(value.strip()):
            raise ValueError(
                f"{value!r} is not an SMTP URL; use smtp://host[:port], "
                "smtp+starttls://host[:port] or smtps://host[:port]"
            )
        return value.strip()

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("sender", "to")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        for address in (value,) if isinstance(value, str) else value:
            if not re.match(r"^[^@\s<>]+@[^@\s<>]+$", address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @property
    def label(self) -> str:
        return f"email to {', '.join(self.to)}"


ALERT_TYPES: dict[str, type[AlertSettings]] = {"webhook": WebhookAlert, "email": EmailAlert}


def validate_alert(value: Any, info: ValidationInfo) -> AlertSettings:
    """An ``[[alert]]`` table validated by the class its ``type`` names."""
    if isinstance(value, AlertSettings):
        return value
    if not isinstance(value, dict):
        raise PydanticKnownError("model_attributes_type")
    kind = value.get("type")
    settings_class = ALERT_TYPES.get(kind) if isinstance(kind, str) else None
    if settings_class is None:
        problem = PydanticCustomError(
            "alert_type", "{problem}", {"problem": 'must be one of "webhook", "email"'}
        )
        error = InitErrorDetails(type=problem, loc=("type",), input=value.get("type"))
        raise ValidationError.from_exception_data("AlertSettings", [error]) from None
    return settings_class.model_validate(value, context=info.context)


#: a config's ``[[alert]]`` entry
Alert = Annotated[SerializeAsAny[AlertSettings], BeforeValidator(validate_alert)]
