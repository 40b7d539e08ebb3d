"""A/B runs of two versions of dirsync against one slapd, alternating, for a noisy machine.

On a shared 2-core machine the same code's wall time can vary by 1.6-2x within an hour, so
figures from two ``bench/run`` runs do not compare. This runs the older revision (checked out
into a temporary git worktree) and the working tree in turn, round after round, against the
same directory. Each round, for each version, it runs a first ``sync --full`` into an empty
store and then a no-change sync. It prints every run and the medians. ``--instructions``
adds one callgrind run of each step: it counts instructions, which is steady whatever the
machine is doing, but not kernel time.

    .venv/bin/python -m bench.ab 8842fb5 --users 20000 --groups 400 --rounds 6 [--instructions]

``--changes`` then makes the bench's 100 changes and syncs each version's last store once.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from bench.ldap_bench import Bench, Scenario
from bench.measure import Measurement, run

REPO = Path(__file__).resolve().parent.parent
STEPS = (("first sync --full", ("--full",)), ("no-change sync", ()))


def _worktree(revision: str, directory: Path) -> Path:
    tree = directory / "a"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), revision],
        check=True,
    )
    return tree


def _compiled(tree: Path) -> None:
    # as an installed package is: with PYTHONDONTWRITEBYTECODE set, an uncompiled tree would be
    # compiled again in every measured process
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "dirsync")], check=True)


def _config(bench: Bench, store: Path) -> Path:
    """The bench's config with its own store (one per version and round)."""
    text = bench.config.read_text(encoding="utf-8")
    config = store.parent / "dirsync.toml"
    config.write_text(
        re.sub(r'url = "sqlite:[^"]+"', f'url = "sqlite:///{store}"', text, count=1),
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def _command(config: Path, flags: Sequence[str], *, callgrind: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "dirsync", "--config", str(config), "sync", "--json"]
    if callgrind is not None:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={callgrind}", *command]
    return [*command, *flags]


def _entry_points(tree: Path, directory: Path) -> Path:
    """The tree's own package metadata (its entry points, read from its pyproject.toml) in
    ``directory``: connectors are found through entry points, and the installed metadata is
    the working tree's, whose modules an older tree may not have (or have elsewhere)."""
    project = tomllib.loads((tree / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    sections = {"console_scripts": project.get("scripts", {})}
    sections.update(project.get("entry-points", {}))
    # a tree whose version comes from git (setuptools-scm) has none in pyproject.toml
    version = project.get("version", "0+ab")
    info = directory / f"dirsync-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: dirsync\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [
        line
        for group, entries in sections.items()
        for line in (f"[{group}]", *(f"{k} = {v}" for k, v in entries.items()), "")
    ]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return directory


def _environment(tree: Path, metadata: Path) -> dict[str, str]:
    # the tree's metadata comes before the installed one, and so wins (first found on sys.path)
    return {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{metadata}", "LDAPNOINIT": "1"}


#: a version: its tree and the environment its processes run in
Version = tuple[Path, dict[str, str]]

_WHICH = (
    "import dirsync, importlib.metadata as m; "
    "print(dirsync.__file__); print(m.entry_points(group='dirsync.connectors')['ldap'].value)"
)


def _check_versions(versions: dict[str, Version]) -> None:
    """Each version's interpreter imports dirsync from its own tree (``-m`` puts the current
    directory first on sys.path: run from a checkout, it would shadow PYTHONPATH) and finds
    the connectors that tree's pyproject.toml names."""
    for tree, env in versions.values():
        found, ldap = subprocess.run(
            [sys.executable, "-c", _WHICH], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        if not Path(found).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"bench.ab: {tree} would run {found}")
        project = tomllib.loads((tree / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        if ldap != project["entry-points"]["dirsync.connectors"]["ldap"]:
            raise SystemExit(f"bench.ab: {tree} would load its ldap connector from {ldap}")


def _rounds(
    bench: Bench, versions: dict[str, Version], rounds: int, scratch: Path
) -> dict[tuple[str, str], list[Measurement]]:
    results: dict[tuple[str, str], list[Measurement]] = {}
    for number in range(rounds):
        for name, (_, env) in versions.items():
            store = scratch / f"{name}-{number}" / "dirsync.db"
            store.parent.mkdir(parents=True)
            config = _config(bench, store)
            for label, flags in STEPS:
                measured, _ = run(label, _command(config, flags), env=env)
                results.setdefault((name, label), []).append(measured)
                print(f"{name} {label}: {measured.wall:.2f} s", file=sys.stderr, flush=True)
    return results


def _after_changes(
    bench: Bench, versions: dict[str, Version], rounds: int, scratch: Path
) -> dict[tuple[str, str], list[Measurement]]:
    """The bench's 100 changes made once, then a sync of each version's last store."""
    bench.apply_changes()
    label = "sync after 100 changes"
    results: dict[tuple[str, str], list[Measurement]] = {}
    for name, (_, env) in versions.items():
        config = scratch / f"{name}-{rounds - 1}" / "dirsync.toml"
        measured, _ = run(label, _command(config, ()), env=env)
        results[(name, label)] = [measured]
        print(f"{name} {label}: {measured.wall:.2f} s", file=sys.stderr, flush=True)
    return results


def _instructions(bench: Bench, versions: dict[str, Version], scratch: Path) -> dict[str, str]:
    """Instructions per version and step, from one callgrind run each."""
    counted: dict[str, str] = {}
    for name, (_, env) in versions.items():
        store = scratch / f"{name}-callgrind" / "dirsync.db"
        store.parent.mkdir(parents=True)
        config = _config(bench, store)
        for label, flags in STEPS:
            out = store.parent / f"callgrind.{len(counted)}"
            done = subprocess.run(
                _command(config, flags, callgrind=out),
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            found = re.search(r"Collected : (\d+)", done.stderr)
            counted[f"{name} {label}"] = f"{int(found.group(1)) / 1e9:.2f} G" if found else "?"
    return counted


def _table(results: dict[tuple[str, str], list[Measurement]]) -> str:
    lines = ["| version | step | runs, wall s | median wall s | median CPU s | peak RSS MB |"]
    lines.append("| --- | --- | --- | ---: | ---: | ---: |")
    for (name, label), runs in results.items():
        walls = ", ".join(f"{m.wall:.2f}" for m in runs)
        wall = statistics.median(m.wall for m in runs)
        cpu = statistics.median(m.cpu for m in runs)
        rss = max(m.peak_rss_mb for m in runs)
        lines.append(f"| {name} | {label} | {walls} | {wall:.2f} | {cpu:.2f} | {rss:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab")
    parser.add_argument("revision", help="the older version: a commit, branch or tag")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--instructions", action="store_true", help="also count instructions")
    parser.add_argument(
        "--changes", action="store_true", help="then the 100 changes and one sync of each"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="dirsync-ab-"))
    (scratch / "slapd").mkdir()
    bench = Bench(Scenario(users=args.users, groups=args.groups), scratch / "slapd")
    tree = _worktree(args.revision, scratch)
    try:
        trees = {args.revision: tree, "working tree": REPO}
        versions: dict[str, Version] = {}
        for number, (name, path) in enumerate(trees.items()):
            _compiled(path)
            metadata = _entry_points(path, scratch / f"metadata-{number}")
            versions[name] = (path, _environment(path, metadata))
        os.chdir(scratch)  # see _check_versions
        _check_versions(versions)
        bench.start()
        results = _rounds(bench, versions, args.rounds, scratch)
        if args.changes:
            results.update(_after_changes(bench, versions, args.rounds, scratch))
        print(f"{args.users:,} users, {args.groups:,} groups; {args.rounds} alternating rounds\n")
        print(_table(results))
        if args.instructions:
            print()
            for key, count in _instructions(bench, versions, scratch).items():
                print(f"- {key}: {count} instructions")
    finally:
        bench.stop()
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)])
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
