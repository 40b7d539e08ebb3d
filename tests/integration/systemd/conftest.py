"""A Debian 12 booted under its own systemd, with dirsync installed as README says.

``debian``  one booted container for the module (``dirsync.testing.nspawn``): dirsync is built
            into wheels on the host, installed inside with pipx exactly as README's "Running as
            a service" does, with its units, its config and its secrets in /etc/dirsync;
``units``   drives the units inside through real ``systemctl`` and ``journalctl``.

The two client organizations, acme and beta, read their own subtrees of the session's slapd on
the host's loopback (the container shares the host's network). If the machine cannot build or
boot the container, every test here fails with the reason; none is skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dirsync
from dirsync.testing.nspawn import BootedDebian, NspawnError, debian_tree
from dirsync.testing.slapd import Slapd
from tests.integration.conftest import LdapTree

REPO = Path(dirsync.__file__).resolve().parents[1]
WHEELS = "/srv/dirsync-wheels"
CONFIG = "/etc/dirsync/config.toml"
CA_FILE = "/etc/dirsync/ldap-ca.pem"  # the test slapd's CA, for StartTLS
DEADLINE = 30.0
#: an organization's state in STATUS= after a run that succeeded
SYNCED = "(applied|unchanged)"


def wait_until(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


#: the booted tree's Python (Debian 12): its wheels, whatever Python runs the tests
CONTAINER_PYTHON = ("3.11", "cp311")


def build_wheels(target: Path) -> Path:
    """dirsync's wheel from this checkout and its dependencies' (and pipx's own pip,
    setuptools and wheel) for the container's Python, so that the install inside needs no
    index. dirsync's own wheel is pure; the others are fetched for CPython 3.11 on
    manylinux x86_64 even when the tests run under another Python (3.13)."""
    version, abi = CONTAINER_PYTHON
    _pip(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
         "--no-deps", "--wheel-dir", str(target), str(REPO)]
    )  # fmt: skip
    (wheel,) = target.glob("dirsync-*.whl")
    _pip(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--only-binary=:all:", "--python-version", version, "--implementation", "cp",
         "--abi", abi, "--abi", "abi3", "--abi", "none",
         "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
         "--platform", "manylinux_2_28_x86_64", "--platform", "linux_x86_64",
         "--dest", str(target), str(wheel), "pip", "setuptools", "wheel"]
    )  # fmt: skip
    return wheel


def _pip(command: list[str]) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        raise NspawnError(f"{' '.join(command[2:5])} failed: {(proc.stderr + proc.stdout)[-3000:]}")


def organization_toml(name: str, source: dict[str, str], **settings: str) -> str:
    lines = ["[[organization]]", f'name = "{name}"', 'interval = "15m"', 'jitter = "0s"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines += ["", "[organization.source]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in source.items()]
    return "\n".join(lines) + "\n"


class Units:
    """The service and its config inside the container, through systemctl and journalctl."""

    def __init__(self, debian: BootedDebian, server: Slapd, trees: dict[str, LdapTree]) -> None:
        self.debian = debian
        self.server = server
        self.trees = trees

    def source(self, name: str, **overrides: str) -> dict[str, str]:
        tree = self.trees[name]
        return {
            "type": "ldap",
            "url": self.server.url,
            "bind_dn": self.server.reader_dn,
            "bind_password_file": name,  # the credential's id: README's relative lookup
            "start_tls": True,  # the password never crosses in clear
            "ca_file": CA_FILE,
            "base_dn": tree.base_dn,
            "user_path": "ou=People",
            "group_path": "ou=Groups",
            "timeout": "10s",
            **overrides,
        }

    def config(self, *extra: str, daemon: str = "") -> str:
        """The two clients (plus ``extra`` organizations), as the technician writes it."""
        head = '[store]\nurl = "sqlite:////var/lib/dirsync/dirsync.db"\n\n'
        head += f'[daemon]\nstartup_jitter = "0s"\n{daemon}\n'
        orgs = [organization_toml(n, self.source(n)) for n in ("acme", "beta")]
        return head + "\n".join([*orgs, *extra])

    def write_config(self, text: str) -> None:
        self.debian.write(CONFIG, text)

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.debian.run("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, prop: str) -> str:
        return self.systemctl("show", "-p", prop, "--value", unit).stdout.strip()

    def status_text(self) -> str:
        return self.show("dirsync", "StatusText")

    def cursor(self) -> str:
        """Where the journal ends now: ``journal(after=...)`` shows what came later."""
        self.debian.run("journalctl", "--sync", check=False)
        shown = self.debian.run("journalctl", "-n", "0", "--show-cursor", "--no-pager").stdout
        return shown.strip().rpartition("-- cursor: ")[2]

    def journal(self, unit: str = "dirsync", *args: str, after: str | None = None) -> str:
        self.debian.run("journalctl", "--sync", check=False)
        since = [f"--after-cursor={after}"] if after else []
        command = ["journalctl", "--no-pager", "-o", "cat", "-u", unit, *since, *args]
        return self.debian.run(*command).stdout

    def priorities(self, event: str, *, after: str) -> set[str]:
        """The syslog priorities of the journal lines of dirsync.service naming ``event``."""
        self.debian.run("journalctl", "--sync", check=False)
        command = [
            "journalctl",
            "--no-pager",
            "-o",
            "json",
            "-u",
            "dirsync",
            f"--after-cursor={after}",
        ]
        lines = self.debian.run(*command).stdout.splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        return {e.get("PRIORITY", "") for e in entries if f'"{event}"' in str(e.get("MESSAGE"))}

    def dirsync(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.debian.run("dirsync", "--config", CONFIG, *args, check=check)

    def restart(self, config: str) -> None:
        """Write ``config`` and (re)start the daemon: returns once it said READY=1."""
        self.write_config(config)
        self.systemctl("reset-failed", "dirsync", check=False)
        self.systemctl("restart", "dirsync")

    def wait_for_status(self, *patterns: str, deadline: float = DEADLINE) -> str:
        """The STATUS= line once every one of ``patterns`` (regular expressions) is in it."""

        def holds() -> str | None:
            text = self.status_text()
            return text if all(re.search(p, text) for p in patterns) else None

        try:
            return str(wait_until(holds, f"STATUS with {patterns}", deadline))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; STATUS is {self.status_text()!r}") from None

    def stop(self) -> None:
        self.systemctl("stop", "dirsync", check=False)
        self.systemctl("reset-failed", "dirsync", check=False)


def _tree(server: Slapd, name: str, tmp: Path) -> LdapTree:
    base_dn = f"ou={name}-units,{server.base_dn}"
    tree = LdapTree(server, base_dn, tmp)
    server.add_ldif(
        f"dn: {base_dn}\nobjectClass: organizationalUnit\nou: {name}-units\n\n"
        f"dn: {tree.people}\nobjectClass: organizationalUnit\nou: People\n\n"
        f"dn: {tree.groups}\nobjectClass: organizationalUnit\nou: Groups\n"
    )
    return tree


def _install(debian: BootedDebian, wheel: Path, units: Units) -> None:
    """README's "Running as a service", step by step (the wheel's dependencies come from the
    wheel directory instead of PyPI: ``PIP_NO_INDEX``/``PIP_FIND_LINKS`` are pip's own)."""
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS}
    debian.run(
        "pipx", "install", f"{WHEELS}/{wheel.name}",
        env={"PIPX_HOME": "/opt/pipx", "PIPX_BIN_DIR": "/usr/local/bin", **offline},
    )  # fmt: skip
    debian.run("install", "-d", "-m", "0755", "/etc/dirsync")
    debian.write(CA_FILE, units.server.ca_file.read_text())
    units.write_config(units.config())
    for name in ("acme", "beta"):
        debian.run("install", "-m", "0600", "/dev/null", f"/etc/dirsync/{name}")
        debian.run("tee", f"/etc/dirsync/{name}", input=units.server.reader_password)
    units.dirsync("config", "check")
    debian.run("sh", "-c", f"cp {WHEELS}/units/dirsync.service /etc/systemd/system/")
    debian.write(
        "/etc/systemd/system/dirsync.service.d/credentials.conf",
        "[Service]\nLoadCredential=acme:/etc/dirsync/acme\nLoadCredential=beta:/etc/dirsync/beta\n",
    )
    units.systemctl("daemon-reload")


@pytest.fixture(scope="module")
def units(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Units]:
    tmp = tmp_path_factory.mktemp("units")
    wheels = tmp / "wheels"
    trees = {name: _tree(slapd, name, tmp) for name in ("acme", "beta")}
    trees["acme"].add(
        trees["acme"].person("ann"),
        trees["acme"].person("bob"),
        trees["acme"].group("Staff", [trees["acme"].user_dn("ann"), trees["acme"].user_dn("bob")]),
    )
    trees["beta"].add(trees["beta"].person("cy"))
    try:
        wheel = build_wheels(wheels)
        (wheels / "units").mkdir()
        for unit in (REPO / "systemd").iterdir():
            (wheels / "units" / unit.name).write_bytes(unit.read_bytes())
        debian = BootedDebian(debian_tree(), binds={wheels: WHEELS})
        debian.start()
    except (NspawnError, OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"the booted Debian could not be set up: {exc}", pytrace=False)
    try:
        found = Units(debian, slapd, trees)
        _install(debian, wheel, found)
        yield found
    finally:
        debian.stop()
