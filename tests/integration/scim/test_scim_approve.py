"""``--approve`` for a refused push, end to end: a burst of DELETEs over real HTTPS is refused
by the removal window, the refusal names its plan and the command, an administrator runs it
(the real command line), and the identity provider's retry goes through, with the window
restarted at the approval."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from dirsync.cli.main import cli
from tests.integration.scim.conftest import Certificates, Scim, serve
from tests.integration.scim.test_scim_users import entra_user, patch

_PLAN = re.compile(r"plan ([0-9a-f]{16}); to apply it when the identity provider retries: (.+)\)$")


@pytest.fixture
def scim_two_removals(tmp_path: Path, certificates: Certificates) -> Iterator[Scim]:
    """acme with max_removals = 2 over the default removal_window (1h), on the real clock."""
    yield from serve(tmp_path, certificates, sync={"max_removals": 2})


@pytest.fixture
def scim_no_removals(tmp_path: Path, certificates: Certificates) -> Iterator[Scim]:
    yield from serve(tmp_path, certificates, sync={"max_removals": 0})


def _users(client: httpx.Client, count: int) -> list[str]:
    ids = []
    for number in range(count):
        created = client.post("/Users", json=entra_user(f"u{number}@acme.example"))
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


def _refused(answer: httpx.Response) -> tuple[str, str]:
    """The refused plan's digest and the command the 403 names."""
    assert answer.status_code == 403, answer.text
    found = _PLAN.search(answer.json()["detail"])
    assert found is not None, answer.json()["detail"]
    return found.group(1), found.group(2)


def _dirsync(scim: Scim, command: str) -> Any:
    """The command as an administrator types it (``dirsync ...``), run for real."""
    words = command.split()
    assert words[0] == "dirsync"
    return CliRunner().invoke(cli, ["--config", str(scim.config_path), *words[1:]])


def _statuses(scim: Scim) -> dict[str, str]:
    return {m["email"]: m["status"] for m in scim.cli("members", "--org", "acme")}


def test_an_approved_burst_goes_on_when_the_identity_provider_retries(
    scim_two_removals: Scim,
) -> None:
    scim = scim_two_removals
    client = scim.client()
    ids = _users(client, 6)
    for user_id in ids[:2]:
        assert client.delete(f"/Users/{user_id}").status_code == 204
    digest, command = _refused(client.delete(f"/Users/{ids[2]}"))
    assert command == f"dirsync sync --org acme --approve {digest}"
    # the run record names the same plan and command
    refused_run = next(r for r in scim.cli("runs", "--org", "acme") if r["outcome"] == "refused")
    assert digest in refused_run["error"] and command in refused_run["error"]

    # a digest that was never refused is a clear error, and records nothing
    wrong = _dirsync(scim, "dirsync sync --org acme --approve 0123456789abcdef")
    assert wrong.exit_code == 2
    assert "no run of acme refused a plan '0123456789abcdef'" in wrong.output
    assert "plan.approve" not in {e["action"] for e in scim.cli("events", "--org", "acme")}

    approved = _dirsync(scim, command)
    assert approved.exit_code == 0, approved.output
    assert f"plan {digest} of acme approved" in approved.output
    approval = [e for e in scim.cli("events", "--org", "acme") if e["action"] == "plan.approve"]
    assert [(e["target"], e["actor"].startswith("admin:")) for e in approval] == [(digest, True)]

    # the retry goes through; the window restarted at the approval: two more, then refused
    assert client.delete(f"/Users/{ids[2]}").status_code == 204
    assert client.delete(f"/Users/{ids[3]}").status_code == 204
    off = patch({"op": "Replace", "path": "active", "value": "False"})
    again, _ = _refused(client.patch(f"/Users/{ids[4]}", json=off))
    assert again != digest
    assert _statuses(scim) == {
        **{f"u{n}@acme.example": "revoked" for n in range(4)},
        "u4@acme.example": "invited",
        "u5@acme.example": "invited",
    }


def test_a_push_the_guards_refuse_alone_is_applied_once_by_its_approval(
    scim_no_removals: Scim,
) -> None:
    scim = scim_no_removals  # max_removals = 0: every deprovisioning is refused
    client = scim.client()
    ids = _users(client, 2)
    digest, command = _refused(client.delete(f"/Users/{ids[0]}"))
    result = _dirsync(scim, command + " --json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["organization"], document["approved"]) == ("acme", digest)

    # the approval is of that plan, once: another deletion is still refused
    assert _refused(client.delete(f"/Users/{ids[1]}"))[0] != digest
    assert client.delete(f"/Users/{ids[0]}").status_code == 204
    assert _statuses(scim) == {"u0@acme.example": "revoked", "u1@acme.example": "invited"}
    applied = [r for r in scim.cli("runs", "--org", "acme") if r["outcome"] == "applied"]
    assert len(applied) == 3  # two creates, the approved deletion


def test_a_refused_create_names_the_limit_not_an_approval_that_could_never_apply(
    scim_two_seats: Scim,
) -> None:
    client = scim_two_seats.client()
    _users(client, 2)
    refused = client.post("/Users", json=entra_user("u9@acme.example"))
    assert refused.status_code == 403, refused.text
    detail = refused.json()["detail"]
    assert "seats" in detail and "cannot be approved" in detail
    assert "--approve" not in detail
