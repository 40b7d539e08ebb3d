"""``python -m bench [--sizes 10000,100000] [--out bench/RESULTS.md]``: the LDAP benchmark.

Prints a Markdown section (machine, date, command, load average, figures) and, with
``--out``, replaces the LDAP section of that file, leaving other sections (AD, Graph) as
they are.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import store_bench
from bench.ldap_bench import Scenario, run_scenario
from bench.measure import HEADER

BEGIN = "<!-- ldap-bench:begin -->"
END = "<!-- ldap-bench:end -->"


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, "
        f"{platform.platform()}, Python {platform.python_version()}"
    )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def section(sizes: list[int], command: str) -> str:
    lines = [
        BEGIN,
        "## LDAP (OpenLDAP slapd)",
        "",
        f"- machine: {_machine()}",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        f"- command: `{command}`",
        "",
    ]
    for users in sizes:
        scenario = Scenario(users=users, groups=users // 10)
        load_before = _load()
        results, load_seconds = run_scenario(scenario)
        reference = results[0].wall if results and "reference" in results[0].label else None
        lines += [
            f"### {users:,} users, {users // 10:,} groups",
            "",
            f"slapadd load {load_seconds:.1f} s; load average before {load_before}, "
            f"after {_load()}",
            "",
            HEADER,
            *(r.row(reference if "--full" in r.label else None) for r in results),
            "",
        ]
    figures = store_bench.run(100_000)
    lines += [
        "### The store alone: 100,000 invites into an empty SQLite store (in process)",
        "",
        f"{figures.invites:,} invites (with their events and mirror rows) applied in "
        f"{figures.apply_seconds:.2f} s; loading them back {figures.load_seconds:.2f} s; "
        f"load average {_load()}",
        "",
    ]
    scenario = Scenario(users=20_000, groups=400, steps=("full",))
    load_before = _load()
    results, _ = run_scenario(scenario)
    lines += [
        "### 20,000 users, 400 groups: first full sync including process start",
        "",
        f"load average before {load_before}, after {_load()}",
        "",
        HEADER,
        *(r.row() for r in results),
        "",
        END,
    ]
    return "\n".join(lines)


def replace_section(path: Path, text: str) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if pattern.search(old):
        new = pattern.sub(lambda _: text, old)
    else:
        new = old.rstrip() + "\n\n" + text + "\n"
    path.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/run")
    parser.add_argument("--sizes", default="10000,100000", help="user counts, comma-separated")
    parser.add_argument("--out", type=Path, help="replace the LDAP section of this file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    command = "bench/run " + " ".join(sys.argv[1:])
    text = section(sizes, command.strip())
    print(text)
    if args.out:
        replace_section(args.out, text)


if __name__ == "__main__":
    main()
