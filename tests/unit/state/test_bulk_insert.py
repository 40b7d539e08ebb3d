"""``BulkInsert`` stores exactly what SQLAlchemy's own ``insert`` would store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, create_engine, insert
from sqlalchemy.orm import Session

from dirsync.model import DirectoryGroup, DirectoryUser, Mirror
from dirsync.plan import Invite, Outcome, Plan
from dirsync.state.bulk import BulkInsert, encode_json, json_string
from dirsync.state.plan_writes import invite_after
from dirsync.state.records import RunRecord
from dirsync.state.schema import EventRow, MemberRow, MirrorUserRow, OrganizationRow
from dirsync.state.sql_store import SqlStore
from dirsync.testing.store_files import sqlite_connection

NOW = datetime(2026, 11, 25, 9, 30, 1, 250, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(value=json_values)
def test_encoded_json_is_byte_for_byte_json_dumps(value: Any) -> None:
    assert encode_json(value) == (None if value is None else json.dumps(value))


@given(value=st.none() | st.text())
def test_a_json_string_is_json_dumps(value: str | None) -> None:
    assert json_string(value) == json.dumps(value)


@given(invite=st.builds(Invite, external_id=st.text(), email=st.text(), name=st.none() | st.text()))
def test_an_invite_event_is_encoded_as_its_dict_would_be(invite: Invite) -> None:
    after = {
        "email": invite.email,
        "external_id": invite.external_id,
        "name": invite.name,
        "status": "invited",
    }
    assert invite_after(invite) == json.dumps(after)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two fresh stores, each with one organization (id 1)."""
    paths = (tmp_path / "bulk.db", tmp_path / "core.db")
    for path in paths:
        SqlStore.open(f"sqlite:///{path}").close()
        with sqlite_connection(path) as conn:
            conn.execute(
                "INSERT INTO organizations (id, name, version, created_at, last_user_count) "
                "VALUES (1, 'acme', 0, '2026-01-01', NULL)"
            )
    yield paths


def _write(path: Path, work: Callable[[Session], None], **engine_options: Any) -> None:
    engine: Engine = create_engine(f"sqlite:///{path}", **engine_options)
    try:
        with Session(engine) as session, session.begin():
            work(session)
    finally:
        engine.dispose()


def _rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite_connection(path) as conn:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()


EVENTS: list[tuple[str, str, Any, Any]] = [
    ("member.invite", "ann@acme.example", None, {"email": "ann@acme.example", "name": "Ann"}),
    ("member.update", "bo@acme.example", {"name": 'Bø \u2603 "quoted"'}, {"name": None}),
    ("group.create", "Ops", None, {"members": ["u1", "u2"], "nested": {"n": [1, 2.5, True]}}),
    ("member.remove", "cy@acme.example", {"status": "revoked"}, None),
    ("group.update", "Ops", {}, {"add_members": []}),
]


@pytest.mark.parametrize("serializer", [None, lambda v: json.dumps(v, separators=(",", ":"))])
def test_events_with_encoded_json_are_stored_as_the_json_type_stores_them(
    stores: tuple[Path, Path], serializer: Callable[[Any], str] | None
) -> None:
    # a dialect whose JSON processing differs from json.dumps (a custom serializer here,
    # psycopg 3's JSON adapter in real life) gets the decoded value, processed its own way
    options = {} if serializer is None else {"json_serializer": serializer}
    bulk, core = stores
    constants = {"organization_id": 1, "run_id": "r1", "at": NOW, "actor": "sync:r1"}

    def with_bulk(session: Session) -> None:
        writer = BulkInsert(
            session,
            _table(EventRow),
            ("action", "target", "before", "after"),
            constants=constants,
            json_text=("before", "after"),
        )
        writer.write([(a, t, encode_json(b), encode_json(f)) for a, t, b, f in EVENTS])

    def with_core(session: Session) -> None:
        rows = [
            {**constants, "action": a, "target": t, "before": b, "after": f}
            for a, t, b, f in EVENTS
        ]
        session.execute(insert(_table(EventRow)), rows)

    _write(bulk, with_bulk, **options)
    _write(core, with_core, **options)
    assert _rows(bulk, "events") == _rows(core, "events")
    stored = _rows(bulk, "events")
    assert stored[3][-1] is None  # no "after": SQL NULL, not the text 'null'
    if serializer is not None:
        assert stored[0][-1] == '{"email":"ann@acme.example","name":"Ann"}'


