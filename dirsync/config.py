"""TOML configuration → frozen, validated settings.

Every problem is reported with the path of its key, e.g.
``organization[acme].source.url: field required``, and never with a secret's value.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dirsync.errors import ConfigError, NotFound
from dirsync.rules import Deprovision, RemovalLimit, SyncRules
from dirsync.secrets import Secret, SecretResolutionError, resolve_file, resolve_inline

DEFAULT_CONFIG_PATHS = (Path("/etc/dirsync/config.toml"), Path("dirsync.toml"))
CONFIG_ENV = "DIRSYNC_CONFIG"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> timedelta:
    """``"15m"``, ``"30s"``, ``"1h"``, ``"1d"``, ``"500ms"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError('must be a duration such as "30s", "15m" or "1h"')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f'{value!r} is not a duration; use e.g. "30s", "15m" or "1h"')
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return timedelta(seconds=seconds)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: f"{d.total_seconds():g}s", return_type=str),
]


def _inline_secret(value: object) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        return resolve_inline(value)
    except SecretResolutionError as exc:
        raise ValueError(str(exc)) from None


InlineSecret = Annotated[Secret | None, BeforeValidator(_inline_secret)]


def _file_secret(value: object, info: ValidationInfo) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a file path")
    base_dir = (info.context or {}).get("base_dir")
    try:
        return resolve_file(value, base_dir=base_dir)
    except SecretResolutionError as exc:
        raise ValueError(str(exc)) from None


FileSecret = Annotated[Secret | None, BeforeValidator(_file_secret)]


