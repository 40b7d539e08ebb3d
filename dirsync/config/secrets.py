"""Secrets: inline, ``${ENV}``, a ``*_file`` or a systemd credential. Never printed.

A ``Secret`` has no readable ``repr``/``str``; the only way to the value is ``reveal()``, called
at the last moment by the code that hands it to a library.

A secret from a file or the environment is a ``DeferredSecret``: loading the config only notes
where it is, and ``resolve()`` reads it. A command resolves the secrets of the organizations it
acts on, and no others: ``systemctl start dirsync-sync@acme`` runs as a user that may read
acme's credential and not beta's (``config.settings.resolve_secrets``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from dirsync.config.file_safety import SECRET_FILE_LIMIT, UnsafeFile, read_checked_file

_ENV_REFERENCE: Final = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
MASK: Final = "***"


class SecretResolutionError(ValueError):
    """The secret's source is missing; the message never contains the secret itself.

    ``denied``: the file exists but this user may not read it (``config check`` run by a
    user other than the service's reports that as a warning, not a problem)."""

    def __init__(self, message: str, *, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self.reveal())


class DeferredSecret(Secret):
    """A secret read when first revealed (or ``resolve()``d), from a file or the environment.

    ``reference`` says where it is (a path or a variable's name, never the value); two
    unreadable secrets with the same reference are equal, so a config compares equal to itself.
    """

    __slots__ = ("_load", "reference")

    def __init__(self, load: Callable[[], Secret], *, reference: str) -> None:
        self._load = load
        self.reference = reference

    def resolve(self) -> None:
        """Read the secret now; raises SecretResolutionError saying what is missing."""
        if not hasattr(self, "_value"):
            self._value = self._load().reveal()

    def reveal(self) -> str:
        self.resolve()
        return self._value

    def _identity(self) -> tuple[str, str]:
        try:
            return ("value", self.reveal())
        except SecretResolutionError:
            return ("reference", self.reference)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DeferredSecret):
            return self._identity() == other._identity()
        return isinstance(other, Secret) and self._identity() == ("value", other.reveal())

    def __hash__(self) -> int:
        return hash(("Secret", self._identity()[1]))


def resolve_inline(value: str, *, environ: dict[str, str] | None = None) -> Secret:
    """An inline value, or ``"${NAME}"`` read from the environment."""
    env = os.environ if environ is None else environ
    match = _ENV_REFERENCE.match(value.strip())
    if match is None:
        return Secret(value)
    name = match.group(1)
    if name not in env:
        raise SecretResolutionError(f"environment variable {name} is not set")
    return Secret(env[name])


def defer_inline(value: str) -> Secret:
    """An inline value as is; ``"${NAME}"`` read from the environment when resolved."""
    match = _ENV_REFERENCE.match(value.strip())
    if match is None:
        return Secret(value)
    return DeferredSecret(lambda: resolve_inline(value), reference=f"${{{match.group(1)}}}")


def defer_file(path: str, *, base_dir: Path | None = None) -> DeferredSecret:
    """A ``*_file`` secret, read when resolved (see ``resolve_file``)."""
    return DeferredSecret(lambda: resolve_file(path, base_dir=base_dir), reference=path)


def resolve_file(path: str, *, base_dir: Path | None = None) -> Secret:
    """Read a secret from a file; one trailing newline is dropped.

    A relative path is looked up in systemd's credentials directory first
    (``LoadCredential=``), then next to the config file. The file must be a regular file of
    at most ``SECRET_FILE_LIMIT`` bytes that only its owner (this user or root) may change
    (``config.file_safety``); anything else is a ``SecretResolutionError`` saying why.
    """
    candidates: list[Path] = []
    given = Path(path)
    if given.is_absolute():
        candidates.append(given)
    else:
        credentials = os.environ.get("CREDENTIALS_DIRECTORY")
        if credentials:
            candidates.append(Path(credentials) / given)
        candidates.append((base_dir or Path.cwd()) / given)
    for candidate in candidates:
        try:
            data = read_checked_file(candidate, limit=SECRET_FILE_LIMIT, what="a secret")
        except FileNotFoundError:
            continue
        except UnsafeFile as exc:
            raise SecretResolutionError(str(exc), denied=exc.denied) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"{candidate} is not UTF-8 text (byte {exc.start}); a secret is text"
            raise SecretResolutionError(message) from None
        return Secret(text[:-1] if text.endswith("\n") else text)
    if given.is_absolute():
        raise SecretResolutionError(f"file {path} does not exist")
    looked = " and ".join(str(c) for c in candidates)
    raise SecretResolutionError(f"file {path} does not exist (looked for {looked})")
