"""Each command reads the secrets of the organizations it acts on, and no others: a timer unit
for acme runs as a user that may read acme's credential and not beta's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.daemon.support import DaemonConfig

#: root without the capabilities that read any file: a file of another user's is as closed to
#: it as to the service's unprivileged user
UNPRIVILEGED = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
]


def dirsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*UNPRIVILEGED, sys.executable, "-m", "dirsync", "--config", str(config), *args]
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def two_clients(setup: DaemonConfig, tmp_path: Path) -> Path:
    """acme's secret readable, beta's another user's (mode 0600, uid 65534)."""
    password = setup.tree.server.reader_password
    for name in ("acme", "beta"):
        (tmp_path / name).write_text(password + "\n")
        setup.add(name, source={"bind_password_file": name})
        del setup.organizations[name]["source"]["bind_password"]
    os.chown(tmp_path / "beta", 65534, 65534)
    (tmp_path / "beta").chmod(0o600)
    return setup.write()


def test_a_sync_of_one_organization_reads_no_other_organizations_secret(
    setup: DaemonConfig, tmp_path: Path
) -> None:
    config = two_clients(setup, tmp_path)
    done = dirsync(config, "sync", "--org", "acme", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["outcome"] == "applied"
    assert dirsync(config, "status", "--json").returncode == 0

    refused = dirsync(config, "sync", "--org", "beta")
    assert refused.returncode == 2
    assert refused.stderr == (
        f"dirsync: {config}: organization[beta].source.bind_password_file: cannot read "
        f"{tmp_path / 'beta'}: Permission denied\n"
    )


def test_config_check_warns_about_a_secret_this_user_may_not_read_and_stays_valid(
    setup: DaemonConfig, tmp_path: Path
) -> None:
    config = two_clients(setup, tmp_path)
    done = dirsync(config, "config", "check", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["valid"] is True
    (warning,) = report["warnings"]
    assert warning.startswith(
        f"organization[beta].source.bind_password_file: cannot read {tmp_path / 'beta'}: "
        "Permission denied; not readable by this user"
    )
    # a missing file is a problem whoever checks
    (tmp_path / "acme").unlink()
    done = dirsync(config, "config", "check")
    assert done.returncode == 2
    assert "organization[acme].source.bind_password_file: file acme does not exist" in done.stderr
