"""How the running daemon's last reload went, for ``dirsync reload`` (systemd's ExecReload=).

After each SIGHUP the daemon replaces ``<runtime dir>/reload.json`` with its pid, a generation
that grows by one per reload, whether the file on disk was adopted, and the problems that made
it refuse the file. ``dirsync reload`` sends SIGHUP and waits for a newer generation, so that
``systemctl reload dirsync`` exits non-zero when the daemon kept its running config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dirsync.state.files import private_folder, write_private_text

REPORT_FILE = "reload.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadReport:
    pid: int
    generation: int
    adopted: bool
    problems: tuple[str, ...] = ()


def write_report(directory: Path, report: ReloadReport) -> None:
    private_folder(directory)
    data = {
        "pid": report.pid,
        "generation": report.generation,
        "adopted": report.adopted,
        "problems": list(report.problems),
    }
    write_private_text(directory / REPORT_FILE, json.dumps(data) + "\n")


def read_report(directory: Path) -> ReloadReport | None:
    try:
        data = json.loads((directory / REPORT_FILE).read_text(encoding="utf-8"))
        return ReloadReport(
            pid=int(data["pid"]),
            generation=int(data["generation"]),
            adopted=bool(data["adopted"]),
            problems=tuple(str(p) for p in data["problems"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_report(directory: Path) -> None:
    (directory / REPORT_FILE).unlink(missing_ok=True)
