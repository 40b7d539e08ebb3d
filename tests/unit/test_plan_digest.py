"""The plan digest is hashed an entry at a time; it must stay the digest of the whole plan's
canonical JSON, or approvals given before the change would no longer match."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from dirsync.organization import MemberStatus, RevokeReason
from dirsync.plan import CONTRACT_KEYS, GroupCreate, GroupUpdate, Invite, Plan, Revoke


def whole_document_digest(plan: Plan) -> str:
    """The digest as it was first defined: one json.dumps of the whole plan."""
    content = {k: v for k, v in plan.to_json().items() if v or k in CONTRACT_KEYS}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


texts = st.text(max_size=12)  # any unicode: escapes must come out the same
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=8)

invites = st.builds(Invite, external_id=ids, email=texts, name=st.none() | texts)
revokes = st.builds(
    Revoke,
    member_id=st.integers(1, 10**6),
    external_id=st.none() | ids,
    email=texts,
    reason=st.sampled_from(list(RevokeReason)),
    previous_status=st.sampled_from(list(MemberStatus)),
)
creates = st.builds(
    GroupCreate,
    external_id=ids,
    name=texts,
    member_external_ids=st.frozensets(ids, max_size=4),
)
updates = st.builds(
    GroupUpdate,
    group_id=st.integers(1, 10**6),
    external_id=ids,
    name=texts,
    previous_name=texts,
    add_member_ids=st.frozensets(ids, max_size=4),
    remove_member_ids=st.frozensets(ids, max_size=4),
)


@given(
    invite=st.lists(invites, max_size=4).map(tuple),
    revoke=st.lists(revokes, max_size=3).map(tuple),
    create_groups=st.lists(creates, max_size=3).map(tuple),
    update_groups=st.lists(updates, max_size=3).map(tuple),
)
def test_the_streamed_digest_is_the_digest_of_the_whole_canonical_plan(
    invite: tuple[Invite, ...],
    revoke: tuple[Revoke, ...],
    create_groups: tuple[GroupCreate, ...],
    update_groups: tuple[GroupUpdate, ...],
) -> None:
    plan = Plan(
        invite=invite, revoke=revoke, create_groups=create_groups, update_groups=update_groups
    )
    assert plan.digest() == whole_document_digest(plan)


def test_the_empty_plan_keeps_its_digest() -> None:
    assert Plan().digest() == whole_document_digest(Plan())


def test_a_plan_longer_than_a_batch_keeps_the_whole_document_digest() -> None:
    invites = tuple(
        Invite(external_id=f"id-{i}", email=f"u{i}@example.org", name="Ünï") for i in range(2_500)
    )
    plan = Plan(invite=invites)
    assert plan.digest() == whole_document_digest(plan)
