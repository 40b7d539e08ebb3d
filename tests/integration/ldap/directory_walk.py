"""A seeded random walk of directory changes on a real slapd, for the delta-equals-full property.

``Walk`` keeps a small model of one test's subtree (people, their DNs, groups and what each
group names) and changes the real directory only through LDIF (ldapadd/ldapmodify), so that
slapd's overlays (memberof, refint, syncprov) do what they do in production: rewrite member
values on a rename, drop them on a delete, keep ``memberOf`` on the users.

Each ``step()`` picks one change at random and returns a line that says what it did, so a
failing seed's history can be read back. The layout of the subtree:

    ou=People            users (user_path); ou=Sub below it, where moves go and come back
    ou=Elsewhere         outside user_path: a user moved here leaves the read
    ou=Groups            groups (group_path); groups nest, and every group keeps the
                         subtree's base as a placeholder member (groupOfNames needs one)
    ou=Roles             cn=Access: the group a ``memberOf`` user_filter depends on, outside
                         group_path, as access groups often are
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.integration.conftest import LdapTree, ldif_record

#: employeeType values: a contractor leaves an attribute ``user_filter``, disabled is disabled
CONTRACTOR = "contractor"
DISABLED = "disabled"


@dataclass
class Person:
    uid: str
    ou: str  # "People", "Sub" (below People) or "Elsewhere"
    mail: str
    kind: str = ""  # "", CONTRACTOR or DISABLED


@dataclass
class Group:
    cn: str
    ou: str = "Groups"  # "Groups" or "Roles"
    members: set[str] = field(default_factory=set)  # DNs, as the model spells them


class Walk:
    """The model of one subtree and the random changes made to it."""

    def __init__(self, tree: LdapTree, rng: random.Random) -> None:
        self.tree = tree
        self.rng = rng
        self.people: dict[str, Person] = {}
        self.groups: dict[str, Group] = {}
        self.serial = 0
        self.history: list[str] = []

    # -- names ------------------------------------------------------------------------------

    def ou_dn(self, ou: str) -> str:
        base = self.tree.base_dn
        return {"People": f"ou=People,{base}", "Sub": f"ou=Sub,ou=People,{base}"}.get(
            ou, f"ou={ou},{base}"
        )

    def person_dn(self, person: Person) -> str:
        return f"uid={person.uid},{self.ou_dn(person.ou)}"

    def group_dn(self, group: Group) -> str:
        return f"cn={group.cn},{self.ou_dn(group.ou)}"

    @property
    def access(self) -> Group:
        return self.groups["Access"]

    def _fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:03d}"

    # -- the starting directory ---------------------------------------------------------------

    def seed(self, people: int = 8, groups: int = 3) -> None:
        base = self.tree.base_dn
        records = [
            ldif_record(self.ou_dn(ou), {"objectClass": "organizationalUnit", "ou": ou})
            for ou in ("Sub", "Elsewhere", "Roles")
        ]
        for _ in range(people):
            uid = self._fresh("u")
            person = Person(uid=uid, ou=self.rng.choice(["People", "People", "Sub"]), mail="")
            person.mail = f"{uid}@example.org"
            self.people[uid] = person
            records.append(self._person_record(person))
        access = Group(cn="Access", ou="Roles")
        self.groups["Access"] = access
        for _ in range(groups):
            cn = self._fresh("g")
            self.groups[cn] = Group(cn=cn)
        uids = list(self.people)
        for group in self.groups.values():
            share = 0.8 if group is access else 0.4
            group.members = {
                self.person_dn(self.people[u]) for u in uids if self.rng.random() < share
            }
        plain = [g for g in self.groups.values() if g is not access]
        plain[0].members.add(self.group_dn(plain[1]))  # one nesting to start with
        records += [self._group_record(g) for g in self.groups.values()]
        self.tree.add(*records)
        del base
        self.history.append(f"seed: {len(self.people)} people, groups {sorted(self.groups)}")

    def _person_record(self, person: Person) -> str:
        attributes: dict[str, str | list[str]] = {
            "objectClass": "inetOrgPerson",
            "uid": person.uid,
            "cn": person.uid,
            "sn": person.uid,
            "mail": person.mail,
        }
        if person.kind:
            attributes["employeeType"] = person.kind
        return ldif_record(self.person_dn(person), attributes)

    def _group_record(self, group: Group) -> str:
        members = sorted(group.members | {self.tree.base_dn})  # the placeholder
        return ldif_record(
            self.group_dn(group), {"objectClass": "groupOfNames", "cn": group.cn, "member": members}
        )

    # -- one step -----------------------------------------------------------------------------

    def step(self) -> str:
        moves: list[tuple[int, Callable[[], str | None]]] = [
            (3, self.add_person),
            (2, self.delete_person),
            (3, self.rename_person),
            (3, self.move_person),
            (2, self.change_mail),
            (2, self.flip_kind),
            (4, self.join_group),
            (4, self.leave_group),
            (3, self.join_access),
            (3, self.leave_access),
            (1, self.nest_group),
            (1, self.rename_group),
            (1, self.add_group),
            (1, self.delete_group),
            (2, self.recreate_person),
        ]
        weights = [w for w, _ in moves]
        while True:
            (_, move) = self.rng.choices(moves, weights=weights)[0]
            said = move()
            if said is not None:
                self.history.append(said)
                return said

    def _modify(self, dn: str, *changes: str) -> None:
        self.tree.server.modify_ldif(
            f"dn: {dn}\nchangetype: modify\n" + "\n-\n".join(changes) + "\n"
        )

    def _rename_refs(self, old: str, new: str | None) -> None:
        """What refint does to the groups that named ``old``."""
        for group in self.groups.values():
            if old in group.members:
                group.members.discard(old)
                if new is not None:
                    group.members.add(new)

    def _pick_person(self) -> Person | None:
        return self.rng.choice(list(self.people.values())) if self.people else None

    def add_person(self) -> str:
        uid = self._fresh("u")
        person = Person(uid=uid, ou=self.rng.choice(["People", "Sub"]), mail=f"{uid}@example.org")
        self.people[uid] = person
        self.tree.add(self._person_record(person))
        return f"add {self.person_dn(person)}"

    def delete_person(self) -> str | None:
        person = self._pick_person()
        if person is None or len(self.people) < 5:
            return None
        dn = self.person_dn(person)
        self.tree.server.modify_ldif(f"dn: {dn}\nchangetype: delete\n")
        del self.people[person.uid]
        self._rename_refs(dn, None)
        return f"delete {dn}"

    def recreate_person(self) -> str | None:
        """Delete and add again with the same DN and address: a new entryUUID."""
        person = self._pick_person()
        if person is None:
            return None
        dn = self.person_dn(person)
        self.tree.server.modify_ldif(f"dn: {dn}\nchangetype: delete\n")
        self._rename_refs(dn, None)
        self.tree.add(self._person_record(person))
        return f"re-create {dn}"

    def rename_person(self) -> str | None:
        person = self._pick_person()
        if person is None:
            return None
        old = self.person_dn(person)
        new_uid = self._fresh("u")
        self.tree.server.modify_ldif(
            f"dn: {old}\nchangetype: modrdn\nnewrdn: uid={new_uid}\ndeleteoldrdn: 1\n"
        )
        del self.people[person.uid]
        person.uid = new_uid
        self.people[new_uid] = person
        self._rename_refs(old, self.person_dn(person))
        return f"rename {old} -> uid={new_uid}"

    def move_person(self) -> str | None:
        person = self._pick_person()
        if person is None:
            return None
        old = self.person_dn(person)
        others = [ou for ou in ("People", "Sub", "Elsewhere") if ou != person.ou]
        person.ou = self.rng.choices(
            others, weights=[3 if o != "Elsewhere" else 1 for o in others]
        )[0]
        self.tree.server.modify_ldif(
            f"dn: {old}\nchangetype: moddn\nnewrdn: uid={person.uid}\ndeleteoldrdn: 1\n"
            f"newsuperior: {self.ou_dn(person.ou)}\n"
        )
        self._rename_refs(old, self.person_dn(person))
        return f"move {old} -> ou={person.ou}"

    def change_mail(self) -> str | None:
        person = self._pick_person()
        if person is None:
            return None
        if self.rng.random() < 0.3 and len(self.people) > 1:
            # take another's address: a shared address, or one a member had
            person.mail = self.rng.choice([p.mail for p in self.people.values() if p is not person])
        else:
            person.mail = f"{self._fresh('m')}@example.org"
        self._modify(self.person_dn(person), f"replace: mail\nmail: {person.mail}")
        return f"mail {self.person_dn(person)} = {person.mail}"

    def flip_kind(self) -> str | None:
        person = self._pick_person()
        if person is None:
            return None
        person.kind = self.rng.choice([k for k in ("", CONTRACTOR, DISABLED) if k != person.kind])
        change = f"replace: employeeType\nemployeeType: {person.kind}"
        if not person.kind:
            change = "replace: employeeType"  # no values: removes the attribute
        self._modify(self.person_dn(person), change)
        return f"employeeType {self.person_dn(person)} = {person.kind or '(none)'}"

    def _join(self, group: Group, dn: str) -> str | None:
        if dn in group.members:
            return None
        group.members.add(dn)
        self._modify(self.group_dn(group), f"add: member\nmember: {dn}")
        return f"{group.cn} += {dn}"

    def _leave(self, group: Group) -> str | None:
        if not group.members:
            return None
        dn = self.rng.choice(sorted(group.members))
        group.members.discard(dn)
        self._modify(self.group_dn(group), f"delete: member\nmember: {dn}")
        return f"{group.cn} -= {dn}"

    def _plain_groups(self) -> list[Group]:
        return [g for g in self.groups.values() if g.ou == "Groups"]

    def join_group(self) -> str | None:
        person, groups = self._pick_person(), self._plain_groups()
        if person is None or not groups:
            return None
        return self._join(self.rng.choice(groups), self.person_dn(person))

    def leave_group(self) -> str | None:
        groups = [g for g in self._plain_groups() if g.members]
        return self._leave(self.rng.choice(groups)) if groups else None

    def join_access(self) -> str | None:
        person = self._pick_person()
        return None if person is None else self._join(self.access, self.person_dn(person))

    def leave_access(self) -> str | None:
        # a read that yields nobody is refused by a guard (rightly): keep a few in the group
        return self._leave(self.access) if len(self.access.members) > 3 else None

    def nest_group(self) -> str | None:
        groups = self._plain_groups()
        if len(groups) < 2:
            return None
        parent, child = self.rng.sample(groups, 2)
        return self._join(parent, self.group_dn(child))

    def rename_group(self) -> str | None:
        groups = self._plain_groups()
        if not groups:
            return None
        group = self.rng.choice(groups)
        old = self.group_dn(group)
        del self.groups[group.cn]
        group.cn = self._fresh("g")
        self.groups[group.cn] = group
        self.tree.server.modify_ldif(
            f"dn: {old}\nchangetype: modrdn\nnewrdn: cn={group.cn}\ndeleteoldrdn: 1\n"
        )
        self._rename_refs(old, self.group_dn(group))
        return f"rename group {old} -> cn={group.cn}"

    def add_group(self) -> str:
        group = Group(cn=self._fresh("g"))
        group.members = {self.person_dn(p) for p in self.people.values() if self.rng.random() < 0.3}
        self.groups[group.cn] = group
        self.tree.add(self._group_record(group))
        return f"add group {self.group_dn(group)} with {len(group.members)}"

    def delete_group(self) -> str | None:
        groups = self._plain_groups()
        if len(groups) < 2:
            return None
        group = self.rng.choice(groups)
        dn = self.group_dn(group)
        self.tree.server.modify_ldif(f"dn: {dn}\nchangetype: delete\n")
        del self.groups[group.cn]
        self._rename_refs(dn, None)
        return f"delete group {dn}"
