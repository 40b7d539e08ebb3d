"""Revision 0009 adds the identity provider's id to mirror users and groups and the SCIM
look-ups' indexes, on SQLite and PostgreSQL: rows kept (without an id, their names' keys
filled), the indexes there, and running it again (over what is already there) changes
nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from dirsync.model import DirectoryGroup, DirectoryUser
from dirsync.state.sql_store import SqlStore
from dirsync.testing.postgres import Postgres
from dirsync.testing.store_files import database_at_revision, stamp_revision

BEFORE = "0008_invitation_index"
ORG = "acme"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database(f"idp_ids_{tmp_path.name[-20:].lower()}")


def _fill(engine: Engine) -> None:
    """One organization with a mirror user and a group, as revision 0008 stored them."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, version, created_at) "
                "VALUES (1, 'acme', 1, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO mirror_users (organization_id, external_id, ref, username, email, "
                "disabled, email_key) VALUES (1, 'u-1', 'u-1', 'Ada', 'ada@acme.example', "
                "false, 'ada@acme.example')"
            )
        )
        conn.execute(text("INSERT INTO mirror_groups VALUES (1, 'g-1', 'g-1', 'staff')"))
        conn.execute(text("INSERT INTO mirror_group_members VALUES (1, 'g-1', 'u-1')"))


def _columns_and_indexes(engine: Engine) -> dict[str, tuple[set[str], set[str]]]:
    with engine.connect() as conn:
        inspector = inspect(conn)
        return {
            table: (
                {c["name"] for c in inspector.get_columns(table)},
                {str(i["name"]) for i in inspector.get_indexes(table)},
            )
            for table in ("mirror_users", "mirror_groups", "mirror_group_members", "runs")
        }


def test_the_upgrade_keeps_every_row_and_adds_the_ids_and_their_indexes(url: str) -> None:
    engine = database_at_revision(url, BEFORE)
    try:
        _fill(engine)
        assert "idp_id" not in _columns_and_indexes(engine)["mirror_users"][0]
        with SqlStore.open(url) as store:  # the engine's own upgrade
            mirror = store.load(ORG).mirror
            assert mirror.users == {
                "u-1": DirectoryUser(
                    external_id="u-1", ref="u-1", username="Ada", email="ada@acme.example"
                )
            }
            assert mirror.groups == {
                "g-1": DirectoryGroup(
                    external_id="g-1", ref="g-1", name="staff", member_refs=frozenset({"u-1"})
                )
            }
            assert store.mirror_users(ORG, idp_id="anything") == (0, [])
            # the keys of rows from before the revision are filled: found in any case
            assert [u.external_id for u in store.mirror_users(ORG, username="ADA")[1]] == ["u-1"]
            assert [g.external_id for g in store.mirror_groups(ORG, name="Staff")[1]] == ["g-1"]
        found = _columns_and_indexes(engine)
        assert "idp_id" in found["mirror_users"][0] and "idp_id" in found["mirror_groups"][0]
        assert "ix_mirror_users_org_idp_id" in found["mirror_users"][1]
        assert "ix_mirror_groups_org_idp_id" in found["mirror_groups"][1]
        assert "ix_mirror_users_org_username_key" in found["mirror_users"][1]
        assert "ix_mirror_groups_org_name_key" in found["mirror_groups"][1]
        assert "ix_mirror_group_members_org_member_ref" in found["mirror_group_members"][1]
        assert "ix_runs_org_outcome" in found["runs"][1]

        # again over what is already there: a store upgraded by hand, or half-way
        stamp_revision(engine, BEFORE)
        with SqlStore.open(url) as store:
            assert store.mirror_users(ORG)[0] == 1
        assert _columns_and_indexes(engine) == found
    finally:
        engine.dispose()
