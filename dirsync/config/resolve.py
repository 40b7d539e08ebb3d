"""Reading the secrets of the organizations a command acts on, and no others.

Loading the config notes where each ``*_file`` and ``${ENV}`` secret is (``DeferredSecret``);
this module reads them. ``dirsync sync --org acme`` resolves acme's alone, so a timer unit that
may read acme's credential is not stopped by beta's; the daemon resolves every organization's
(and every alert's) when it starts and on each reload; ``config check`` resolves them all and
reports a secret the user running it may not read as a warning when that user is not root
(it is meant for the service's user).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from dirsync.config.secrets import DeferredSecret, SecretResolutionError
from dirsync.config.settings import Config
from dirsync.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretProblem:
    key: str  # e.g. organization[acme].source.bind_password_file
    message: str  # never the secret itself
    denied: bool  # the file exists, this user may not read it

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def deferred_secrets(model: BaseModel, path: str) -> Iterator[tuple[str, DeferredSecret]]:
    """Every ``DeferredSecret`` in ``model``, with its key path below ``path``."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{path}.{name}" if path else name
        if isinstance(value, DeferredSecret):
            yield key, value
        elif isinstance(value, BaseModel):
            yield from deferred_secrets(value, key)
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    label = getattr(item, "name", None)
                    yield from deferred_secrets(item, f"{key}[{label or index}]")


def secret_problems(config: Config, names: Iterable[str] | None = None) -> list[SecretProblem]:
    """Resolve the secrets of the named organizations (``None``: everything in the config,
    alerts included); what could not be read, by key."""
    if names is None:
        scopes: list[tuple[str, BaseModel]] = [("", config)]
    else:
        scopes = [(f"organization[{org.name}]", org) for org in config.select(list(names))]
    problems = []
    for path, model in scopes:
        for key, secret in deferred_secrets(model, path):
            try:
                secret.resolve()
            except SecretResolutionError as exc:
                problems.append(SecretProblem(key=key, message=str(exc), denied=exc.denied))
    return problems


def resolve_secrets(config: Config, names: Iterable[str] | None = None) -> None:
    """Read the secrets a command needs; ConfigError (exit 2) naming each one it cannot."""
    if problems := secret_problems(config, names):
        raise ConfigError([str(p) for p in problems], path=config.path)


#: CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: either lets a process read any file
_READ_ANY_FILE = (1 << 1) | (1 << 2)


def may_read_any_file() -> bool:
    """Whether this process may read files whatever their permissions (root, normally)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
        effective = next(line for line in status.splitlines() if line.startswith("CapEff:"))
        return bool(int(effective.split()[1], 16) & _READ_ANY_FILE)
    except (OSError, StopIteration, ValueError, IndexError):  # no procfs: go by the user
        return os.geteuid() == 0


def split_for_check(problems: list[SecretProblem]) -> tuple[list[str], list[str]]:
    """``config check``: (problems, warnings). Unprivileged, a secret it may not read is a
    warning: the service's user (``LoadCredential=``) or root reads it, not this one."""
    unprivileged = not may_read_any_file()
    errors = [str(p) for p in problems if not (p.denied and unprivileged)]
    warnings = [
        f"{p}; not readable by this user (the service's user or root must read it)"
        for p in problems
        if p.denied and unprivileged
    ]
    return errors, warnings
