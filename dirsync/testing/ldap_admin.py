"""A directory administrator for the tests: add, modify, rename, delete and search entries on
the test slapd and Samba DC, over dirsync's own LDAP connection (``client.Connection``).

dirsync itself only reads directories, so the write requests (RFC 4511 § 4.6 to 4.9) are
encoded here. Every request must succeed: anything else raises ``LdapAdminError`` with the
server's result, so a fixture that fails to set up a directory fails loudly.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from dirsync.connectors.ldap import ber
from dirsync.connectors.ldap.client import Connection
from dirsync.connectors.ldap.messages import Control, Scope
from dirsync.connectors.ldap.result_codes import SUCCESS

MODIFY_ADD: Final = 0
MODIFY_DELETE: Final = 1
MODIFY_REPLACE: Final = 2
_OPERATIONS: Final = {"MODIFY_ADD": 0, "MODIFY_DELETE": 1, "MODIFY_REPLACE": 2}
_MODIFY, _ADD, _DELETE, _MODIFY_DN = 0x66, 0x68, 0x4A, 0x6C
_NEW_SUPERIOR: Final = 0x80
_SET: Final = 0x31
_SCOPES: Final = {
    "BASE": Scope.BASE,
    "LEVEL": Scope.ONE_LEVEL,
    "ONE_LEVEL": Scope.ONE_LEVEL,
    "SUBTREE": Scope.SUBTREE,
}


class LdapAdminError(RuntimeError):
    """A write or search the test directory refused; ``code`` is the LDAP result code."""

    def __init__(self, what: str, result: Mapping[str, Any]) -> None:
        self.code = result.get("result")
        message = (result.get("message") or "").strip()
        super().__init__(
            f"{what}: {result.get('description')} ({self.code})"
            + (f": {message}" if message else "")
        )


def _value(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _values(values: Any) -> list[bytes]:
    if isinstance(values, str | bytes | int):
        return [_value(values)]
    return [_value(v) for v in values]


def _attribute(name: str, values: Any) -> bytes:
    """PartialAttribute: SEQUENCE { type, vals SET OF value }."""
    encoded = b"".join(ber.octet_string(v) for v in _values(values))
    return ber.sequence(ber.octet_string(name.encode("utf-8")), ber.tlv(_SET, encoded))


class AdminConnection:
    """One bound connection; use as a context manager."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        #: the entries of the last ``search``: ``{"dn", "raw_attributes"}`` dicts
        self.response: list[dict[str, Any]] = []

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        bind_dn: str = "",
        password: str = "",
        tls: ssl.SSLContext | None = None,
        timeout: float = 10,
    ) -> AdminConnection:
        conn = Connection.open(host, port, timeout=timeout, tls=tls)
        admin = cls(conn)
        try:
            admin._check(f"bind as {bind_dn or 'anonymous'}", conn.bind(bind_dn, password.encode()))
        except BaseException:
            conn.close()
            raise
        return admin

    def __enter__(self) -> AdminConnection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def add(
        self,
        dn: str,
        object_class: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
        controls: Sequence[Control] | None = None,
    ) -> None:
        values = dict(attributes or {})
        if object_class is not None:
            values["objectClass"] = object_class
        body = ber.octet_string(dn.encode("utf-8")) + ber.sequence(
            *(_attribute(name, v) for name, v in values.items())
        )
        self._call(f"add {dn}", ber.tlv(_ADD, body), controls or ())

    def modify(self, dn: str, changes: Mapping[str, Iterable[tuple[int | str, Any]]]) -> None:
        """``{"mail": [(MODIFY_REPLACE, ["a@b.c"])]}`` (``"MODIFY_REPLACE"`` works too)."""
        encoded = []
        for name, operations in changes.items():
            for operation, values in operations:
                kind = _OPERATIONS[operation] if isinstance(operation, str) else operation
                encoded.append(
                    ber.sequence(
                        ber.tlv(ber.ENUMERATED, bytes([kind])), _attribute(name, values or [])
                    )
                )
        body = ber.octet_string(dn.encode("utf-8")) + ber.sequence(*encoded)
        self._call(f"modify {dn}", ber.tlv(_MODIFY, body))

    def delete(self, dn: str, controls: Sequence[Control] | None = None) -> None:
        self._call(f"delete {dn}", ber.tlv(_DELETE, dn.encode("utf-8")), controls or ())

    def modify_dn(self, dn: str, relative_dn: str, new_superior: str | None = None) -> None:
        """Rename (and with ``new_superior`` move) an entry; the old RDN value is deleted."""
        body = (
            ber.octet_string(dn.encode("utf-8"))
            + ber.octet_string(relative_dn.encode("utf-8"))
            + ber.tlv(ber.BOOLEAN, b"\xff")
        )
        if new_superior is not None:
            body += ber.tlv(_NEW_SUPERIOR, new_superior.encode("utf-8"))
        self._call(f"rename {dn}", ber.tlv(_MODIFY_DN, body))

    def search(
        self,
        base: str,
        search_filter: str = "(objectClass=*)",
        scope: Scope | str = Scope.SUBTREE,
        attributes: Sequence[str] | None = None,
        controls: Sequence[Control] | None = None,
    ) -> list[dict[str, Any]]:
        """Entries (also kept in ``response``); raises unless the search succeeds."""
        chosen = _SCOPES[scope.upper()] if isinstance(scope, str) else scope
        answer = self.conn.search(
            base, search_filter, attributes or (), controls=controls or (), scope=chosen
        )
        self._check(f"search {base}", answer.result)
        self.response = [r for r in answer.responses if r.get("type") == "searchResEntry"]
        return self.response

    def _call(self, what: str, operation: bytes, controls: Sequence[Control] = ()) -> None:
        self._check(what, self.conn.call(operation, controls))

    @staticmethod
    def _check(what: str, result: Mapping[str, Any]) -> None:
        if result.get("result") != SUCCESS:
            raise LdapAdminError(what, result)
