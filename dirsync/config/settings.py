"""TOML configuration → frozen, validated settings.

Every problem is reported with the path of its key, e.g.
``organization[acme].source.url: field required``, and never with a secret's value.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dirsync.config.alerts import ALERT_TYPES, Alert, AlertSettings
from dirsync.config.audit import exposure_warnings
from dirsync.config.fields import (
    Duration,
    OptionalDuration,
    Settings,
    SourceSettings,
    check_cron,
    check_timezone,
    existing_file,
    parse_max_removals,
)
from dirsync.config.file_safety import CONFIG_FILE_LIMIT, UnsafeFile, read_checked_file
from dirsync.config.secrets import SecretResolutionError, resolve_file
from dirsync.config.sources import SourceTypes, installed, lookup, validate_source
from dirsync.errors import ConfigError, NotFound
from dirsync.organization import Permission
from dirsync.rules import CollectionRule, Deprovision, RemovalLimit, SyncRules

DEFAULT_CONFIG_PATHS = (Path("/etc/dirsync/config.toml"), Path("dirsync.toml"))
CONFIG_ENV = "DIRSYNC_CONFIG"


class SyncSettings(Settings):
    users: bool = True
    groups: bool = True
    remove_disabled: bool = True
    overwrite_existing: bool = False
    deprovision: Literal["revoke", "remove"] = "revoke"
    max_removals: Annotated[RemovalLimit, BeforeValidator(parse_max_removals)] = RemovalLimit(
        percent=10
    )
    min_source_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    #: invitations pending longer than this are sent again by the sync; absent = never
    reinvite_after: Duration | None = None
    #: a re-created directory user (new external id, same address) takes over the member the
    #: sync deprovisioned when its entry was deleted; never an active or admin-revoked one
    relink_recreated: bool = True
    #: a pushed (SCIM) organization's max_removals counts the deprovisionings this long back
    removal_window: Duration = timedelta(hours=1)


class CollectionSettings(Settings):
    name: str = Field(min_length=1)
    external_id: str = Field(min_length=1)
    groups: tuple[str, ...] = ()
    permission: Literal["read", "read_hide_passwords", "edit", "manage"] = "read"


class OrganizationSettings(Settings):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    seats: int = Field(default=0, ge=0)
    interval: Duration = timedelta(minutes=15)
    #: a standard crontab expression instead of ``interval``; ``interval`` then caps retries
    cron: Annotated[str | None, BeforeValidator(check_cron)] = None
    #: the IANA time zone of ``cron``; absent = ``[daemon] timezone`` (filled in by Config)
    timezone: Annotated[str | None, BeforeValidator(check_timezone)] = None
    #: random delay added to each scheduled run; absent = a tenth of the interval, at most 60s
    jitter: OptionalDuration | None = None
    #: a full re-read (ignoring the delta cursor) at the daemon's start and this often
    full_sync_interval: Duration | None = None
    #: validated by the class that its ``type`` names (``dirsync.config.sources``)
    source: Annotated[SerializeAsAny[SourceSettings], BeforeValidator(validate_source)]
    sync: SyncSettings = SyncSettings()
    collection: tuple[CollectionSettings, ...] = ()

    @model_validator(mode="after")
    def _unique_collection_ids(self) -> OrganizationSettings:
        ids = [c.external_id for c in self.collection]
        if twice := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"collection external_id {twice[0]!r} is used twice")
        return self

    def rules(self) -> SyncRules:
        return SyncRules(
            users=self.sync.users,
            groups=self.sync.groups,
            remove_disabled=self.sync.remove_disabled,
            overwrite_existing=self.sync.overwrite_existing,
            deprovision=Deprovision(self.sync.deprovision),
            max_removals=self.sync.max_removals,
            seats=self.seats,
            min_source_ratio=self.sync.min_source_ratio,
            collections=tuple(
                CollectionRule(
                    name=c.name,
                    external_id=c.external_id,
                    groups=c.groups,
                    permission=Permission(c.permission),
                )
                for c in self.collection
            ),
            reinvite_after=self.sync.reinvite_after,
            relink_recreated=self.sync.relink_recreated,
            pushed=type(self.source).pushed,
            removal_window=self.sync.removal_window,
        )


def _default_store_url() -> str:
    state_dir = os.environ.get("STATE_DIRECTORY", "/var/lib/dirsync").split(":")[0]
    return f"sqlite:///{Path(state_dir) / 'dirsync.db'}"


class StoreSettings(Settings):
    url: str = Field(default_factory=_default_store_url)
    #: the URL read from a file instead, e.g. a PostgreSQL URL with its password given to the
    #: service as a credential (``LoadCredential=store-url:/etc/dirsync/store-url``): a relative
    #: name is looked up in the credentials directory first, then next to the config file
    url_file: str | None = None
    #: run records older than this are pruned (each organization keeps its latest run and its
    #: latest successful one)
    keep_runs: Duration = timedelta(days=90)
    #: audit events older than this are pruned; absent = kept forever
    keep_events: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _url_from_file(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or data.get("url_file") is None:
            return data
        if "url" in data:
            raise ValueError("give the store's url or its url_file, not both")
        base_dir = (info.context or {}).get("base_dir")
        try:
            url = resolve_file(str(data["url_file"]), base_dir=base_dir).reveal().strip()
        except SecretResolutionError as exc:
            raise ValueError(f"url_file: {exc}") from None
        return {**data, "url": url}

    def prune_cutoffs(self, now: datetime) -> tuple[datetime, datetime | None]:
        """(runs before, events before) at ``now``."""
        return now - self.keep_runs, None if self.keep_events is None else now - self.keep_events


class LoggingSettings(Settings):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class DaemonSettings(Settings):
    """``[daemon]``: how ``dirsync run`` schedules, retries, watches itself and reports."""

    #: "host:port" for the Prometheus endpoint (e.g. "127.0.0.1:9479"); absent = none
    metrics_listen: str | None = None
    #: the first run of each organization starts within this long after start-up
    startup_jitter: OptionalDuration = timedelta(seconds=5)
    #: first retry after a failure; doubles per failure, never beyond the interval
    retry_initial: Duration = timedelta(seconds=30)
    #: a run longer than this stops the systemd watchdog pings (systemd then restarts us)
    run_budget: Duration = timedelta(hours=1)
    #: at most this many organizations sync at the same time; the rest wait their turn
    max_parallel: int = Field(default=8, ge=1, le=256)
    #: of those, at most this many hold their whole organization in memory at once (a first
    #: sync, a full re-read, a delta that cannot be planned by difference) from the store's
    #: load to the apply, once their directory read is done; quiet and scoped runs are not
    #: counted. Bounds the daemon's memory when every organization reads in full; as many as
    #: max_parallel = no bound
    max_full_loads: int = Field(default=1, ge=1, le=256)
    #: the IANA time zone of the organizations' ``cron`` unless one sets its own
    timezone: Annotated[str, BeforeValidator(check_timezone)] = "UTC"
    #: with a PostgreSQL store shared by several nodes: how long a node may stall (or be cut
    #: off) before the organization it is syncing is free for the others
    takeover: Duration = timedelta(seconds=60)
    #: this host's name in run records (``dirsync runs``, ``status --json``); default: the
    #: host name. Set it where host names repeat (containers) and several nodes share a store
    node: str | None = Field(default=None, min_length=1, max_length=255)
    #: "host:port" where identity providers push SCIM 2.0 (HTTPS); absent = no SCIM endpoint
    scim_listen: str | None = None
    #: the endpoint's certificate chain and private key (PEM)
    scim_cert_file: Path | None = None
    scim_key_file: Path | None = None

    @field_validator("scim_cert_file", "scim_key_file")
    @classmethod
    def _file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return existing_file(value, info)

    @model_validator(mode="after")
    def _scim_is_https(self) -> DaemonSettings:
        files = (self.scim_cert_file, self.scim_key_file)
        if self.scim_listen is not None and None in files:
            raise ValueError("scim_listen needs scim_cert_file and scim_key_file (HTTPS only)")
        if self.scim_listen is None and files != (None, None):
            raise ValueError("scim_cert_file and scim_key_file need scim_listen")
        return self

    @field_validator("metrics_listen", "scim_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = re.match(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):(\d{1,5})$", value.strip())
        if match is None or int(match.group(2)) > 65535:
            raise ValueError(f'{value!r} is not "host:port", e.g. "127.0.0.1:9479"')
        return value.strip()


class Config(Settings):
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    daemon: DaemonSettings = DaemonSettings()
    organization: tuple[OrganizationSettings, ...] = ()
    alert: tuple[Alert, ...] = ()
    #: problems with how the file is kept (not its content), e.g. inline secrets others can read
    _file_warnings: list[str] = PrivateAttr(default_factory=list)
    #: the file it was read from, for messages
    _path: str | None = PrivateAttr(default=None)

    @property
    def file_warnings(self) -> list[str]:
        return list(self._file_warnings)

    @property
    def path(self) -> str | None:
        return self._path

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for org in self.organization:
            if org.name in seen:
                raise ValueError(f"organization name {org.name!r} is used twice")
            seen.add(org.name)
        return self

    @model_validator(mode="after")
    def _alerts_name_known_organizations(self) -> Config:
        known = {org.name for org in self.organization}
        for index, alert in enumerate(self.alert):
            if unknown := [name for name in alert.organizations if name not in known]:
                raise ValueError(
                    f"alert[{index}].organizations: no organization named {unknown[0]!r}"
                )
        return self

    @model_validator(mode="after")
    def _default_timezone(self) -> Config:
        """An organization without ``timezone`` takes ``[daemon] timezone``."""
        zone = self.daemon.timezone
        if any(org.timezone is None for org in self.organization):
            filled = tuple(
                org if org.timezone else org.model_copy(update={"timezone": zone})
                for org in self.organization
            )
            object.__setattr__(self, "organization", filled)  # frozen: set once, here
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
        data = read_checked_file(config_path, limit=CONFIG_FILE_LIMIT, what="a config file")
        raw = tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError("the config file does not exist", path=str(config_path)) from None
    except UnsafeFile as exc:  # the message names the file, what is wrong and the fix
        raise ConfigError(str(exc)) from None
    except UnicodeDecodeError as exc:
        message = f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
        raise ConfigError(message, path=str(config_path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(config_path)) from None
    config = parse_config(raw, base_dir=config_path.parent.resolve(), path=str(config_path))
    config._file_warnings = exposure_warnings(raw, config_path)
    return config


def parse_config(
    raw: dict[str, Any],
    *,
    base_dir: Path,
    path: str = "<config>",
    sources: SourceTypes | None = None,
) -> Config:
    """``raw`` validated; ``sources`` are the source types (default: the installed ones)."""
    context = {"base_dir": base_dir, "sources": installed() if sources is None else sources}
    try:
        config = Config.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, raw), path=path) from None
    config._path = path
    return config


def _describe(exc: ValidationError, raw: dict[str, Any]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        key = _key_path(error["loc"], raw)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key" + did_you_mean(error["loc"], raw)
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append(f"{key}: {message}" if key else message)
    return problems


def did_you_mean(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    """``; did you mean 'bind_password'?`` for a misspelt key, or nothing."""
    table = known_keys(loc[:-1], raw)
    found = difflib.get_close_matches(str(loc[-1]), table, n=1, cutoff=0.6)
    return f"; did you mean {found[0]!r}?" if found else ""


def known_keys(loc: tuple[int | str, ...], raw: dict[str, Any]) -> list[str]:
    """The keys the table at ``loc`` may have (a source's and an alert's by their type)."""
    model: type[BaseModel] | None = Config
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        if model is None or item not in model.model_fields:
            return []
        node = node.get(item) if isinstance(node, dict) else None
        model = _model_in(model.model_fields[item].annotation)
    kind = node.get("type") if isinstance(node, dict) else None
    if model is SourceSettings and isinstance(kind, str):
        try:
            model = lookup(kind, installed())
        except ValueError:
            return []
    elif model is AlertSettings and isinstance(kind, str):
        model = ALERT_TYPES.get(kind, AlertSettings)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings model an annotation holds (``X``, ``tuple[X, ...]``, ``Annotated[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        if (found := _model_in(argument)) is not None:
            return found
    return None


def _key_path(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    """``('organization', 0, 'source', 'url')`` → ``organization[acme].source.url``."""
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
        parts.append(str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)
