"""The command line's small things: --org optional with one organization, --json on report,
test across every organization, did-you-mean for unknown keys, completion of --org."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dirsync.cli.main import cli
from tests.integration.daemon.support import DaemonConfig


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_read_commands_need_no_org_with_one_organization_and_report_takes_json(
    setup: DaemonConfig,
) -> None:
    config = setup.add("acme").write()
    assert run(config, "sync")[0] == 0
    code, out, err = run(config, "members", "--json")
    assert code == 0, err
    assert [m["email"] for m in json.loads(out)] == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    code, out, _ = run(config, "groups", "--json")
    assert code == 0 and [g["name"] for g in json.loads(out)] == ["Staff"]
    code, out, _ = run(config, "report", "--json")
    report = json.loads(out)
    assert code == 0 and report["organization"] == "acme" and len(report["members"]) == 3
    assert run(config, "report", "--format", "json")[1].startswith('{"organization": "acme"')

    setup.add("beta").write()
    code, _, err = run(config, "members", "--json")
    assert code == 2 and "name an organization with --org" in err


def test_test_checks_every_organization_and_reports_each(setup: DaemonConfig) -> None:
    setup.add("acme")
    setup.add("down", reachable=False)
    config = setup.write()
    code, out, _ = run(config, "test")
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == "acme: ok, 3 users, 1 groups"
    assert lines[1].startswith("down: FAILED: ") and "127.0.0.1" in lines[1]
    code, out, _ = run(config, "test", "--json")
    acme, down = json.loads(out)
    assert code == 1
    assert acme["error"] is None and len(acme["users"]) == 3 and acme["organization"] == "acme"
    assert down["error"] and down["users"] == [] and down["organization"] == "down"
    # one organization: the contract's single document, as before
    code, out, _ = run(config, "test", "--org", "acme", "--json")
    assert code == 0 and json.loads(out)["organization"] == "acme"


def test_an_unknown_key_says_which_key_was_meant(setup: DaemonConfig) -> None:
    config = setup.add("acme", intervall="5m").write()
    code, _, err = run(config, "config", "check")
    assert code == 2
    assert "organization[acme].intervall: unknown key; did you mean 'interval'?" in err
    config.write_text(config.read_text().replace("bind_password", "bind_passwd"))
    code, _, err = run(config, "config", "check")
    assert "source.bind_passwd: unknown key; did you mean 'bind_password'?" in err


def test_shell_completion_offers_the_configs_organizations(setup: DaemonConfig) -> None:
    setup.add("acme")
    setup.add("acorn")
    setup.add("beta")
    config = setup.write()
    env = {
        **os.environ,
        "_DIRSYNC_COMPLETE": "bash_complete",
        "COMP_WORDS": f"dirsync --config {config} members --org ac",
        "COMP_CWORD": "5",
    }
    done = subprocess.run(
        [sys.executable, "-m", "dirsync"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["plain,acme", "plain,acorn"]
