"""Run one command as a child process and measure it: wall, CPU (user+sys), peak RSS.

``os.wait4`` gives the child's own rusage (``ru_maxrss`` in KiB on Linux), so a measurement
never mixes in the benchmark driver or an earlier child.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
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
    with out_path.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, env=env)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok_codes:
        raise CommandFailed(f"{label}: exit {proc.returncode}: {err.decode()[-3000:]}")
    output = out_path.read_bytes() if stdout_path else b""
    return (
        Measurement(
            label=label,
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            peak_rss_mb=usage.ru_maxrss / 1024,
        ),
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
