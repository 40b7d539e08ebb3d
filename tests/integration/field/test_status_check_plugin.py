"""``status --check`` as a Nagios/Icinga plugin: a refused or failed latest run is a WARNING,
an unreadable config or store UNKNOWN (exit 3), and the perfdata parses."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from freezegun.api import FrozenDateTimeFactory

from dirsync.cli.main import cli
from tests.integration.daemon.support import DaemonConfig

#: one perfdata item: 'label'=value[UOM];[warn];[crit];[min];[max] (the plugin guidelines)
PERFDATA = re.compile(r"^'[^'=]+'=(U|-?\d+(\.\d+)?)(s|%|B|c)?(;[^; ]*){0,4}$")


def check(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "status", "--check", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def parse(line: str) -> tuple[str, list[str]]:
    assert line.endswith("\n") and line.count("\n") == 1, line
    text, _, perfdata = line.rstrip("\n").partition(" | ")
    items = perfdata.split(" ")
    assert all(PERFDATA.match(item) for item in items), items
    return text, items


def test_a_refused_or_failed_latest_run_is_a_warning_until_a_run_succeeds(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.add("acme", interval="10m")
    config = setup.write()
    assert cli_run(config, "sync") == 0
    setup.organizations["acme"]["seats"] = 1  # the next run's plan needs more: refused
    setup.tree.add(setup.tree.person("dave"))
    setup.write()
    frozen.tick(timedelta(minutes=1))
    assert cli_run(config, "sync") == 3
    code, out = check(config)
    text, perfdata = parse(out)
    assert code == 1
    assert text.startswith("WARNING: acme's latest run was refused: ")
    assert perfdata == ["'acme_age'=60s;;1800;0;", "'acme_seats'=3;;;0;1"]

    setup.organizations["acme"]["source"]["url"] = "ldap://127.0.0.1:1"  # unreachable
    setup.write()
    frozen.tick(timedelta(minutes=1))
    assert cli_run(config, "sync") == 1
    code, out = check(config)
    assert code == 1 and out.startswith("WARNING: acme's latest run failed: ")

    setup.organizations["acme"]["source"]["url"] = setup.tree.server.url
    setup.organizations["acme"]["seats"] = 0
    setup.write()
    frozen.tick(timedelta(minutes=1))
    assert cli_run(config, "sync") == 0
    assert check(config)[0] == 0


def test_an_unreadable_config_or_store_is_unknown_exit_3(
    setup: DaemonConfig, tmp_path: Path
) -> None:
    assert check(tmp_path / "absent.toml") == (
        3,
        f"UNKNOWN: {tmp_path / 'absent.toml'}: the config file does not exist\n",
    )
    setup.add("acme", interval="often")
    code, out = check(setup.write())
    assert code == 3 and out.startswith("UNKNOWN: ") and "organization[acme].interval" in out
    setup.add("acme")
    config = setup.write()
    setup.db.parent.mkdir(parents=True)
    setup.db.write_bytes(b"this is not a SQLite database, it is long enough to be read" * 20)
    code, out = check(config)
    assert code == 3 and out.startswith("UNKNOWN: cannot open the store"), out


def cli_run(config: Path, *args: str) -> int:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code
