"""A hostile Graph and token endpoint, over real HTTPS on loopback: answers that trickle one
byte at a time, announce 1 GiB or never end.

The promise under test: the read ends at ``read_deadline`` or at the size limit of a body
(``limits.MAX_BODY`` for Graph, ``limits.MAX_TOKEN_BODY`` for a token answer), with one line
naming the organization, the server and the limit; through the CLI, exit 1 and the store as
it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from dirsync.connectors.azure_ad.limits import MAX_BODY, MAX_TOKEN_BODY
from dirsync.errors import SourceReadIncomplete
from dirsync.testing.graph_fake import Fault, GraphFake
from dirsync.testing.graph_tenant import Tenant
from tests.integration.azure.conftest import AzureDirsync, connector
from tests.integration.test_hostile_directory import dump


def people(tenant: Tenant, count: int = 3) -> None:
    ids = [tenant.add_user(display_name=f"P{i}", mail=f"p{i}@t.example") for i in range(count)]
    tenant.add_group(display_name="Staff", members=tuple(ids))


def read_error(graph: GraphFake, tenant: Tenant, tmp_path: Path, **settings: str) -> str:
    conn = connector(graph, tenant, tmp_path, **settings)
    try:
        with pytest.raises(SourceReadIncomplete) as caught:
            conn.read(None)
    finally:
        conn.close()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("organization acme: ")
    return message


def test_a_trickling_graph_page_is_stopped_at_read_deadline(
    graph: GraphFake, tenant: Tenant, tmp_path: Path
) -> None:
    people(tenant)
    fault = Fault(kind="trickle", path="/v1.0/users?", interval=0.3)
    graph.fail(fault)
    # every byte comes long before the 2 s timeout; only the deadline ends the read
    error = read_error(graph, tenant, tmp_path, timeout="2s", read_deadline="3s")
    assert f"the read from {graph.url} passed its read_deadline of 3s during GET /v1.0/users" in (
        error
    )
    assert "requests sent); nothing was changed" in error
    assert 1 <= fault.sent <= 3 / 0.3 + 3  # stopped at the deadline, not after


def test_a_graph_page_announced_at_1_gib_is_refused_before_it_is_read(
    graph: GraphFake, tenant: Tenant, tmp_path: Path
) -> None:
    people(tenant)
    fault = Fault(kind="oversized", path="/v1.0/users?")
    graph.fail(fault)
    error = read_error(graph, tenant, tmp_path)
    assert f"GET /v1.0/users at {graph.url}: the answer announced 1,073,741,824 bytes" in error
    assert f"over the limit of {MAX_BODY:,} bytes; not read further" in error
    assert fault.sent < MAX_BODY // 4  # what the socket buffers took, not the body


def test_a_graph_page_without_end_is_cut_off_at_the_limit(
    graph: GraphFake, tenant: Tenant, tmp_path: Path
) -> None:
    people(tenant)
    fault = Fault(kind="endless", path="/v1.0/users?")
    graph.fail(fault)
    error = read_error(graph, tenant, tmp_path)
    assert f"the answer sent more, over the limit of {MAX_BODY:,} bytes" in error
    assert MAX_BODY < fault.sent < MAX_BODY + 16 * 1024 * 1024


def test_a_trickling_token_endpoint_is_stopped_at_read_deadline(
    graph: GraphFake, tenant: Tenant, tmp_path: Path
) -> None:
    people(tenant)
    fault = Fault(kind="trickle", path="/oauth2/", interval=0.3)
    graph.fail(fault)
    error = read_error(graph, tenant, tmp_path, timeout="2s", read_deadline="3s")
    assert f"a token from {graph.url}: the read passed its read_deadline of 3s" in error
    assert 1 <= fault.sent <= 3 / 0.3 + 3


def test_a_token_answer_without_end_is_cut_off_at_its_limit(
    graph: GraphFake, tenant: Tenant, tmp_path: Path
) -> None:
    people(tenant)
    fault = Fault(kind="endless", path="/oauth2/")
    graph.fail(fault)
    error = read_error(graph, tenant, tmp_path)
    host = graph.url.removeprefix("https://")
    assert f"a token from {graph.url}: {host} sent more than {MAX_TOKEN_BODY:,} bytes" in error
    assert fault.sent < MAX_TOKEN_BODY + 16 * 1024 * 1024


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time("2026-03-01 09:00:00") as factory:
        yield factory


def test_a_retry_after_that_would_pass_the_deadline_ends_the_read_without_waiting(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, frozen: FrozenDateTimeFactory
) -> None:
    people(tenant)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        frozen.tick(seconds)

    graph.fail(Fault(status=429, retry_after="50", path="/v1.0/groups?", times=5))
    graph.fail(Fault(status=429, retry_after="50", path="/v1.0/users?", times=5))
    # 50 s is within the 300 s a run waits for Retry-After, but not within the deadline
    error = read_error(graph, tenant, tmp_path, read_deadline="1m", sleep=sleep)  # type: ignore[arg-type]
    assert waits == [50.0]  # one wait fits in the minute; the second would not
    assert "waiting 50 s to GET /v1.0/" in error
    assert f"would pass the read_deadline of 60s of the read from {graph.url}" in error


def test_the_cli_fails_a_trickling_graph_with_exit_1_and_changes_nothing(
    graph: GraphFake, tenant: Tenant, azure: AzureDirsync
) -> None:
    people(tenant)
    first = subprocess.run(
        [sys.executable, "-m", "dirsync", "--config", str(azure.config), "sync", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode == 0, first.stderr
    tenant.add_user(display_name="New", mail="new@t.example")  # what the stopped run would add
    before = dump(azure.db)
    fault = Fault(kind="trickle", path="/v1.0/users", interval=0.3)
    graph.fail(fault)
    azure.set(source={"timeout": "2s", "read_deadline": "3s"}, sync={"overwrite_existing": True})
    done = subprocess.run(
        [sys.executable, "-m", "dirsync", "--config", str(azure.config), "sync", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    (result,) = json.loads(done.stdout)
    assert result["outcome"] == "failed" and "\n" not in result["error"]
    assert "organization acme" in result["error"]
    assert "read_deadline of 3s" in result["error"]
    assert "Traceback" not in done.stderr
    assert 1 <= fault.sent <= 3 / 0.3 + 3
    assert dump(azure.db) == before
