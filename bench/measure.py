"""Run one command as a child process and measure it: wall, CPU (user+sys), peak RSS.

``os.wait4`` gives the child's own rusage (``ru_maxrss`` in KiB on Linux). The child is forked
by a small spawner process, not by the driver, so its peak RSS is its own (see ``_SPAWN``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    label: str
    wall: float
    cpu: float
    peak_rss_mb: float
    entries_read: int | None = None
    outcome: str = ""
    counts: str = ""

    def row(self, reference: float | None = None) -> str:
        ratio = f"{self.wall / reference:.1f}x" if reference else ""
        entries = "" if self.entries_read is None else f"{self.entries_read:,}"
        return (
            f"| {self.label} | {self.wall:.2f} | {self.cpu:.2f} | {self.peak_rss_mb:.0f} | "
            f"{entries} | {ratio} | {self.outcome} {self.counts}".rstrip()
            + " |"
        )


HEADER = (
    "| step | wall s | CPU s | peak RSS MB | entries read | vs reference | outcome |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
)


class CommandFailed(RuntimeError):
    pass


#: run by a fresh, small interpreter: it forks the measured command and reports its rusage.
#: Linux carries a parent's peak RSS into a forked child (across exec), so a command forked
#: straight from this (large) driver would report the driver's peak as its own.
_SPAWN = """
import json, os, sys, time
fd = int(sys.argv[1])
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
os.write(fd, json.dumps([os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime,
                         usage.ru_maxrss]).encode())
"""


def run(
    label: str,
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdout_path: Path | None = None,
    ok_codes: Sequence[int] = (0,),
) -> tuple[Measurement, bytes]:
    """Run ``args``; returns the measurement and what it printed on stdout."""
    out_path = stdout_path or Path(os.devnull)
    read_end, write_end = os.pipe()
    try:
        with out_path.open("wb") as out:
            spawner = [sys.executable, "-S", "-c", _SPAWN, str(write_end), *args]
            proc = subprocess.run(
                spawner, stdout=out, stderr=subprocess.PIPE, env=env, pass_fds=(write_end,)
            )
        os.close(write_end)
        write_end = -1
        with os.fdopen(read_end, "rb") as report:
            read_end = -1
            code, wall, cpu, maxrss = json.loads(report.read() or b"[-1, 0, 0, 0]")
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    if proc.returncode != 0 or code not in ok_codes:
        raise CommandFailed(f"{label}: exit {code}: {proc.stderr.decode()[-3000:]}")
    output = out_path.read_bytes() if stdout_path else b""
    return (
        Measurement(label=label, wall=wall, cpu=cpu, peak_rss_mb=maxrss / 1024),
        output,
    )


def sync_summary(output: bytes) -> dict[str, Any]:
    """entries_read, outcome and plan counts of a ``dirsync sync --json`` document."""
    results = json.loads(output)
    first = results[0]
    counts = {k: v for k, v in (first.get("counts") or {}).items() if v}
    return {
        "entries_read": first.get("entries_read"),
        "outcome": first.get("outcome", ""),
        "counts": ", ".join(f"{k} {v}" for k, v in counts.items()),
    }
