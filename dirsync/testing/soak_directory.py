"""Client organizations in a slapd, and random changes to them in bulk, for the nodes soak.

Each organization is an OU of the server's suffix (``ou=<name>``) with People and Groups, as
an MSP keeps its clients. Changes go through ``ldap_admin`` as the server's administrator: new
users, renames and new addresses, disabling and enabling (``employeeType=disabled``),
deletions, and group membership. User names and addresses are never reused, so every address
is invited at most once whatever happens to the store.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from dirsync.testing.ldap_admin import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE
from dirsync.testing.slapd import Slapd

DISABLED_FILTER = "(employeeType=disabled)"
GROUPS = ("Staff", "Admins", "Sales")
#: what ``change`` picks from; "join" adds a user to a group or takes it out
CHANGES = ("add", "add", "rename", "address", "disable", "enable", "delete", "join")


@dataclass
class _Client:
    base_dn: str
    users: dict[str, bool] = field(default_factory=dict)  # uid -> disabled
    groups: dict[str, set[str]] = field(default_factory=dict)  # cn -> uids

    @property
    def people(self) -> str:
        return f"ou=People,{self.base_dn}"

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},{self.people}"

    def group_dn(self, cn: str) -> str:
        return f"cn={cn},ou=Groups,{self.base_dn}"


class SoakDirectory:
    """The organizations ``names`` below ``server``'s suffix, changed at random by ``rng``."""

    def __init__(self, server: Slapd, prefix: str, names: list[str], rng: random.Random) -> None:
        self.server = server
        self.rng = rng
        self.clients = {n: _Client(f"ou={prefix}{n},{server.base_dn}") for n in names}
        self.changes: Counter[str] = Counter()
        self._serial = 0

    def create(self, users: int) -> None:
        """Every organization with ``users`` people and its groups, in one ``ldapadd``."""
        records = []
        for client in self.clients.values():
            ou = client.base_dn.split(",", 1)[0].removeprefix("ou=")
            records.append(f"dn: {client.base_dn}\nobjectClass: organizationalUnit\nou: {ou}\n")
            for sub in ("People", "Groups"):
                records.append(
                    f"dn: ou={sub},{client.base_dn}\nobjectClass: organizationalUnit\nou: {sub}\n"
                )
            for _ in range(users):
                records.append(self._person(client, disabled=False))
            for cn in GROUPS:
                chosen = {u for u in client.users if self.rng.random() < 0.5}
                client.groups[cn] = chosen
                lines = [f"dn: {client.group_dn(cn)}", "objectClass: groupOfNames", f"cn: {cn}"]
                # groupOfNames needs a member: the organization's OU stands in for "nobody"
                lines += [f"member: {client.base_dn}"]
                lines += [f"member: {client.user_dn(u)}" for u in sorted(chosen)]
                records.append("\n".join(lines) + "\n")
        self.server.add_ldif("\n".join(records))

    def change(self, count: int) -> None:
        """``count`` random changes spread over a few organizations, on one connection."""
        with self.server.connection() as conn:
            for _ in range(count):
                client = self.clients[self.rng.choice(sorted(self.clients))]
                kind = self.rng.choice(CHANGES)
                uid = self.rng.choice(sorted(client.users)) if client.users else None
                if kind == "add" or uid is None:
                    dn, attributes = self._new_user(client, disabled=self.rng.random() < 0.2)
                    conn.add(dn, "inetOrgPerson", attributes)
                    kind = "add"
                elif kind == "rename":
                    name = f"{uid} v{self._next()}"
                    conn.modify(
                        client.user_dn(uid),
                        {
                            "cn": [(MODIFY_REPLACE, [name])],
                            "displayName": [(MODIFY_REPLACE, [name])],
                        },
                    )
                elif kind == "address":
                    address = f"{uid}.v{self._next()}@example.org"
                    conn.modify(client.user_dn(uid), {"mail": [(MODIFY_REPLACE, [address])]})
                elif kind in ("disable", "enable"):
                    disabled = kind == "disable"
                    value = ["disabled"] if disabled else ["staff"]
                    conn.modify(client.user_dn(uid), {"employeeType": [(MODIFY_REPLACE, value)]})
                    client.users[uid] = disabled
                elif kind == "delete":
                    for cn, uids in client.groups.items():
                        if uid in uids:
                            dn = client.user_dn(uid)
                            conn.modify(client.group_dn(cn), {"member": [(MODIFY_DELETE, [dn])]})
                            uids.discard(uid)
                    conn.delete(client.user_dn(uid))
                    del client.users[uid]
                else:
                    cn = self.rng.choice(GROUPS)
                    inside = uid in client.groups[cn]
                    operation = MODIFY_DELETE if inside else MODIFY_ADD
                    conn.modify(
                        client.group_dn(cn), {"member": [(operation, [client.user_dn(uid)])]}
                    )
                    (client.groups[cn].discard if inside else client.groups[cn].add)(uid)
                    kind = "leave" if inside else "join"
                self.changes[kind] += 1

    def disabled_ids(self, name: str) -> set[str]:
        """The entryUUIDs of the organization's disabled users, as the directory has them."""
        client = self.clients[name]
        with self.server.connection() as conn:
            found = conn.search(client.people, DISABLED_FILTER, "ONE_LEVEL", ["entryUUID"])
        return {entry["raw_attributes"]["entryUUID"][0].decode() for entry in found}

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def _new_user(self, client: _Client, *, disabled: bool) -> tuple[str, dict[str, str]]:
        uid = f"u{self._next()}"
        client.users[uid] = disabled
        attributes = {"uid": uid, "cn": uid, "sn": uid, "mail": f"{uid}@example.org"}
        attributes["employeeType"] = "disabled" if disabled else "staff"
        return client.user_dn(uid), attributes

    def _person(self, client: _Client, *, disabled: bool) -> str:
        dn, attributes = self._new_user(client, disabled=disabled)
        lines = [f"dn: {dn}", "objectClass: inetOrgPerson"]
        return "\n".join(lines + [f"{k}: {v}" for k, v in attributes.items()]) + "\n"