def _parse_max_removals(value: object) -> RemovalLimit:
    if isinstance(value, RemovalLimit):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return RemovalLimit(count=value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                percent = -1.0
            if 0 <= percent <= 100:
                return RemovalLimit(percent=percent)
        elif text.isdigit():
            return RemovalLimit(count=int(text))
    raise ValueError(f'{value!r} is neither a count (10) nor a percentage ("10%")')


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class LdapSourceSettings(_Settings):
    type: Literal["ldap"]
    url: str
    ca_file: Path | None = None
    tls_verify: bool = True
    start_tls: bool = False
    bind_dn: str | None = None
    bind_password: InlineSecret = None
    bind_password_file: FileSecret = None
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
    #: how a run after a complete read reads changes only: "auto" (syncrepl where the server
    #: offers it and the external id is entryUUID, else modify_timestamp), "syncrepl",
    #: "modify_timestamp", or "off" (every run reads everything)
    incremental: Literal["auto", "syncrepl", "modify_timestamp", "off"] = "auto"
    #: modify_timestamp mode: how often an id-only scan looks for deleted entries
    full_sync_interval: Duration = timedelta(hours=1)

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
        if value is None:
            return None
        base_dir = (info.context or {}).get("base_dir") or Path.cwd()
        path = value if value.is_absolute() else base_dir / value
        if not path.is_file():
            raise ValueError(f"file {value} does not exist")
        return path

    @model_validator(mode="after")
    def _one_password(self) -> LdapSourceSettings:
        if self.bind_password is not None and self.bind_password_file is not None:
            raise ValueError("set bind_password or bind_password_file, not both")
        if self.start_tls and self.url.lower().startswith("ldaps://"):
            raise ValueError("start_tls is for ldap:// URLs; ldaps:// is already encrypted")
        if self.incremental == "syncrepl" and self.external_id_attribute.lower() != "entryuuid":
            raise ValueError(
                'incremental = "syncrepl" needs external_id_attribute = "entryUUID" '
                "(syncrepl names deleted entries by entryUUID only)"
            )
        return self

    @property
    def password(self) -> Secret | None:
        return self.bind_password if self.bind_password is not None else self.bind_password_file

    @property
    def uses_tls(self) -> bool:
        return self.start_tls or self.url.lower().startswith("ldaps://")


class ActiveDirectorySourceSettings(LdapSourceSettings):
    type: Literal["active_directory"]  # type: ignore[assignment]  # narrows the parent's tag
    user_object_class: str = "user"
    group_object_class: str = "group"
    username_attribute: str = "sAMAccountName"
    external_id_attribute: str = "objectGUID"


class AzureAdSourceSettings(_Settings):
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
    email_attribute: str = "mail"
    page_size: int = Field(default=999, ge=1, le=999)
    timeout: Duration = timedelta(seconds=30)

    @field_validator("user_filter", "group_filter")
    @classmethod
    def _group_name_filter(cls, value: str) -> str:
        if value and not re.match(r"^(include|exclude):", value.strip()):
            raise ValueError('use "include:Name A,Name B" or "exclude:Name A,Name B"')
        return value.strip()

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


SourceSettings = Annotated[
    LdapSourceSettings | ActiveDirectorySourceSettings | AzureAdSourceSettings,
    Field(discriminator="type"),
]


class SyncSettings(_Settings):
    users: bool = True
    groups: bool = True
    remove_disabled: bool = True
    overwrite_existing: bool = False
    deprovision: Literal["revoke", "remove"] = "revoke"
    max_removals: Annotated[RemovalLimit, BeforeValidator(_parse_max_removals)] = RemovalLimit(
        percent=10
    )


class CollectionSettings(_Settings):
    name: str = Field(min_length=1)
    external_id: str = Field(min_length=1)
    groups: tuple[str, ...] = ()
    permission: Literal["read", "read_hide_passwords", "edit", "manage"] = "read"


class OrganizationSettings(_Settings):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    seats: int = Field(default=0, ge=0)
    interval: Duration = timedelta(minutes=15)
    source: SourceSettings
    sync: SyncSettings = SyncSettings()
    collection: tuple[CollectionSettings, ...] = ()

    def rules(self) -> SyncRules:
        return SyncRules(
            users=self.sync.users,
            groups=self.sync.groups,
            remove_disabled=self.sync.remove_disabled,
            overwrite_existing=self.sync.overwrite_existing,
            deprovision=Deprovision(self.sync.deprovision),
            max_removals=self.sync.max_removals,
            seats=self.seats,
        )


def _default_store_url() -> str:
    state_dir = os.environ.get("STATE_DIRECTORY", "/var/lib/dirsync").split(":")[0]
    return f"sqlite:///{Path(state_dir) / 'dirsync.db'}"


class StoreSettings(_Settings):
    url: str = Field(default_factory=_default_store_url)


class LoggingSettings(_Settings):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class Config(_Settings):
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    organization: tuple[OrganizationSettings, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for org in self.organization:
            if org.name in seen:
                raise ValueError(f"organization name {org.name!r} is used twice")
            seen.add(org.name)
        return self

    def get(self, name: str) -> OrganizationSettings:
        for org in self.organization:
            if org.name == name:
                return org
        known = ", ".join(o.name for o in self.organization) or "none"
        raise NotFound(f"no organization named {name!r} in the config (known: {known})")

    def select(self, names: tuple[str, ...] | list[str]) -> tuple[OrganizationSettings, ...]:
        if not names:
            return self.organization
        return tuple(self.get(name) for name in names)


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.exists():
            return candidate
    return DEFAULT_CONFIG_PATHS[0]


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    config_path = find_config_path(path)
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("the config file does not exist", path=str(config_path)) from None
    except OSError as exc:
        message = f"cannot read the config file: {exc.strerror}"
        raise ConfigError(message, path=str(config_path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(config_path)) from None
    return parse_config(raw, base_dir=config_path.parent.resolve(), path=str(config_path))


def parse_config(raw: dict[str, Any], *, base_dir: Path, path: str = "<config>") -> Config:
    try:
        return Config.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, raw), path=path) from None


def _describe(exc: ValidationError, raw: dict[str, Any]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        key = _key_path(error["loc"], raw)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "union_tag_invalid":
            message = 'must be one of "ldap", "active_directory", "azure_ad"'
        problems.append(f"{key}: {message}" if key else message)
    return problems


def _key_path(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    """``('organization', 0, 'source', 'ldap', 'url')`` → ``organization[acme].source.url``."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label: str = str(item)
            entry = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                label = entry["name"]
            parts[-1:] = [f"{parts[-1]}[{label}]"] if parts else [f"[{label}]"]
            node = entry
            continue
        if item in {"ldap", "active_directory", "azure_ad"} and parts and parts[-1] == "source":
            continue  # pydantic's discriminator tag, not a key the user wrote
        parts.append(str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)
