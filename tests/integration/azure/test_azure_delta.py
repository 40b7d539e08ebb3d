"""Delta rounds against the local Graph end in exactly the picture a fresh full read gives."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dirsync.mapping.desired import desired_organization
from dirsync.mapping.mirror import apply_delta, mirror_of
from dirsync.model import Mirror, Reading
from dirsync.testing.graph_fake import GraphFake
from dirsync.testing.graph_tenant import Paging, Tenant
from tests.integration.azure.conftest import CLIENT_ID, SECRET, connector

_tenants = itertools.count(1)

OPS = st.one_of(
    st.tuples(st.just("add_user"), st.booleans(), st.booleans(), st.booleans()),
    st.tuples(st.just("rename_user"), st.integers(0, 50)),
    st.tuples(st.just("toggle_enabled"), st.integers(0, 50)),
    st.tuples(st.just("drop_mail"), st.integers(0, 50)),
    st.tuples(st.just("soft_delete"), st.integers(0, 50)),
    st.tuples(st.just("restore"), st.integers(0, 50)),
    st.tuples(st.just("hard_delete"), st.integers(0, 50)),
    st.tuples(st.just("add_group"), st.integers(0, 50)),
    st.tuples(st.just("rename_group"), st.integers(0, 50)),
    st.tuples(st.just("delete_group"), st.integers(0, 50)),
    st.tuples(st.just("add_member"), st.integers(0, 50), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("remove_member"), st.integers(0, 50), st.integers(0, 50)),
)
PAGING = st.builds(
    Paging,
    max_page=st.integers(1, 4),
    empty_pages=st.booleans(),
    replay=st.booleans(),
    member_slice=st.integers(0, 3),
    partial_users=st.booleans(),
)


def mutate(tenant: Tenant, op: tuple[Any, ...], names: itertools.count[int]) -> None:
    users, groups = sorted(tenant.users), sorted(tenant.groups)
    deleted = sorted(tenant.soft_deleted)
    kind, *args = op

    def pick(items: list[str], index: int) -> str | None:
        return items[index % len(items)] if items else None

    n = next(names)
    if kind == "add_user":
        with_mail, enabled, guest = args
        mail = f"user{n}@t.example" if with_mail else None
        tenant.add_user(display_name=f"User {n}", mail=mail, enabled=enabled, guest=guest)
    elif kind == "add_group":
        tenant.add_group(display_name=f"Group {n}")
    elif kind == "restore" and (uid := pick(deleted, args[0])):
        tenant.restore_user(uid)
    elif kind in ("rename_group", "delete_group") and (gid := pick(groups, args[0])):
        if kind == "rename_group":
            tenant.rename_group(gid, f"Group {n}")
        else:
            tenant.delete_group(gid)
    elif kind == "add_member" and (gid := pick(groups, args[0])):
        nested = args[2] and len(groups) > 1
        if member := pick(groups if nested else users, args[1]):
            tenant.add_member(gid, member)
    elif kind == "remove_member" and (gid := pick(groups, args[0])):
        if member := pick(sorted(tenant.members[gid]), args[1]):
            tenant.remove_member(gid, member)
    elif (uid := pick(users, args[0])) is not None:
        if kind == "rename_user":
            tenant.update_user(uid, displayName=f"Renamed {n}")
        elif kind == "toggle_enabled":
            tenant.update_user(uid, accountEnabled=not tenant.users[uid]["accountEnabled"])
        elif kind == "drop_mail":
            tenant.update_user(uid, mail=None)
        elif kind == "soft_delete":
            tenant.soft_delete_user(uid)
        elif kind == "hard_delete":
            tenant.hard_delete_user(uid)


def snapshot_mirror(reading: Reading) -> Mirror:
    assert reading.snapshot is not None
    return mirror_of(reading.snapshot)[0]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    paging=PAGING,
    seed=st.lists(OPS, max_size=12),
    rounds=st.lists(st.lists(OPS, min_size=1, max_size=8), min_size=1, max_size=3),
)
def test_delta_rounds_after_any_mutations_equal_a_fresh_full_read(
    graph: GraphFake,
    tmp_path: Path,
    paging: Paging,
    seed: list[tuple[Any, ...]],
    rounds: list[list[tuple[Any, ...]]],
) -> None:
    tenant = graph.add_tenant(f"prop-{next(_tenants)}")
    graph.add_app(tenant.tenant_id, CLIENT_ID, secret=SECRET)
    tenant.paging = paging
    names = itertools.count()
    for op in seed:
        mutate(tenant, op, names)
    conn = connector(graph, tenant, tmp_path)
    try:
        first = conn.read(None)
        mirror, cursor = snapshot_mirror(first), first.cursor
        for ops in rounds:
            for op in ops:
                mutate(tenant, op, names)
            reading = conn.read(cursor)
            assert reading.delta is not None
            mirror, cursor = apply_delta(mirror, reading.delta), reading.cursor
            fresh = snapshot_mirror(conn.read(None))
            assert mirror == fresh
            assert desired_organization(mirror, linked_ids=frozenset()).groups == (
                desired_organization(fresh, linked_ids=frozenset()).groups
            )
        replay = conn.read(first.cursor)  # the same changes again, from the first cursor
        assert replay.delta is not None
        again = apply_delta(snapshot_mirror(first), replay.delta)
        assert apply_delta(again, replay.delta) == again
    finally:
        conn.close()
    assert not graph.unexpected


def test_one_change_in_5000_users_sends_only_delta_requests(
    graph: GraphFake, tenant: Tenant, tmp_path: Path
) -> None:
    tenant.paging = Paging(max_page=999)
    ids = [
        tenant.add_user(display_name=f"User {i}", mail=f"user{i}@big.example") for i in range(5000)
    ]
    for g in range(20):
        tenant.add_group(display_name=f"Team {g}", members=tuple(ids[g * 250 : (g + 1) * 250]))
    conn = connector(graph, tenant, tmp_path)
    try:
        full = conn.read(None)
        assert full.snapshot is not None and len(full.snapshot.users) == 5000
        tenant.update_user(ids[1234], displayName="The One Change")
        graph.clear_requests()
        delta = conn.read(full.cursor)
    finally:
        conn.close()
    sent = graph.graph_requests(tenant.tenant_id)
    assert [r.path for r in sent] == ["/v1.0/users/delta", "/v1.0/groups/delta"]
    assert all("$deltatoken" in r.query for r in sent)
    assert delta.delta is not None
    assert [u.name for u in delta.delta.users] == ["The One Change"]
    assert delta.delta.group_changes == () and delta.entries_read == 1
