"""The Active Directory benchmark: a throwaway Samba AD DC, a generated company, and dirsync's
full, no-change and changed incremental syncs (DirSync and uSNChanged), each a child process.

    .venv/bin/python bench/ad_bench.py --users 3000 --groups 30 [--append bench/RESULTS.md]

Users are enabled and have no password (adds without passwords run ~5x faster); each is in one
department group, and every department is nested in "All Staff". The "changes" step changes the
mail of 1% of the users and deletes 10 of them (deleted users are revoked from tombstones).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dirsync.testing.samba import (  # noqa: E402 - after the path set-up, run as a script
    SambaDC,
    grant_deleted_objects_read,
    unicode_pwd,
)

READER_PASSWORD = "Reader-Pass-1!"
ENABLED = 0x220  # NORMAL_ACCOUNT | PASSWD_NOTREQD


def build(dc: SambaDC, users: int, groups: int) -> tuple[str, float]:
    """The company under OU=Bench; returns its DN and the seconds the adds took."""
    ou = f"OU=Bench,{dc.base_dn}"
    started = time.perf_counter()
    with dc.connection() as conn:
        for dn in (ou, f"OU=People,{ou}", f"OU=Groups,{ou}"):
            conn.add(dn, ["organizationalUnit"])
        members: list[list[str]] = [[] for _ in range(groups)]
        for i in range(users):
            dn = f"CN=user{i:05d},OU=People,{ou}"
            conn.add(
                dn,
                ["user"],
                {
                    "sAMAccountName": f"user{i:05d}",
                    "mail": f"user{i:05d}@bench.example",
                    "displayName": f"User {i:05d}",
                    "userAccountControl": str(ENABLED),
                },
            )
            members[i % groups].append(dn)
        departments = []
        for g, group_members in enumerate(members):
            dn = f"CN=Department {g:02d},OU=Groups,{ou}"
            conn.add(dn, ["group"], {"member": group_members} if group_members else {})
            departments.append(dn)
        conn.add(f"CN=All Staff,OU=Groups,{ou}", ["group"], {"member": departments})
        reader = f"CN=bench-reader,CN=Users,{dc.base_dn}"
        conn.add(reader, ["user"], {"sAMAccountName": "bench-reader"})
        conn.modify(
            reader,
            {
                "unicodePwd": [("MODIFY_REPLACE", [unicode_pwd(READER_PASSWORD)])],
                "userAccountControl": [("MODIFY_REPLACE", ["66048"])],
            },
        )
    grant_deleted_objects_read(dc, "bench-reader")
    return ou, time.perf_counter() - started


def change(dc: SambaDC, ou: str, users: int, round_: int) -> int:
    """1% of the users get a new mail, 10 are deleted; returns the number of changed users."""
    step = 100
    changed = 0
    with dc.connection() as conn:
        for i in range(round_, users, step):
            conn.modify(
                f"CN=user{i:05d},OU=People,{ou}",
                {"mail": [("MODIFY_REPLACE", [f"user{i:05d}.r{round_}@bench.example"])]},
            )
            changed += 1
        for i in range(users - 1 - round_ * 10, users - 1 - round_ * 10 - 10, -1):
            conn.delete(f"CN=user{i:05d},OU=People,{ou}")
            changed += 1
    return changed


def write_config(path: Path, dc: SambaDC, ou: str, store: Path, *, admin: bool) -> None:
    bind_dn = dc.admin_dn if admin else f"CN=bench-reader,CN=Users,{dc.base_dn}"
    password = dc.admin_password if admin else READER_PASSWORD
    path.write_text(
        f"""[store]
url = "sqlite:///{store}"
[logging]
level = "warning"
[[organization]]
name = "bench"
[organization.source]
type = "active_directory"
url = "{dc.ldaps_url}"
ca_file = "{dc.ca_file}"
base_dn = "{ou}"
user_path = "OU=People"
group_path = "OU=Groups"
bind_dn = "{bind_dn}"
bind_password = "{password}"
page_size = 1000
timeout = "120s"
[organization.sync]
max_removals = 100
"""
    )


def sync(config: Path, *args: str) -> dict[str, Any]:
    dirsync = str(Path(sys.executable).with_name("dirsync"))
    started = time.perf_counter()
    proc = subprocess.run(
        [dirsync, "--config", str(config), "sync", "--json", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"dirsync sync failed ({proc.returncode}): {proc.stderr[-2000:]}")
    (result,) = json.loads(proc.stdout)
    counts = result["counts"]
    return {
        "seconds": seconds,
        "outcome": result["outcome"],
        "entries_read": result["entries_read"],
        "changes": {k: v for k, v in counts.items() if v},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--append", type=Path, help="append a results section to this file")
    options = parser.parse_args()

    rows: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="dirsync-ad-bench-") as tmp, SambaDC() as dc:
        ou, add_seconds = build(dc, options.users, options.groups)
        print(f"built {options.users} users in {options.groups} groups in {add_seconds:.1f}s")
        for mode, admin in (("dirsync", True), ("usn", False)):
            config = Path(tmp) / f"{mode}.toml"
            write_config(config, dc, ou, Path(tmp) / f"{mode}.db", admin=admin)
            steps = [("full", sync(config)), ("unchanged", sync(config))]
            changed = change(dc, ou, options.users, 1 if admin else 2)
            steps.append((f"changes ({changed} users)", sync(config)))
            steps.append(("full again (--full)", sync(config, "--full")))
            for step, figures in steps:
                rows.append((mode, step, figures))
                print(mode, step, json.dumps(figures))
    report = render(options, add_seconds, rows)
    print(report)
    if options.append:
        with options.append.open("a", encoding="utf-8") as out:
            out.write(report)


def render(options: Any, add_seconds: float, rows: list[tuple[str, str, dict[str, Any]]]) -> str:
    samba = subprocess.run(["samba", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "",
        f"## Active Directory (Samba AD DC) — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.node()}, {os.cpu_count()} CPUs (shared), "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"{samba}",
        f"- command: `.venv/bin/python bench/ad_bench.py --users {options.users} "
        f"--groups {options.groups}`",
        f"- directory: {options.users} users in {options.groups} groups nested in one; "
        f"created over LDAPS in {add_seconds:.1f}s ({options.users / add_seconds:.0f}/s)",
        "- each step is one `dirsync sync --json` child process against LDAPS, SQLite store",
        "",
        "| incremental | step | wall s | entries read | outcome | changes |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    for mode, step, f in rows:
        changes = ", ".join(f"{k} {v}" for k, v in f["changes"].items()) or "-"
        lines.append(
            f"| {mode} | {step} | {f['seconds']:.1f} | {f['entries_read']} | {f['outcome']} "
            f"| {changes} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
