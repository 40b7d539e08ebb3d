"""``sync --json`` streams plans entry by entry; the bytes must be json.dumps's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dirsync.cli.json_stream import pieces, write_json
from dirsync.plan import GroupCreate, GroupUpdate, Invite, Plan

texts = st.text(max_size=10)
ids = st.text(alphabet="abc012-", min_size=1, max_size=6)
plans = st.builds(
    Plan,
    invite=st.lists(
        st.builds(Invite, external_id=ids, email=texts, name=st.none() | texts), max_size=3
    ).map(tuple),
    create_groups=st.lists(
        st.builds(GroupCreate, external_id=ids, name=texts, member_external_ids=st.frozensets(ids)),
        max_size=2,
    ).map(tuple),
    update_groups=st.lists(
        st.builds(
            GroupUpdate,
            group_id=st.integers(1, 99),
            external_id=ids,
            name=texts,
            previous_name=texts,
            add_member_ids=st.frozensets(ids, max_size=3),
        ),
        max_size=2,
    ).map(tuple),
)


def streamed(value: Any) -> str:
    parts: list[str] = []
    write_json(value, parts.append)
    return "".join(parts)


def as_json(value: Any) -> Any:
    return value.to_json() if isinstance(value, Plan) else value


@given(plan=plans, warnings=st.lists(texts, max_size=3), count=st.integers() | st.none())
def test_a_streamed_result_is_byte_for_byte_json_dumps(
    plan: Plan, warnings: list[str], count: int | None
) -> None:
    at = datetime(2026, 11, 25, tzinfo=UTC)
    result = {"plan": plan, "warnings": warnings, "count": count, "at": at, "nested": {"a": []}}
    expected = {**result, "plan": plan.to_json()}
    assert streamed([result, {"other": True}]) == json.dumps(
        [expected, {"other": True}], default=str
    )
    assert streamed([]) == json.dumps([])


def test_plans_longer_than_a_batch_stream_the_same_bytes() -> None:
    invites = tuple(
        Invite(external_id=f"id-{i}", email=f"u{i}@example.org", name=None) for i in range(2_345)
    )
    plan = Plan(invite=invites)
    assert streamed({"plan": plan}) == json.dumps({"plan": plan.to_json()})


def test_pieces_hand_on_the_same_text_in_few_writes_and_the_rest_at_the_end() -> None:
    plan = Plan(
        invite=tuple(
            Invite(external_id=f"id-{i}", email=f"u{i}@example.org", name=None)
            for i in range(3_000)
        )
    )
    writes: list[str] = []
    with pieces(writes.append, size=10_000) as write:
        write_json([{"plan": plan}], write)
        write("\n")
    text = "".join(writes)
    assert text == json.dumps([{"plan": plan.to_json()}]) + "\n"
    assert len(writes) <= len(text) // 10_000 + 1  # full pieces, then the rest
    assert all(len(piece) >= 10_000 for piece in writes[:-1])


def test_pieces_hand_on_what_was_written_before_an_error() -> None:
    writes: list[str] = []
    with pytest.raises(RuntimeError), pieces(writes.append) as write:
        write("[")
        raise RuntimeError("encoding failed")
    assert writes == ["["]
