"""Warnings about how the config file itself is kept: inline secrets readable by other users.

Not errors: the file still loads, but an operator is told, by key, which secret to move into a
``*_file``, an environment variable or systemd's credentials directory (``LoadCredential``).
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

#: source keys whose inline value is a secret
INLINE_SECRET_KEYS = ("bind_password", "client_secret", "certificate_passphrase")

_ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_URL_PASSWORD = re.compile(r"^[a-z0-9+]+://[^/@:]*:[^/@]+@", re.IGNORECASE)


def inline_secret_keys(raw: dict[str, Any]) -> list[str]:
    """Key paths of secrets written into the file itself (``${ENV}`` references are not)."""
    found = []
    store = raw.get("store")
    url = store.get("url") if isinstance(store, dict) else None
    if isinstance(url, str) and _URL_PASSWORD.match(url):
        found.append("store.url")
    for index, org in enumerate(raw.get("organization") or ()):
        if not isinstance(org, dict):
            continue
        label = org.get("name") if isinstance(org.get("name"), str) else str(index)
        source = org.get("source")
        if not isinstance(source, dict):
            continue
        for key in INLINE_SECRET_KEYS:
            value = source.get(key)
            if isinstance(value, str) and value and not _ENV_REFERENCE.match(value.strip()):
                found.append(f"organization[{label}].source.{key}")
    return found


def exposure_warnings(raw: dict[str, Any], path: Path) -> list[str]:
    """One warning when the file holds inline secrets and other users may read it."""
    keys = inline_secret_keys(raw)
    if not keys:
        return []
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if not mode & stat.S_IROTH:
        return []
    return [
        f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}) and holds inline "
        f"secrets ({', '.join(keys)}): chmod 600/640 it, or move them to a *_file, "
        "an ${ENV} reference or systemd's LoadCredential"
    ]
