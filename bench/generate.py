"""A deterministic synthetic directory for the benchmark: users, groups, nesting, changes.

``Directory(users=100_000, groups=10_000)`` always yields the same LDIF (a seeded RNG, entryUUIDs
from uuid5), so runs on different machines read the same bytes. Each user carries the
attributes a real directory has (telephone, title, description...), most of which dirsync does
not ask for. Each user is in 1-5 groups (mostly 1-2); group sizes are skewed (a few groups hold
thousands, most a handful); one group in fifty also contains another group.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

NAMESPACE = uuid.UUID("5d1e3b7c-8f3a-4c2e-9a51-0b6f1c2d3e4f")
FIRST = ("Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ines", "Jon", "Kai", "Lea")
LAST = ("Abe", "Berg", "Chen", "Diaz", "Ek", "Faure", "Gill", "Holm", "Ito", "Jansen", "Kowal")
TITLES = ("Engineer", "Analyst", "Manager", "Designer", "Accountant", "Consultant", "Clerk")


def entry_uuid(kind: str, number: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}-{number}"))


@dataclass
class Directory:
    """The directory's shape; ``ldif()`` for slapadd, ``changes()`` for the 100-change run."""

    users: int
    groups: int
    base_dn: str = "dc=example,dc=org"
    seed: int = 8
    disabled_share: float = 0.02
    #: told apart from other directories' entryUUIDs in one slapd (``bench.msp_cycle``)
    uuid_prefix: str = ""
    #: group index → member user numbers (filled by ``ldif()``)
    membership: dict[int, list[int]] = field(default_factory=dict)
    nested: dict[int, int] = field(default_factory=dict)

    @property
    def people(self) -> str:
        return f"ou=People,{self.base_dn}"

    @property
    def group_ou(self) -> str:
        return f"ou=Groups,{self.base_dn}"

    def user_dn(self, number: int) -> str:
        return f"uid=u{number:06d},{self.people}"

    def group_dn(self, number: int) -> str:
        return f"cn=g{number:05d},{self.group_ou}"

    def _assign(self) -> None:
        rng = random.Random(self.seed)
        membership: dict[int, list[int]] = {g: [] for g in range(self.groups)}
        for number in range(self.users):
            count = min(5, 1 + int(rng.expovariate(1.2)))  # 1-5, mostly 1-2
            chosen: set[int] = set()
            while len(chosen) < min(count, self.groups):
                # skewed: low group numbers are big (department-wide), high ones small
                chosen.add(int(self.groups * rng.random() ** 3))
            for group in chosen:
                membership[group].append(number)
        self.membership = membership
        self.nested = {g: rng.randrange(self.groups) for g in range(0, self.groups, 50) if g}

    def user_ldif(self, number: int, *, rng: random.Random, add: bool = False) -> str:
        first, last = FIRST[number % len(FIRST)], LAST[(number // 7) % len(LAST)]
        uid = f"u{number:06d}"
        lines = [
            f"dn: {self.user_dn(number)}",
            *(["changetype: add"] if add else []),
            "objectClass: inetOrgPerson",
            f"uid: {uid}",
            f"cn: {first} {last} {number}",
            f"sn: {last}",
            f"givenName: {first}",
            f"displayName: {first} {last} ({number})",
            f"mail: {uid}@example.org",
            f"employeeNumber: {number}",
            f"title: {TITLES[number % len(TITLES)]}",
            f"telephoneNumber: +1 555 {number:07d}",
            f"description: synthetic user {number}, seeded for the dirsync benchmark",
        ]
        if not add:  # slapadd takes a given entryUUID; an online add may not set it
            lines.append(f"entryUUID: {entry_uuid(self.uuid_prefix + 'user', number)}")
        if rng.random() < self.disabled_share:
            lines.append("employeeType: disabled")
        return "\n".join(lines) + "\n"

    def group_ldif(self, number: int) -> str:
        members = [self.user_dn(u) for u in self.membership.get(number, [])]
        if number in self.nested:
            members.append(self.group_dn(self.nested[number]))
        if not members:
            members = [self.base_dn]  # groupOfNames needs a member; the base stands for nobody
        lines = [
            f"dn: {self.group_dn(number)}",
            "objectClass: groupOfNames",
            f"cn: g{number:05d}",
            f"description: synthetic group {number}",
            f"entryUUID: {entry_uuid(self.uuid_prefix + 'group', number)}",
            *(f"member: {m}" for m in members),
        ]
        return "\n".join(lines) + "\n"

    def ldif(self) -> str:
        """Everything below the base (which slapd's fixture creates), for ``slapadd -q``."""
        self._assign()
        rng = random.Random(self.seed + 1)
        parts = [
            f"dn: {self.people}\nobjectClass: organizationalUnit\nou: People\n",
            f"dn: {self.group_ou}\nobjectClass: organizationalUnit\nou: Groups\n",
        ]
        parts.extend(self.user_ldif(n, rng=rng) for n in range(self.users))
        parts.extend(self.group_ldif(g) for g in range(self.groups))
        return "\n".join(parts)

    def changes(self, count: int = 100) -> str:
        """LDIF change records: a fifth each of adds, modifies, disables, deletes and
        membership changes, on users spread across the directory (for ``ldapmodify``)."""
        if not self.membership:
            self._assign()
        rng = random.Random(self.seed + 2)
        fifth = count // 5
        picked = rng.sample(range(self.users), 4 * fifth)
        modified, disabled, deleted, moved = (picked[i * fifth : (i + 1) * fifth] for i in range(4))
        records = []
        for i in range(count - 4 * fifth):  # adds, each into a group
            number = self.users + i
            records.append(self.user_ldif(number, rng=random.Random(0), add=True))
            group = rng.randrange(self.groups)
            records.append(_member_change(self.group_dn(group), "add", self.user_dn(number)))
        for number in modified:
            records.append(
                f"dn: {self.user_dn(number)}\nchangetype: modify\nreplace: displayName\n"
                f"displayName: Renamed {number}\n-\nreplace: mail\n"
                f"mail: renamed.u{number:06d}@example.org\n-\n"
            )
        for number in disabled:
            records.append(
                f"dn: {self.user_dn(number)}\nchangetype: modify\n"
                "replace: employeeType\nemployeeType: disabled\n-\n"
            )
        for number in deleted:
            records.append(f"dn: {self.user_dn(number)}\nchangetype: delete\n")
        groups_of: dict[int, list[int]] = {}
        for group, members in self.membership.items():
            for member in members:
                groups_of.setdefault(member, []).append(group)
        for i, number in enumerate(moved):
            mine = groups_of.get(number, [])
            big = [g for g in mine if len(self.membership[g]) > 1]
            if i % 2 and big:  # out of a group that keeps other members
                records.append(
                    _member_change(self.group_dn(big[0]), "delete", self.user_dn(number))
                )
                continue
            group = rng.randrange(self.groups)
            while group in mine:
                group = rng.randrange(self.groups)
            records.append(_member_change(self.group_dn(group), "add", self.user_dn(number)))
        return "\n".join(records)


def _member_change(group_dn: str, op: str, member_dn: str) -> str:
    return f"dn: {group_dn}\nchangetype: modify\n{op}: member\nmember: {member_dn}\n-\n"
