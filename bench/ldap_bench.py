"""The LDAP benchmark: a generated directory in a throwaway slapd, the reference dump, and
dirsync's full, no-change, 100-change and dry-run syncs, each as a measured child process."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.generate import Directory
from bench.measure import Measurement, run, sync_summary
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.testing.slapd import Slapd

LDAPSEARCH = "/usr/bin/ldapsearch"
USER_ATTRIBUTES = ("entryUUID", "uid", "mail", "displayName", "cn")
GROUP_ATTRIBUTES = ("entryUUID", "cn", "member")


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    users: int
    groups: int
    steps: tuple[str, ...] = ("reference", "full", "unchanged", "changes", "dry_run")
    incremental: str = "auto"


def store_toml(database: Path) -> str:
    """A config's ``[store]`` (SQLite at ``database``) and ``[logging]``, the benches' way."""
    return f'[store]\nurl = "sqlite:///{database}"\n\n[logging]\nlevel = "warning"\n'


def organization_toml(
    slapd: Slapd, *, name: str, base_dn: str, incremental: str | None = None
) -> str:
    """One ``[[organization]]`` reading a ``bench.generate`` directory at ``base_dn`` in
    ``slapd``, as every LDAP bench configures it."""
    chosen = "" if incremental is None else f'incremental = "{incremental}"\n'
    return f"""\
[[organization]]
name = "{name}"

[organization.source]
type = "ldap"
url = "{slapd.url}"
bind_dn = "{slapd.reader_dn}"
bind_password = "{slapd.reader_password}"
allow_plain_ldap = true  # measured without TLS, as bench/RESULTS.md has been
base_dn = "{base_dn}"
user_path = "ou=People"
group_path = "ou=Groups"
disabled_filter = "(employeeType=disabled)"
page_size = 1000
{chosen}
[organization.sync]
max_removals = "20%"
"""


def _dirsync() -> str:
    return str(Path(sys.executable).with_name("dirsync"))


class Bench:
    """One slapd loaded with one directory, and a store in a temporary directory."""

    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        self.scenario = scenario
        self.workdir = workdir
        self.directory = Directory(users=scenario.users, groups=scenario.groups)
        self.slapd = Slapd(directory=workdir / "slapd", limits=())
        self.config = workdir / "dirsync.toml"
        self.env = {**os.environ, "LDAPNOINIT": "1", "DIRSYNC_CONFIG": str(self.config)}
        self.load_seconds = 0.0

    def start(self) -> None:
        started = time.perf_counter()
        self.slapd.load_ldif_offline(self.directory.ldif())
        self.load_seconds = time.perf_counter() - started
        self.slapd.start()
        self.config.write_text(self._config_toml(), encoding="utf-8")

    def stop(self) -> None:
        self.slapd.stop()

    def source_settings(self) -> LdapSourceSettings:
        """The bench's source as settings, for in-process reads (no config file)."""
        s = self.slapd
        return LdapSourceSettings.model_validate(
            {
                "type": "ldap",
                "url": s.url,
                "bind_dn": s.reader_dn,
                "bind_password": s.reader_password,
                "allow_plain_ldap": True,  # measured without TLS, as bench/RESULTS.md has been
                "base_dn": s.base_dn,
                "page_size": 1000,
            }
        )

    def _config_toml(self) -> str:
        store = store_toml(self.workdir / "dirsync.db")
        organization = organization_toml(
            self.slapd, name="bench", base_dn=self.slapd.base_dn,
            incremental=self.scenario.incremental,
        )  # fmt: skip
        return f"{store}\n{organization}"

    def reference(self) -> Measurement:
        """ldapsearch dumping the users and the groups with dirsync's attributes, one after
        the other (two processes, figures summed)."""
        total: Measurement | None = None
        s = self.slapd
        for path, object_class, attributes in (
            (self.directory.people, "inetOrgPerson", USER_ATTRIBUTES),
            (self.directory.group_ou, "groupOfNames", GROUP_ATTRIBUTES),
        ):
            args = [LDAPSEARCH, "-x", "-LLL", "-H", s.url, "-D", s.reader_dn, "-w"]
            args += [s.reader_password, "-b", path, "-E", "pr=1000/noprompt"]
            args += [f"(objectClass={object_class})", *attributes]
            out = self.workdir / "ldapsearch.out"
            measured, text = run("reference ldapsearch", args, env=self.env, stdout_path=out)
            entries = text.count(b"\ndn: ") + text.startswith(b"dn: ")
            measured = Measurement(
                label=measured.label,
                wall=measured.wall,
                cpu=measured.cpu,
                peak_rss_mb=measured.peak_rss_mb,
                entries_read=entries,
            )
            total = measured if total is None else _sum(total, measured)
        assert total is not None
        return total

    def sync(self, label: str, *flags: str) -> Measurement:
        args = [_dirsync(), "--config", str(self.config), "sync", "--json", *flags]
        out = self.workdir / "sync.json"
        measured, text = run(label, args, env=self.env, stdout_path=out, ok_codes=(0, 3))
        summary = sync_summary(text)
        return Measurement(
            label=label,
            wall=measured.wall,
            cpu=measured.cpu,
            peak_rss_mb=measured.peak_rss_mb,
            entries_read=summary["entries_read"],
            outcome=summary["outcome"],
            counts=summary["counts"],
        )

    def apply_changes(self) -> None:
        self.slapd.modify_ldif(self.directory.changes(100))


def _sum(a: Measurement, b: Measurement) -> Measurement:
    return Measurement(
        label=a.label,
        wall=a.wall + b.wall,
        cpu=a.cpu + b.cpu,
        peak_rss_mb=max(a.peak_rss_mb, b.peak_rss_mb),
        entries_read=(a.entries_read or 0) + (b.entries_read or 0),
    )


def run_scenario(scenario: Scenario, *, keep: bool = False) -> tuple[list[Measurement], float]:
    """All the scenario's steps in one slapd; returns the measurements and the load time."""
    workdir = Path(tempfile.mkdtemp(prefix="dirsync-bench-"))
    bench = Bench(scenario, workdir)
    results: list[Measurement] = []
    try:
        bench.start()
        for step in scenario.steps:
            if step == "reference":
                results.append(bench.reference())
            elif step == "full":
                results.append(bench.sync("first sync --full (empty store)", "--full"))
            elif step == "unchanged":
                results.append(bench.sync("no-change sync"))
            elif step == "changes":
                bench.apply_changes()
                results.append(bench.sync("sync after 100 changes"))
            elif step == "dry_run":
                results.append(bench.sync("dry run (synced org)", "--dry-run"))
            print(results[-1].row(), file=sys.stderr, flush=True)
        return results, bench.load_seconds
    finally:
        bench.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
