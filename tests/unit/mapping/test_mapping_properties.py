"""Properties of the pure core over generated directories and organizations."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync.errors import PlanRefused
from dirsync.mapping.pipeline import plan_run
from dirsync.model import DirectoryGroup, DirectorySnapshot, DirectoryUser, Mirror, Reading
from dirsync.organization import MemberStatus, OrganizationState, Role
from dirsync.rules import Deprovision, RemovalLimit, SyncRules
from dirsync.testing.builders import apply_plan, member

names = st.sampled_from(["ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal"])
emails = st.one_of(
    st.none(),
    st.just(""),
    st.just("no-at-sign"),
    st.just("with space@example.org"),
    names.map(lambda n: f"{n}@example.org"),
    names.map(lambda n: f"{n.upper()}@Example.org"),
    st.text(max_size=300),
)


@st.composite
def directories(draw: st.DrawFn) -> Reading:
    users = []
    for index in range(draw(st.integers(0, 8))):
        users.append(
            DirectoryUser(
                external_id=draw(st.sampled_from([f"u{index}", "dup-id"])),
                ref=f"uid=u{index}",
                username=draw(st.one_of(st.none(), names)),
                email=draw(emails),
                name=draw(st.one_of(st.none(), st.text(max_size=2000))),
                disabled=draw(st.booleans()),
            )
        )
    refs = [u.ref for u in users] + [f"cn=g{i}" for i in range(4)] + ["cn=ghost", "not a dn \\"]
    groups = tuple(
        DirectoryGroup(
            external_id=f"g{i}",
            ref=f"cn=g{i}",
            name=draw(st.text(max_size=20)),
            member_refs=frozenset(draw(st.lists(st.sampled_from(refs), max_size=8))),
        )
        for i in range(draw(st.integers(0, 4)))
    )
    return Reading(snapshot=DirectorySnapshot(users=tuple(users), groups=groups))


@st.composite
def organizations(draw: st.DrawFn) -> OrganizationState:
    members = {}
    for index in range(draw(st.integers(0, 6))):
        email = draw(names.map(lambda n: f"{n}@example.org"))
        members[email] = member(
            email,
            external_id=draw(st.one_of(st.none(), st.sampled_from([f"u{index}", "dup-id", "x"]))),
            status=draw(st.sampled_from(list(MemberStatus))),
            role=draw(st.sampled_from(list(Role))),
        )
    unique_ids: dict[str | None, object] = {}
    kept = []
    for m in members.values():
        if m.external_id is None or m.external_id not in unique_ids:
            unique_ids[m.external_id] = m
            kept.append(m)
    return OrganizationState(name="acme", members=tuple(kept))


rule_sets = st.builds(
    SyncRules,
    remove_disabled=st.booleans(),
    overwrite_existing=st.booleans(),
    deprovision=st.sampled_from(list(Deprovision)),
    max_removals=st.just(RemovalLimit(percent=100)),
)


@settings(max_examples=300, deadline=None)
@given(directories(), organizations(), rule_sets)
def test_any_directory_yields_a_plan_or_a_refusal_never_an_exception(
    read: Reading, state: OrganizationState, rules: SyncRules
) -> None:
    with contextlib.suppress(PlanRefused):
        plan_run(mirror=Mirror(), reading=read, current=state, rules=rules)


@settings(max_examples=300, deadline=None)
@given(directories(), organizations(), rule_sets)
def test_planning_after_applying_gives_an_empty_plan(
    read: Reading, state: OrganizationState, rules: SyncRules
) -> None:
    try:
        first = plan_run(mirror=Mirror(), reading=read, current=state, rules=rules)
    except PlanRefused:
        return
    after = apply_plan(state, first.plan)
    emails = [m.email.lower() for m in after.members]
    assert len(emails) == len(set(emails)), "a plan never creates two members with one email"
    second = plan_run(mirror=first.mirror, reading=read, current=after, rules=rules)
    assert second.plan.is_empty, second.plan


def test_hostile_entries_give_warnings_and_a_plan_never_an_exception() -> None:
    """The issue's list, in one directory: each entry is either synced or a warning."""
    members = [
        DirectoryUser(external_id=f"m{i}", ref=f"uid=m{i},ou=people", email=f"m{i}@example.org")
        for i in range(10_000)
    ]
    odd = [
        DirectoryUser(external_id="space", ref="uid=space", email="has space@example.org"),
        DirectoryUser(external_id="noat", ref="uid=noat", email="no-at-sign"),
        DirectoryUser(
            external_id="long", ref="uid=long", email="long@example.org", name="n" * 100_000
        ),
        DirectoryUser(external_id="bad-utf8", ref="uid=bad", email="b\ufffd@example.org"),
        DirectoryUser(external_id="dup", ref="uid=dup1", email="dup1@example.org"),
        DirectoryUser(external_id="dup", ref="uid=dup2", email="dup2@example.org"),
        DirectoryUser(external_id="same-a", ref="uid=sa", email="same@example.org"),
        DirectoryUser(external_id="same-b", ref="uid=sb", email="SAME@example.org"),
    ]
    escaped_ref = 'cn=a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i#j,ou=groups'
    groups = (
        DirectoryGroup(
            external_id="big",
            ref="cn=big,ou=groups",
            name="Everyone",
            member_refs=frozenset(u.ref for u in members) | {"cn=big,ou=groups", escaped_ref},
        ),
        DirectoryGroup(
            external_id="esc",
            ref=escaped_ref,
            name='a,b+c"d\\e<f>g;h=i#j',
            member_refs=frozenset({"cn=big,ou=groups", "uid=ghost"}),
        ),
    )
    read = Reading(snapshot=DirectorySnapshot(users=(*members, *odd), groups=groups))
    planned = plan_run(
        mirror=Mirror(),
        reading=read,
        current=OrganizationState(name="acme"),
        rules=SyncRules(),
    )
    invited = {i.email for i in planned.plan.invite}
    assert len(invited) >= 10_000 and "long@example.org" in invited
    assert not invited & {"has space@example.org", "no-at-sign", "same@example.org"}
    text = "\n".join(planned.warnings)
    for needle in ("has space", "no-at-sign", "same@example.org", "dup", "uid=ghost"):
        assert needle in text, needle
    created = {g.name: g.member_external_ids for g in planned.plan.create_groups}
    assert len(created["Everyone"]) >= 10_000
    # the two groups contain each other: a cycle, so both hold everyone
    assert created['a,b+c"d\\e<f>g;h=i#j'] == created["Everyone"]
