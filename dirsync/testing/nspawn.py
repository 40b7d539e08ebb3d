"""A throwaway Debian booted under its own systemd, for testing the units for real.

    tree = debian_tree()                        # debootstrapped once, cached in ~/.cache/dirsync
    with BootedDebian(tree, binds={wheels: "/srv/wheels"}) as debian:
        debian.run("systemctl", "start", "dirsync")

The tree is a minimal Debian 12 (``debootstrap --variant=minbase`` plus systemd, python3 and
pipx), built once per package list and renamed into place whole, so a concurrent session sees
it complete or not at all. Each boot runs it with ``systemd-nspawn -b --register=no
--keep-unit --volatile=overlay``: the container's systemd is PID 1 in its own PID namespace and
needs no systemd on the host (``--register=no`` and ``--keep-unit`` skip machined and the
host's manager), and every write goes to a tmpfs overlay, so the cached tree stays pristine.
The container shares the host's network, so it reaches servers on the host's loopback.
Commands run inside through ``nsenter`` into the container's namespaces, as root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path

from dirsync.testing.child import ChildProcess, ThrowawayServer

NSPAWN = "/usr/bin/systemd-nspawn"
NSENTER = "/usr/bin/nsenter"
DEBOOTSTRAP = "/usr/sbin/debootstrap"
SUITE = "bookworm"  # Debian 12: systemd 252, python3 3.11
MIRROR = "http://deb.debian.org/debian"
#: no procps: a minimal image has no /bin/kill, as on the technicians' servers
PACKAGES = ("systemd", "systemd-sysv", "dbus", "libnss-systemd", "python3", "pipx")


class NspawnError(RuntimeError):
    """The tree could not be built or booted, or a command inside failed; with the output."""


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dirsync"


def missing_tools() -> list[str]:
    return [tool for tool in (NSPAWN, NSENTER, DEBOOTSTRAP) if not Path(tool).exists()]


def debian_tree(*, refresh: bool = False) -> Path:
    """The cached root of a minimal Debian (built on first use: about two minutes)."""
    key = hashlib.sha256(f"{SUITE} {MIRROR} {' '.join(PACKAGES)}".encode()).hexdigest()[:12]
    root = _cache_root() / f"debian-{SUITE}-{key}"
    if refresh:
        shutil.rmtree(root, ignore_errors=True)
    if not (root / "tree" / "usr" / "bin" / "pipx").exists():
        missing = missing_tools()
        if missing:
            raise NspawnError(
                f"{', '.join(missing)} missing: apt-get install systemd-container debootstrap "
                "(./scripts/test installs them)"
            )
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"debian-{SUITE}-", dir=root.parent))
        try:
            proc = subprocess.run(
                [
                    DEBOOTSTRAP, "--variant=minbase", f"--include={','.join(PACKAGES)}",
                    SUITE, str(staging / "tree"), MIRROR,
                ],
                capture_output=True, text=True, check=False, timeout=1800,
            )  # fmt: skip
            if proc.returncode != 0:
                output = (proc.stderr + proc.stdout).strip()[-4000:]
                raise NspawnError(f"debootstrap failed (exit {proc.returncode}): {output}")
            staging.rename(root)  # atomic: a concurrent session either sees it whole or not
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another session was faster
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return root / "tree"


class BootedDebian(ThrowawayServer):
    """One boot of ``tree`` under systemd-nspawn; ``binds`` maps host paths to read-only
    paths inside."""

    def __init__(
        self,
        tree: Path,
        *,
        binds: Mapping[Path, str] | None = None,
        name: str | None = None,
        boot_timeout: float = 60.0,
    ) -> None:
        self.tree = tree
        self.binds = dict(binds or {})
        self.name = name or f"dirsync-test-{os.getpid()}"
        self.boot_timeout = boot_timeout
        directory = Path(tempfile.mkdtemp(prefix="dirsync-nspawn-"))
        self.log_file = directory / "console.log"
        self.leader = 0
        self._process = ChildProcess(directory, keep=False, stop_timeout=60)
        self._finalizer = weakref.finalize(self, self._process.cleanup)

    def start(self) -> BootedDebian:
        if self.running:
            return self
        args = [
            NSPAWN, "--quiet", "-D", str(self.tree), "-b", "--register=no", "--keep-unit",
            "--volatile=overlay", f"--machine={self.name}",
        ]  # fmt: skip
        args += [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        with self.log_file.open("wb") as log:
            self._process.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.boot_timeout
        while not self.leader:
            self.leader = self._find_leader()
            self._check_alive(deadline, "its systemd to start")
            time.sleep(0.1)
        state = ""
        while state not in ("running", "degraded"):
            self._check_alive(deadline, f"it to finish booting (state {state or 'unknown'})")
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            time.sleep(0.2)
        if state == "degraded":
            failed = self.run("systemctl", "--failed", "--no-legend", check=False).stdout
            raise NspawnError(f"the container booted degraded: {failed.strip()}")
        return self

    def _find_leader(self) -> int:
        """The container's PID 1 as the host sees it: the child of nspawn running systemd."""
        pid = self.pid
        if pid is None:
            return 0
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return 0
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    return int(child)
            except OSError:
                continue
        return 0

    def _check_alive(self, deadline: float, waiting_for: str) -> None:
        if not self.running:
            raise NspawnError(f"systemd-nspawn exited while waiting for {waiting_for}: "
                              f"{self._log_tail()}")  # fmt: skip
        if time.monotonic() > deadline:
            self.stop()
            raise NspawnError(f"timed out waiting for {waiting_for}: {self._log_tail()}")

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside, as root, with a clean environment (plus ``env``)."""
        if not self.leader:
            raise NspawnError("the container is not running")
        environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", **(env or {})}  # fmt: skip
        command = [NSENTER, f"--target={self.leader}", "--mount", "--uts", "--ipc", "--net",
                   "--pid", "--root", "--wd", "--", "/usr/bin/env", "-i",
                   *(f"{k}={v}" for k, v in environment.items()), *args]  # fmt: skip
        proc = subprocess.run(
            command, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise NspawnError(
                f"{' '.join(args)} exited {proc.returncode}: {(proc.stderr + proc.stdout)[-3000:]}"
            )
        return proc

    def write(self, path: str, text: str, *, mode: str = "0644") -> None:
        """A file inside, written whole by root with ``mode``."""
        self.run("install", "-D", "-m", mode, "/dev/stdin", path, input=text)

    def stop(self) -> None:
        """Shut the container down (nspawn turns SIGTERM into an orderly poweroff)."""
        self.leader = 0
        self._process.stop()

    def __repr__(self) -> str:
        return f"BootedDebian({self.name!r}, leader={self.leader})"
