"""A config file with several organizations for daemon tests, and a closed loopback port."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.integration.conftest import LdapTree

#: when the daemon tests' frozen clock starts
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


class DaemonConfig:
    """``dirsync.toml`` in ``tmp_path``: ``[daemon]`` and organizations, rewritten on demand."""

    def __init__(self, tree: LdapTree, tmp_path: Path) -> None:
        self.tree = tree
        self.path = tmp_path / "dirsync.toml"
        self.db = tmp_path / "store" / "dirsync.db"
        self.daemon: dict[str, Any] = {"startup_jitter": "0", "retry_initial": "30s"}
        self.organizations: dict[str, dict[str, Any]] = {}
        self.extra = ""

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def runtime_dir(self) -> Path:
        return Path(f"{self.db}.run")

    def source(self, *, reachable: bool = True, **overrides: Any) -> dict[str, Any]:
        server = self.tree.server
        data = {
            "type": "ldap",
            "url": server.url if reachable else f"ldap://127.0.0.1:{closed_port()}",
            "base_dn": self.tree.base_dn,
            "user_path": "ou=People",
            "group_path": "ou=Groups",
            "bind_dn": server.reader_dn,
            "bind_password": server.reader_password,
            "start_tls": True,  # a password never crosses in clear (allow_plain_ldap)
            "ca_file": str(server.ca_file),
            "timeout": "5s",
        }
        data.update(overrides)
        return data

    def add(self, name: str, *, reachable: bool = True, **settings: Any) -> DaemonConfig:
        source = settings.pop("source", {})
        self.organizations[name] = {
            "jitter": "0",
            **settings,
            "source": self.source(reachable=reachable, **source),
        }
        return self

    def write(self) -> Path:
        lines = ["[store]", f"url = {_toml(self.store_url)}", "", "[daemon]"]
        lines += [f"{k} = {_toml(v)}" for k, v in self.daemon.items()]
        for name, org in self.organizations.items():
            lines += ["", "[[organization]]", f"name = {_toml(name)}"]
            lines += [f"{k} = {_toml(v)}" for k, v in org.items() if k != "source"]
            lines += ["[organization.source]"]
            lines += [f"{k} = {_toml(v)}" for k, v in org["source"].items()]
        self.path.write_text("\n".join(lines) + "\n" + self.extra)
        self.path.chmod(0o600)  # it holds an inline password: private, as an operator keeps it
        return self.path


def company(tree: LdapTree) -> None:
    """Three people and a group."""
    tree.add(
        tree.person("alice"),
        tree.person("bob"),
        tree.person("carol"),
        tree.group("Staff", [tree.user_dn("alice"), tree.user_dn("bob"), tree.user_dn("carol")]),
    )
