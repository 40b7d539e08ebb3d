"""An MSP's cycle: hundreds of small client organizations on one directory, every feature on.

One slapd (``dirsync.testing.slapd``: memberof, refint, syncprov with its session log) holds
one OU per client (``ou=c000,dc=example,dc=org``...), each a ``bench.generate`` directory of
its own: users under ``ou=People``, department groups under ``ou=Groups`` and a nested
"All Staff" group naming every department. Client sizes are skewed (log-normal, median ~150,
20-1,452 users, seeded) and scaled to ``--users`` in all. One config names one organization per
client, with ``reinvite_after = "7d"`` and one collection reached through "All Staff" (the
settings ``config.example.toml`` recommends), or without those two (``features off``).

Each step is one ``dirsync sync --json`` of every organization, a measured child process
(wall, CPU, peak RSS; slapd's CPU from ``/proc``; entries read summed over the organizations'
results):

1. the first cycle (empty store);
2. no-change cycles, features on;
3. no-change cycles, features off (after one unmeasured run that takes the new rules in);
4. cycles after 1% of the users changed (modified, disabled, deleted, added, moved between
   groups, in clients picked by size), features on.

``--revision REV`` runs that older version too, alternating with the working tree step by step,
each with its own store (as ``bench.ab`` does), so that before and after compare on a busy
machine.

    .venv/bin/python -m bench.msp_cycle --organizations 100 --users 20000      # quick
    .venv/bin/python -m bench.msp_cycle --organizations 500 --users 100000 --revision main
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.__main__ import _load, _machine
from bench.ab import (
    REPO,
    Version,
    _check_versions,
    _compiled,
    _entry_points,
    _environment,
    _worktree,
)
from bench.generate import Directory, entry_uuid
from bench.ldap_bench import organization_toml, store_toml
from bench.measure import run
from dirsync.testing.slapd import Slapd

SUFFIX = "dc=example,dc=org"
ALL_STAFF = "All Staff"
MEDIAN = 150
SMALLEST, LARGEST = 20, 1452


def client_sizes(organizations: int, users: int, seed: int) -> list[int]:
    """Users per client: log-normal around the median, clipped, scaled to ``users`` in all."""
    rng = random.Random(seed)
    raw = [rng.lognormvariate(math.log(MEDIAN), 0.8) for _ in range(organizations)]
    scale = users / sum(min(LARGEST, max(SMALLEST, r)) for r in raw)
    return [min(LARGEST, max(SMALLEST, round(r * scale))) for r in raw]


@dataclass
class Client:
    """One client's OU: its generated directory and what the changes have done to it."""

    number: int
    directory: Directory
    alive: set[int] = field(default_factory=set)
    next_number: int = 0

    @property
    def name(self) -> str:
        return f"c{self.number:03d}"

    @property
    def base_dn(self) -> str:
        return self.directory.base_dn

    def ldif(self) -> str:
        body = self.directory.ldif()
        self.alive = set(range(self.directory.users))
        self.next_number = self.directory.users
        departments = [self.directory.group_dn(g) for g in range(self.directory.groups)]
        all_staff = "\n".join(
            [
                f"dn: cn={ALL_STAFF},{self.directory.group_ou}",
                "objectClass: groupOfNames",
                f"cn: {ALL_STAFF}",
                f"entryUUID: {entry_uuid(self.name + '-all-staff', 0)}",
                *(f"member: {dn}" for dn in departments),
            ]
        )
        head = f"dn: {self.base_dn}\nobjectClass: organizationalUnit\nou: {self.name}\n"
        return f"{head}\n{body}\n{all_staff}\n"

    def changes(self, count: int, rng: random.Random) -> list[str]:
        """``count`` change records, one kind after the other: modify, disable, delete, add
        (into a department); then a fifth as many users joining another department."""
        d = self.directory
        records = []
        for i in range(count):
            kind = i % 4 if self.alive else 3
            if kind == 3:
                number = self.next_number
                self.next_number += 1
                records.append(d.user_ldif(number, rng=random.Random(number), add=True))
                group = rng.randrange(d.groups)
                records.append(_member(d.group_dn(group), "add", d.user_dn(number)))
                d.membership.setdefault(group, []).append(number)
                self.alive.add(number)
                continue
            number = rng.choice(sorted(self.alive))
            dn = d.user_dn(number)
            if kind == 0:
                records.append(
                    f"dn: {dn}\nchangetype: modify\nreplace: displayName\n"
                    f"displayName: Renamed {number} {rng.randrange(10**6)}\n-\nreplace: mail\n"
                    f"mail: r{rng.randrange(10**6)}.u{number:06d}@{self.name}.example\n-\n"
                )
            elif kind == 1:
                records.append(
                    f"dn: {dn}\nchangetype: modify\nreplace: employeeType\n"
                    "employeeType: disabled\n-\n"
                )
            elif kind == 2:
                records.append(f"dn: {dn}\nchangetype: delete\n")
                self.alive.discard(number)
                for members in d.membership.values():
                    if number in members:
                        members.remove(number)
        # memberships: a fifth of the count, users joining a department they are not in
        for _ in range(count // 5):
            if not self.alive:
                break
            number = rng.choice(sorted(self.alive))
            groups = [g for g in range(d.groups) if number not in d.membership.get(g, [])]
            if groups:
                group = rng.choice(groups)
                records.append(_member(d.group_dn(group), "add", d.user_dn(number)))
                d.membership.setdefault(group, []).append(number)
        return records


def _member(group_dn: str, op: str, member_dn: str) -> str:
    return f"dn: {group_dn}\nchangetype: modify\n{op}: member\nmember: {member_dn}\n-\n"


def clients(organizations: int, users: int, seed: int) -> list[Client]:
    found = []
    for number, size in enumerate(client_sizes(organizations, users, seed)):
        name = f"c{number:03d}"
        directory = Directory(
            users=size,
            groups=max(2, size // 30),
            base_dn=f"ou={name},{SUFFIX}",
            seed=seed * 1000 + number,
            uuid_prefix=f"{name}-",
        )
        found.append(Client(number=number, directory=directory))
    return found


def config_toml(slapd: Slapd, clients: list[Client], store: Path, *, features: bool) -> str:
    parts = [store_toml(store)]
    for client in clients:
        parts.append(organization_toml(slapd, name=client.name, base_dn=client.base_dn))
        if features:
            parts.append(
                f"""reinvite_after = "7d"

[[organization.collection]]
name = "Company vault"
external_id = "col-{client.name}"
groups = ["{ALL_STAFF}"]
permission = "read"
"""
            )
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Changed:
    """What one round of changes did: change records sent, and entries changed in the
    directory (modified or added, counted by their entryCSN, and deleted)."""

    records: int
    entries: int
    #: how long slapd went on working after ldapmodify returned, and its CPU for the changes
    settle_seconds: float
    slapd_cpu: float


@dataclass(frozen=True, slots=True)
class Cycle:
    wall: float
    cpu: float
    slapd_cpu: float
    peak_rss_mb: float
    entries_read: int
    outcomes: str


def _slapd_cpu(slapd: Slapd) -> float:
    proc = slapd._process.proc
    assert proc is not None
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    """One slapd, the clients in it, and a store and two configs per version."""

    def __init__(self, options: argparse.Namespace, workdir: Path) -> None:
        self.workdir = workdir
        self.clients = clients(options.organizations, options.users, options.seed)
        self.slapd = Slapd(directory=workdir / "slapd", limits=())
        self.rng = random.Random(options.seed + 1)
        self.load_seconds = 0.0

    @property
    def users(self) -> int:
        return sum(c.directory.users for c in self.clients)

    def start(self) -> None:
        started = time.perf_counter()
        self.slapd.load_ldif_offline("\n".join(c.ldif() for c in self.clients))
        self.load_seconds = time.perf_counter() - started
        self.slapd.start()

    def config(self, version: str, *, features: bool) -> Path:
        folder = self.workdir / version.replace(" ", "-")
        folder.mkdir(exist_ok=True)
        path = folder / ("on.toml" if features else "off.toml")
        if not path.exists():
            text = config_toml(self.slapd, self.clients, folder / "dirsync.db", features=features)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
        return path

    def change(self, share: float) -> Changed:
        """Change ``share`` of the users, in clients picked by size."""
        wanted = max(5, round(self.users * share))
        weights = [c.directory.users for c in self.clients]
        records: list[str] = []
        while len(records) < wanted:
            client = self.rng.choices(self.clients, weights)[0]
            records += client.changes(5, self.rng)
        cpu_before = _slapd_cpu(self.slapd)
        with self.slapd.connection() as conn:
            (suffix,) = conn.search(SUFFIX, scope="BASE", attributes=["contextCSN"])
            (before,) = suffix["raw_attributes"]["contextCSN"]
            self.slapd.modify_ldif("\n".join(records))
            settled = self._settle(cpu_before)
            csn = before.decode()
            # every entry whose entryCSN moved on: those the records name, and those the
            # overlays changed for them (memberof's memberOf, refint's member values)
            since = f"(&(entryCSN>={csn})(!(entryCSN={csn})))"
            entries = len(conn.search(SUFFIX, since, attributes=["1.1"]))
        deleted = sum(r.endswith("changetype: delete\n") for r in records)
        return Changed(records=len(records), entries=entries + deleted, **settled)

    def _settle(self, cpu_before: float) -> dict[str, float]:
        """Wait until slapd is idle after the changes: it goes on working in the background
        for a while after ldapmodify returns (overlays' deferred work: tens of seconds of
        slapd CPU after 1% of 100,000 users changed), which the cycle's slapd CPU must not
        count, nor its wall time compete with. Idle: no CPU used in one second."""
        started = time.perf_counter()
        last = _slapd_cpu(self.slapd)
        while time.perf_counter() - started < 300:
            time.sleep(1.0)
            now = _slapd_cpu(self.slapd)
            if now == last:
                break
            last = now
        return {
            "settle_seconds": time.perf_counter() - started,
            "slapd_cpu": last - cpu_before,
        }

    def cycle(self, env: dict[str, str], config: Path) -> Cycle:
        command = [sys.executable, "-m", "dirsync", "--config", str(config), "sync", "--json"]
        out = config.with_suffix(".json")
        before = _slapd_cpu(self.slapd)
        measured, text = run("cycle", command, env=env, stdout_path=out, ok_codes=(0, 3))
        results = json.loads(text)
        outcomes = Counter(r["outcome"] for r in results)
        return Cycle(
            wall=measured.wall,
            cpu=measured.cpu,
            slapd_cpu=_slapd_cpu(self.slapd) - before,
            peak_rss_mb=measured.peak_rss_mb,
            entries_read=sum(r.get("entries_read") or 0 for r in results),
            outcomes=", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
        )


def _table(results: dict[tuple[str, str], list[Cycle]]) -> str:
    lines = [
        "| version | step | runs, wall s | median wall s | median CPU s | median slapd CPU s "
        "| peak RSS MB | entries read | outcomes |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for (name, step), runs in results.items():
        walls = ", ".join(f"{c.wall:.2f}" for c in runs)
        lines.append(
            f"| {name} | {step} | {walls} | {statistics.median(c.wall for c in runs):.2f} | "
            f"{statistics.median(c.cpu for c in runs):.2f} | "
            f"{statistics.median(c.slapd_cpu for c in runs):.2f} | "
            f"{max(c.peak_rss_mb for c in runs):.0f} | "
            f"{', '.join(f'{c.entries_read:,}' for c in runs)} | {runs[-1].outcomes} |"
        )
    return "\n".join(lines)


def _versions(revision: str | None, scratch: Path) -> tuple[dict[str, Version], Path | None]:
    if revision is None:
        return {"working tree": (REPO, {**os.environ, "LDAPNOINIT": "1"})}, None
    tree = _worktree(revision, scratch)
    versions: dict[str, Version] = {}
    for number, (name, path) in enumerate({revision: tree, "working tree": REPO}.items()):
        _compiled(path)
        metadata = _entry_points(path, scratch / f"metadata-{number}")
        versions[name] = (path, _environment(path, metadata))
    os.chdir(scratch)  # see bench.ab._check_versions
    _check_versions(versions)
    return versions, tree


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.msp_cycle")
    parser.add_argument("--organizations", type=int, default=500)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--rounds", type=int, default=3, help="measured cycles per step")
    parser.add_argument("--change", type=float, default=0.01, help="share of users changed")
    parser.add_argument("--revision", help="an older version to alternate with")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="dirsync-msp-"))
    versions, tree = _versions(options.revision, scratch)
    bench = Bench(options, scratch)
    results: dict[tuple[str, str], list[Cycle]] = {}
    load_before = _load()

    def step(label: str, *, features: bool, measured: bool = True) -> None:
        for name, (_, env) in versions.items():
            found = bench.cycle(env, bench.config(name, features=features))
            print(f"{name} {label}: {found.wall:.2f} s {found.outcomes}", file=sys.stderr)
            if measured:
                results.setdefault((name, label), []).append(found)

    try:
        bench.start()
        print(
            f"{len(bench.clients)} organizations, {bench.users:,} users (sizes "
            f"{min(c.directory.users for c in bench.clients)}-"
            f"{max(c.directory.users for c in bench.clients)}, median "
            f"{statistics.median(c.directory.users for c in bench.clients):.0f}); "
            f"slapadd {bench.load_seconds:.1f} s",
            file=sys.stderr,
        )
        step("first cycle (empty store)", features=True)
        for _ in range(options.rounds):
            step("no-change cycle, features on", features=True)
        step("rules changed: features off", features=False, measured=False)
        for _ in range(options.rounds):
            step("no-change cycle, features off", features=False)
        step("rules changed: features on", features=True, measured=False)
        changed = []
        for _ in range(options.rounds):
            changed.append(bench.change(options.change))
            step(f"cycle after {options.change:.0%} changed, features on", features=True)
        for _ in range(options.rounds):
            step("no-change cycle after the changes, features on", features=True)
    finally:
        bench.slapd.stop()
        if tree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)])
        if not options.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    sizes = [c.directory.users for c in bench.clients]
    print(f"- machine: {_machine()}")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"- command: `.venv/bin/python -m bench.msp_cycle {' '.join(sys.argv[1:])}`")
    print(
        f"- shape: {len(sizes)} organizations, {sum(sizes):,} users ({min(sizes)}-{max(sizes)} "
        f"per client, median {statistics.median(sizes):.0f}); slapadd {bench.load_seconds:.1f} s"
    )
    print(
        "- change records per changed cycle: "
        f"{', '.join(str(c.records) for c in changed)}; entries changed (entryCSN moved on, "
        f"or deleted): {', '.join(str(c.entries) for c in changed)}; slapd busy after "
        "them (waited for before the cycle; not in its slapd CPU): "
        + ", ".join(f"{c.settle_seconds:.0f} s ({c.slapd_cpu:.1f} s CPU)" for c in changed)
    )
    print(f"- load average before {load_before}, after {_load()}")
    print()
    print(_table(results))


if __name__ == "__main__":
    main()
