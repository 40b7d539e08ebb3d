"""Secrets: inline, ``${ENV}``, a ``*_file`` or a systemd credential. Never printed.

A ``Secret`` has no readable ``repr``/``str``; the only way to the value is ``reveal()``, called
at the last moment by the code that hands it to a library.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

_ENV_REFERENCE: Final = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
MASK: Final = "***"


class SecretResolutionError(ValueError):
    """The secret's source is missing; the message never contains the secret itself."""


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
        return bool(self._value)


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


def resolve_file(path: str, *, base_dir: Path | None = None) -> Secret:
    """Read a secret from a file; one trailing newline is dropped.

    A relative path is looked up in systemd's credentials directory first
    (``LoadCredential=``), then next to the config file.
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
            text = candidate.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SecretResolutionError(f"cannot read {candidate}: {exc.strerror}") from None
        return Secret(text[:-1] if text.endswith("\n") else text)
    raise SecretResolutionError(f"file {path} does not exist")
