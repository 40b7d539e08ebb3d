"""``dirsync run`` with ``[daemon] scim_listen``: the daemon as a real process serves the
endpoint over HTTPS, applies pushes, and stops on SIGTERM; its log never holds the token."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.daemon.support import closed_port
from tests.integration.scim.conftest import TOKENS, Certificates, write_config
from tests.integration.scim.test_scim_users import entra_user

DEADLINE = 20.0


def test_the_daemon_serves_pushes_and_stops_on_sigterm(
    tmp_path: Path, certificates: Certificates
) -> None:
    port = closed_port()
    config = write_config(tmp_path, certificates, listen=f"127.0.0.1:{port}")
    log = (tmp_path / "daemon.log").open("w+")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "dirsync", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        client = httpx.Client(
            base_url=f"https://127.0.0.1:{port}/scim/v2/acme",
            verify=ssl.create_default_context(cafile=str(certificates.ca_file)),
            headers={"Authorization": f"Bearer {TOKENS['acme']}"},
            timeout=30,
        )
        with client:
            _wait_for(client, daemon)
            created = client.post("/Users", json=entra_user("ada@acme.example"))
            assert created.status_code == 201, created.text
            wrong = client.get("/Users", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        members = subprocess.run(
            [sys.executable, "-m", "dirsync", "--config", str(config), "members", "--org", "acme"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert members.returncode == 0, members.stderr
        assert "ada@acme.example" in members.stdout
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=DEADLINE) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        log.seek(0)
        written = log.read()
        log.close()
    assert "scim.request" in written
    for token in TOKENS.values():
        assert token not in written


def test_a_new_token_takes_effect_at_reload_and_the_old_one_stops_working(
    tmp_path: Path, certificates: Certificates
) -> None:
    """Token rotation: the token file gets a new token, ``dirsync reload`` (SIGHUP) makes the
    running daemon read it; from then on the old token is a 401 and the new one works, with
    the same process and the same listening socket."""
    port = closed_port()
    config = write_config(tmp_path, certificates, listen=f"127.0.0.1:{port}")
    log = (tmp_path / "daemon.log").open("w+")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "dirsync", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    rotated = "acme-rotated-token-5a5a5a5a5a5a5a5a"
    try:
        old, new = (
            httpx.Client(
                base_url=f"https://127.0.0.1:{port}/scim/v2/acme",
                verify=ssl.create_default_context(cafile=str(certificates.ca_file)),
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            for token in (TOKENS["acme"], rotated)
        )
        with old, new:
            _wait_for(old, daemon)
            assert old.post("/Users", json=entra_user("ada@acme.example")).status_code == 201
            assert new.get("/Users").status_code == 401

            (tmp_path / "acme.token").write_text(rotated + "\n")
            reload = subprocess.run(
                [sys.executable, "-m", "dirsync", "--config", str(config), "reload"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert reload.returncode == 0, reload.stderr

            assert old.get("/Users").status_code == 401
            assert old.post("/Users", json=entra_user("bob@acme.example")).status_code == 401
            listed = new.get("/Users")
            assert listed.status_code == 200, listed.text
            assert [u["userName"] for u in listed.json()["Resources"]] == ["ada@acme.example"]
            assert new.post("/Users", json=entra_user("cy@acme.example")).status_code == 201
        assert daemon.poll() is None  # no restart
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=DEADLINE) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        log.seek(0)
        written = log.read()
        log.close()
    for token in (*TOKENS.values(), rotated):
        assert token not in written


def _wait_for(client: httpx.Client, daemon: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if daemon.poll() is not None:
            pytest.fail(f"dirsync run exited with {daemon.returncode} before serving")
        try:
            if client.get("/ServiceProviderConfig").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail("the daemon did not serve SCIM in time")
