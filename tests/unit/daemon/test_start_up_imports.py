"""A daemon loads only what its config uses: no SCIM server without ``scim_listen``, no HTTP
client without a webhook alert (each costs every daemon megabytes for as long as it runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: the daemon's start-up as ``dirsync run`` does it, its main loop left at once
_START = """
import json, sys
from dirsync.daemon import process
process._loop = lambda *args: None
assert process.serve(sys.argv[1]) == 0
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""

_CONFIG = """
[store]
url = "sqlite:///{folder}/store.db"

[daemon]
startup_jitter = "1h"

[[organization]]
name = "acme"

[organization.source]
type = "ldap"
url = "ldaps://127.0.0.1:1"
base_dn = "dc=example,dc=org"
"""

_UNUSED = {"uvicorn", "starlette", "scim2_models", "lark", "httpx"}


def _started(tmp_path: Path, config: str) -> set[str]:
    """The top-level packages a daemon holds once started with ``config``."""
    path = tmp_path / "dirsync.toml"
    path.write_text(config.format(folder=tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", _START, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_a_daemon_without_scim_or_webhooks_loads_neither(tmp_path: Path) -> None:
    loaded = _started(tmp_path, _CONFIG)
    assert {"dirsync", "apscheduler", "sqlalchemy", "prometheus_client"} <= loaded
    assert not loaded & _UNUSED