def test_members_and_mirror_rows_match_sqlalchemys_insert(stores: tuple[Path, Path]) -> None:
    # timestamps bound once as constants, in any time zone; flags processed per value
    bulk, core = stores
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    member = {"organization_id": 1, "status": "invited", "role": "user", "invited_at": tokyo}
    members = [("a@x", "u1", "A"), ("b@x", None, None), ("c@x", "u3", "Çé")]
    users = [("u1", "uid=u1", "u1", "a@x", "A", False), ("u2", "uid=u2", None, None, None, True)]
    user_columns = ("external_id", "ref", "username", "email", "name", "disabled")

    def with_bulk(session: Session) -> None:
        BulkInsert(
            session,
            _table(MemberRow),
            ("email", "external_id", "name", "updated_at"),
            constants=member,
        ).write([(*m, NOW) for m in members])
        BulkInsert(
            session, _table(MirrorUserRow), user_columns, constants={"organization_id": 1}
        ).write(users)

    def with_core(session: Session) -> None:
        rows = [
            {**member, "email": e, "external_id": x, "name": n, "updated_at": NOW}
            for e, x, n in members
        ]
        session.execute(insert(_table(MemberRow)), rows)
        mirror = [{"organization_id": 1, **dict(zip(user_columns, u, strict=True))} for u in users]
        session.execute(insert(_table(MirrorUserRow)), mirror)

    _write(bulk, with_bulk)
    _write(core, with_core)
    for table in ("members", "mirror_users"):
        assert _rows(bulk, table) == _rows(core, table)
    assert _rows(bulk, "members")[0][9] == "2026-11-25 09:30:01.000250"


def test_a_json_text_column_must_be_a_json_column(stores: tuple[Path, Path]) -> None:
    def misuse(session: Session) -> None:
        BulkInsert(session, _table(OrganizationRow), ("name",), json_text=("name",))

    with pytest.raises(TypeError, match="not a JSON column"):
        _write(stores[0], misuse)


mirrors = st.builds(
    lambda users, groups: Mirror(
        users={f"u{n}": _user(n, flag) for n, flag in users.items()},
        groups={
            f"g{n}": DirectoryGroup(
                external_id=f"g{n}",
                ref=f"cn=g{n}",
                name=f"G{n}",
                member_refs=frozenset(f"uid=u{m}" for m in refs),
            )
            for n, refs in groups.items()
        },
    ),
    st.dictionaries(st.integers(0, 6), st.booleans(), max_size=6),
    st.dictionaries(st.integers(0, 4), st.sets(st.integers(0, 8), max_size=5), max_size=4),
)


def _user(n: int, disabled: bool) -> DirectoryUser:
    return DirectoryUser(
        external_id=f"u{n}",
        ref=f"uid=u{n}",
        username=None,
        email=None,
        name=None,
        disabled=disabled,
    )


@settings(max_examples=40, deadline=None)
@given(first=mirrors, second=mirrors)
def test_the_mirror_written_by_difference_loads_back_as_the_new_mirror(
    tmp_path_factory: pytest.TempPathFactory, first: Mirror, second: Mirror
) -> None:
    db = tmp_path_factory.mktemp("mirror") / "store.db"
    now = datetime(2026, 11, 25, tzinfo=UTC)
    with SqlStore.open(f"sqlite:///{db}") as store:
        before = Mirror()
        for run_id, after in (("r1", first), ("r2", second)):
            run = RunRecord(
                run_id=run_id, started_at=now, finished_at=now, outcome=Outcome.APPLIED, full=True
            )
            version = store.load("acme").version
            store.apply(
                "acme",
                plan=Plan(),
                mirror_before=before,
                mirror_after=after,
                cursor=None,
                run=run,
                expected_version=version,
                now=now,
            )
            assert store.load("acme").mirror == after
            before = after
