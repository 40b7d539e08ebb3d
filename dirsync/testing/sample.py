"""A small sample company directory (LDIF) for the demo, the docs and tests.

Twelve people under ``ou=People`` and four ``groupOfNames`` under ``ou=Groups``; "All Staff"
nests the three department groups. Kim Lee has no ``mail`` (an email can be built from the user
name with ``email_suffix``), and Olaf Berg is disabled (``employeeType: disabled``; select him
with ``disabled_filter = "(employeeType=disabled)"``).
"""

from __future__ import annotations

#: (uid, given name, surname, department group or None, has mail, disabled)
PEOPLE: tuple[tuple[str, str, str, str, bool, bool], ...] = (
    ("alice", "Alice", "Andersen", "Engineering", True, False),
    ("bob", "Bob", "Brown", "Engineering", True, False),
    ("carol", "Carol", "Chen", "Engineering", True, False),
    ("dave", "Dave", "Dubois", "Engineering", True, False),
    ("erin", "Erin", "Evans", "Marketing", True, False),
    ("frank", "Frank", "Fischer", "Marketing", True, False),
    ("grace", "Grace", "Garcia", "Marketing", True, False),
    ("heidi", "Heidi", "Hansen", "Sales", True, False),
    ("ivan", "Ivan", "Ivanov", "Sales", True, False),
    ("judy", "Judy", "Jones", "Sales", True, False),
    ("kim", "Kim", "Lee", "Sales", False, False),
    ("olaf", "Olaf", "Berg", "Engineering", True, True),
)

GROUPS = ("Engineering", "Marketing", "Sales")
ALL_STAFF = "All Staff"


def sample_company_ldif(
    base_dn: str = "dc=example,dc=org", *, mail_domain: str = "example.org"
) -> str:
    """LDIF for ``ou=People`` and ``ou=Groups`` under ``base_dn`` (which must already exist)."""
    people = f"ou=People,{base_dn}"
    groups = f"ou=Groups,{base_dn}"
    records = [
        f"dn: {people}\nobjectClass: organizationalUnit\nou: People\n",
        f"dn: {groups}\nobjectClass: organizationalUnit\nou: Groups\n",
    ]
    for number, (uid, given, surname, _group, has_mail, disabled) in enumerate(PEOPLE, 1000):
        lines = [
            f"dn: uid={uid},{people}",
            "objectClass: inetOrgPerson",
            f"uid: {uid}",
            f"cn: {given} {surname}",
            f"givenName: {given}",
            f"sn: {surname}",
            f"displayName: {given} {surname}",
            f"employeeNumber: {number}",
        ]
        if has_mail:
            lines.append(f"mail: {uid}@{mail_domain}")
        if disabled:
            lines.append("employeeType: disabled")
        records.append("\n".join(lines) + "\n")
    for group in GROUPS:
        members = [f"member: uid={p[0]},{people}" for p in PEOPLE if p[3] == group]
        records.append(
            "\n".join(
                [f"dn: cn={group},{groups}", "objectClass: groupOfNames", f"cn: {group}", *members]
            )
            + "\n"
        )
    nested = [f"member: cn={group},{groups}" for group in GROUPS]
    records.append(
        "\n".join(
            [
                f"dn: cn={ALL_STAFF},{groups}",
                "objectClass: groupOfNames",
                f"cn: {ALL_STAFF}",
                *nested,
            ]
        )
        + "\n"
    )
    return "\n".join(records)
