"""Throttling, retries, timeouts and token reuse, on frozen time: nothing here sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from dirsync.errors import SourceUnreachable
from dirsync.plan import Outcome
from dirsync.rules import SyncRules
from dirsync.state.sql_store import SqlStore
from dirsync.sync.run import run_organization
from dirsync.testing.graph_fake import Fault, GraphFake
from dirsync.testing.graph_tenant import Tenant
from tests.integration.azure.conftest import connector


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time("2026-03-01 09:00:00") as factory:
        yield factory


class Sleeper:
    """Advances frozen time instead of sleeping, and remembers every wait."""

    def __init__(self, frozen: FrozenDateTimeFactory) -> None:
        self.frozen = frozen
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.frozen.tick(seconds)


def people(tenant: Tenant, count: int = 3) -> list[str]:
    ids = [tenant.add_user(display_name=f"P{i}", mail=f"p{i}@t.example") for i in range(count)]
    tenant.add_group(display_name="Staff", members=tuple(ids))
    return ids


def test_no_request_is_sent_before_retry_after_has_elapsed(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, frozen: FrozenDateTimeFactory
) -> None:
    people(tenant)
    sleeper = Sleeper(frozen)
    graph.fail(Fault(status=429, retry_after="7", path="/v1.0/users?"))
    graph.fail(Fault(status=503, retry_after="2", path="/v1.0/groups?"))
    conn = connector(graph, tenant, tmp_path, sleep=sleeper)
    try:
        reading = conn.read(None)
    finally:
        conn.close()
    assert reading.snapshot is not None and len(reading.snapshot.users) == 3
    assert sleeper.waits == [7.0, 2.0]
    sent = graph.graph_requests(tenant.tenant_id)
    throttled = [(a, b) for a, b in pairwise(sent) if a.status in (429, 503)]
    assert len(throttled) == 2
    for answer, retry in throttled:
        assert retry.path == answer.path
        assert retry.at - answer.at >= {429: 7, 503: 2}[answer.status]


def test_a_fractional_retry_after_as_graph_sends_it_is_waited_in_full(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, frozen: FrozenDateTimeFactory
) -> None:
    people(tenant)
    sleeper = Sleeper(frozen)
    # Microsoft's documented throttling answer: "Retry-After: 2.128"
    graph.fail(Fault(status=429, retry_after="2.128", path="/v1.0/users?"))
    conn = connector(graph, tenant, tmp_path, sleep=sleeper)
    try:
        reading = conn.read(None)
    finally:
        conn.close()
    assert reading.snapshot is not None and len(reading.snapshot.users) == 3
    assert sleeper.waits == [2.128]
    sent = graph.graph_requests(tenant.tenant_id)
    (answer, retry) = next((a, b) for a, b in pairwise(sent) if a.status == 429)
    assert retry.path == answer.path and retry.at - answer.at >= 2.128


def test_a_retry_after_beyond_the_cap_ends_the_run_without_waiting_or_retrying_early(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, frozen: FrozenDateTimeFactory
) -> None:
    people(tenant)
    sleeper = Sleeper(frozen)
    graph.fail(Fault(status=429, retry_after="3600.5", path="/v1.0/users?"))
    conn = connector(graph, tenant, tmp_path, sleep=sleeper)
    try:
        with pytest.raises(SourceUnreachable, match=r"wait 3600\.5 s \(Retry-After\)"):
            conn.read(None)
    finally:
        conn.close()
    assert sleeper.waits == []
    assert [r.status for r in graph.graph_requests(tenant.tenant_id)][-1] == 429


def test_without_retry_after_the_backoff_grows_exponentially_with_jitter(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, frozen: FrozenDateTimeFactory
) -> None:
    people(tenant)
    sleeper = Sleeper(frozen)
    graph.fail(Fault(status=429, path="/v1.0/users?", times=4))
    conn = connector(graph, tenant, tmp_path, sleep=sleeper)
    try:
        conn.read(None)
    finally:
        conn.close()
    assert len(sleeper.waits) == 4
    for attempt, wait in enumerate(sleeper.waits):
        ceiling = 2.0**attempt
        assert ceiling / 2 <= wait <= ceiling


def test_endless_throttling_fails_after_bounded_retries_and_changes_nothing(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, frozen: FrozenDateTimeFactory
) -> None:
    ids = people(tenant)
    store = SqlStore.open(f"sqlite:///{tmp_path / 'dirsync.db'}")
    sleeper = Sleeper(frozen)
    conn = connector(graph, tenant, tmp_path, sleep=sleeper, max_attempts=4)
    try:
        first = run_organization("acme", SyncRules(), conn, store)
        assert first.outcome == Outcome.APPLIED
        before = (store.members("acme"), store.groups("acme"), store.load("acme").cursor)
        tenant.update_user(ids[0], displayName="Renamed")
        graph.fail(Fault(status=429, retry_after="30", path="/v1.0/users/delta", times=100))
        result = run_organization("acme", SyncRules(), conn, store)
    finally:
        conn.close()
    assert result.outcome == Outcome.FAILED
    assert result.error is not None and "429" in result.error and "4 times" in result.error
    assert sleeper.waits == [30.0, 30.0, 30.0]
    after = (store.members("acme"), store.groups("acme"), store.load("acme").cursor)
    store.close()
    assert after == before


def test_one_token_serves_every_request_until_it_nears_expiry(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, frozen: FrozenDateTimeFactory
) -> None:
    people(tenant, 5)
    conn = connector(graph, tenant, tmp_path, page_size=2)
    token_path = f"/{tenant.tenant_id}/oauth2/v2.0/token"
    try:
        cursor = conn.read(None).cursor
        conn.read(cursor)
        assert [r.path for r in graph.requests].count(token_path) == 1
        assert len(graph.graph_requests(tenant.tenant_id)) > 5
        frozen.tick(3600)
        conn.read(cursor)
    finally:
        conn.close()
    assert [r.path for r in graph.requests].count(token_path) == 2


def test_a_throttled_token_request_is_retried_only_after_retry_after(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, frozen: FrozenDateTimeFactory
) -> None:
    people(tenant)
    sleeper = Sleeper(frozen)
    graph.fail(Fault(status=429, retry_after="5", path="/oauth2/"))
    conn = connector(graph, tenant, tmp_path, sleep=sleeper)
    try:
        reading = conn.read(None)
    finally:
        conn.close()
    assert reading.snapshot is not None
    token_path = f"/{tenant.tenant_id}/oauth2/v2.0/token"
    posts = [r for r in graph.requests if r.path == token_path]
    assert [p.status for p in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 5


def test_a_graph_that_does_not_answer_times_out_with_a_clear_error(
    graph: GraphFake, tenant: Tenant, tmp_path: Path
) -> None:
    people(tenant)
    graph.fail(Fault(kind="hang", path="/v1.0/users?"))
    conn = connector(graph, tenant, tmp_path, timeout="1s")
    try:
        with pytest.raises(SourceUnreachable, match="organization acme: Graph did not answer"):
            conn.read(None)
    finally:
        conn.close()


def test_a_token_endpoint_that_does_not_answer_times_out_with_a_clear_error(
    graph: GraphFake, tenant: Tenant, tmp_path: Path
) -> None:
    people(tenant)
    graph.fail(Fault(kind="hang", path="/oauth2/"))
    conn = connector(graph, tenant, tmp_path, timeout="1s")
    try:
        with pytest.raises(SourceUnreachable, match=r"organization acme: .* did not answer within"):
            conn.read(None)
    finally:
        conn.close()
