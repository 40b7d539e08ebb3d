"""Organizations of one process that share a server and account read through one kept
connection; never across accounts or passwords, and a connection the server dropped is
replaced for the read that finds it gone."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dirsync.connectors.ldap import pool
from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.pool import IDLE_SECONDS, SessionPool
from dirsync.errors import SourceAuthFailed
from tests.integration.conftest import LdapTree

pytestmark = pytest.mark.slapd


@pytest.fixture
def kept() -> Iterator[SessionPool]:
    """The process's pool, empty before and after the test."""
    pool.release()
    yield pool.POOL
    pool.release()


def _read(tree: LdapTree, organization: str, **overrides: object) -> int:
    connector = LdapConnector(tree.settings(**overrides), organization=organization)
    try:
        return len(connector.read(None).snapshot.users)
    finally:
        connector.close()


def test_organizations_with_one_account_read_through_one_connection(
    ldap_tree: LdapTree, kept: SessionPool
) -> None:
    ldap_tree.add(ldap_tree.person("ann"), ldap_tree.person("bob"))

    assert _read(ldap_tree, "acme") == 2
    (first,) = kept.kept()
    assert _read(ldap_tree, "globex", page_size=1) == 2  # its own settings on the same one
    (second,) = kept.kept()

    assert second is first
    assert (second.organization, second.settings.page_size) == ("globex", 1)


def test_another_account_or_password_never_gets_a_kept_connection(
    ldap_tree: LdapTree, kept: SessionPool
) -> None:
    ldap_tree.add(ldap_tree.person("ann"))
    server = ldap_tree.server
    reader = ldap_tree.settings()
    admin = ldap_tree.settings(bind_dn=server.admin_dn, bind_password=server.admin_password)
    wrong = ldap_tree.settings(bind_password="not-the-password")

    session, was_kept = kept.checkout(reader, "acme")
    kept.checkin(session)
    other, other_kept = kept.checkout(admin, "acme")
    try:
        assert (was_kept, other_kept, other is session) == (False, False, False)
    finally:
        other.close()
    with pytest.raises(SourceAuthFailed, match="invalid credentials"):
        kept.checkout(wrong, "acme")
    assert len(kept) == 1  # the reader's, still kept for the reader alone


def test_a_connection_the_server_dropped_is_replaced_for_the_read(
    ldap_tree: LdapTree, kept: SessionPool
) -> None:
    ldap_tree.add(ldap_tree.person("ann"))
    assert _read(ldap_tree, "acme") == 1
    (dropped,) = kept.kept()
    assert dropped.conn is not None
    dropped.conn.sock.shutdown(socket.SHUT_RDWR)  # as a server's idletimeout leaves it

    assert _read(ldap_tree, "globex") == 1

    (replaced,) = kept.kept()
    assert replaced is not dropped
    assert dropped.conn is None  # closed, not kept


def test_a_connection_idle_too_long_is_closed_not_handed_out(ldap_tree: LdapTree) -> None:
    now = [100.0]
    sessions = SessionPool(clock=lambda: now[0])
    settings = ldap_tree.settings()
    session, _ = sessions.checkout(settings, "acme")
    sessions.checkin(session)

    now[0] += IDLE_SECONDS + 1
    fresh, was_kept = sessions.checkout(settings, "acme")
    try:
        assert (was_kept, fresh is session, session.conn) == (False, False, None)
    finally:
        fresh.close()
        sessions.release()
