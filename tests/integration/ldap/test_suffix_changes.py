"""Organizations below one naming context share one change list: each pays for its own changes.

Two client OUs of the session's slapd, one organization each, synced by one ``sync``. syncprov
alone would send each organization's change search every entry changed in the other OU, as
deleted; with the shared list the organization whose OU did not change reads nothing, and a
user moved from one client to the other leaves the first and joins the second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from dirsync.cli.main import cli
from dirsync.connectors.cycle import one_cycle
from tests.integration.conftest import LdapTree, LimitedAccount, ldif_record
from tests.integration.test_sync_cli import Dirsync, dirsync

__all__ = ["dirsync"]  # the fixture, shared with test_sync_cli


def _client(tree: LdapTree, name: str, people: int) -> list[str]:
    base = f"ou={name},{tree.base_dn}"
    records = [
        ldif_record(base, {"objectClass": "organizationalUnit", "ou": name}),
        ldif_record(f"ou=People,{base}", {"objectClass": "organizationalUnit", "ou": "People"}),
        ldif_record(f"ou=Groups,{base}", {"objectClass": "organizationalUnit", "ou": "Groups"}),
    ]
    uids = [f"{name.lower()}{n}" for n in range(people)]
    for uid in uids:
        records.append(
            ldif_record(
                f"uid={uid},ou=People,{base}",
                {"objectClass": "inetOrgPerson", "uid": uid, "cn": uid, "sn": uid,
                 "mail": f"{uid}@example.org"},
            )
        )  # fmt: skip
    members = [f"uid={uid},ou=People,{base}" for uid in uids]
    records.append(
        ldif_record(
            f"cn=Staff,ou=Groups,{base}",
            {"objectClass": "groupOfNames", "cn": "Staff", "member": members},
        )
    )
    return records


def _config(tree: LdapTree, tmp_path: Path) -> Path:
    s = tree.server
    lines = [f'[store]\nurl = "sqlite:///{tmp_path / "dirsync.db"}"\n']
    for name in ("A", "B"):
        lines.append(
            f"""[[organization]]
name = "client-{name.lower()}"
[organization.source]
type = "ldap"
url = "{s.ldaps_url}"
ca_file = "{s.ca_file}"
bind_dn = "{s.reader_dn}"
bind_password = "{s.reader_password}"
base_dn = "ou={name},{tree.base_dn}"
user_path = "ou=People"
group_path = "ou=Groups"
incremental = "syncrepl"
[organization.sync]
max_removals = 10
"""
        )
    config = tmp_path / "dirsync.toml"
    config.write_text("\n".join(lines))
    return config


def _sync(config: Path) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--config", str(config), "sync", "--json"])
    assert result.exit_code == 0, (result.output, result.stderr)
    return {r["organization"]: r for r in json.loads(result.stdout)}


def test_each_organization_reads_only_the_changes_below_its_own_paths(
    ldap_tree: LdapTree, tmp_path: Path
) -> None:
    ldap_tree.add(*_client(ldap_tree, "A", 6), *_client(ldap_tree, "B", 6))
    config = _config(ldap_tree, tmp_path)
    first = _sync(config)
    assert [r["outcome"] for r in first.values()] == ["applied", "applied"]

    quiet = _sync(config)
    assert {name: (r["outcome"], r["entries_read"]) for name, r in quiet.items()} == {
        "client-a": ("unchanged", 0),
        "client-b": ("unchanged", 0),
    }

    a = f"ou=A,{ldap_tree.base_dn}"
    ldap_tree.server.modify_ldif(
        f"dn: uid=a0,ou=People,{a}\nchangetype: modify\nreplace: mail\nmail: a0.new@example.org\n"
        f"-\n\ndn: uid=a1,ou=People,{a}\nchangetype: delete\n"
    )
    changed = _sync(config)
    # client-a read the list (two entries) and its one changed user, not the group naming it
    # (the mirror holds a0 under the same DN: its groups are as they were); client-b, after
    # it, used the kept list and read nothing
    assert changed["client-a"]["outcome"] == "applied"
    assert changed["client-a"]["entries_read"] == 3
    assert [m["email"] for m in changed["client-a"]["plan"]["update"]] == ["a0.new@example.org"]
    assert len(changed["client-a"]["plan"]["revoke"]) == 1
    assert (changed["client-b"]["outcome"], changed["client-b"]["entries_read"]) == (
        "unchanged",
        0,
    )

    # a user moved from one client to the other leaves the first and joins the second
    ldap_tree.server.modify_ldif(
        f"dn: uid=a2,ou=People,{a}\nchangetype: modrdn\nnewrdn: uid=a2\ndeleteoldrdn: 1\n"
        f"newsuperior: ou=People,ou=B,{ldap_tree.base_dn}\n"
    )
    moved = _sync(config)
    assert [r["email"] for r in moved["client-a"]["plan"]["revoke"]] == ["a2@example.org"]
    assert [i["email"] for i in moved["client-b"]["plan"]["invite"]] == ["a2@example.org"]


def test_a_change_made_while_a_cycle_runs_reaches_its_organizations_in_the_next_cycle(
    ldap_tree: LdapTree, tmp_path: Path
) -> None:
    """A cycle asks the directory's contextCSN once: a change made after that is not in this
    cycle's change list, and is in the next cycle's, from the cookie this cycle stored."""
    ldap_tree.add(*_client(ldap_tree, "A", 3), *_client(ldap_tree, "B", 3))
    config = _config(ldap_tree, tmp_path)
    assert [r["outcome"] for r in _sync(config).values()] == ["applied", "applied"]
    b = f"ou=B,{ldap_tree.base_dn}"
    with one_cycle():  # the syncs below are parts of this one cycle
        assert [r["outcome"] for r in _sync(config).values()] == ["unchanged", "unchanged"]
        ldap_tree.server.modify_ldif(
            f"dn: uid=b0,ou=People,{b}\nchangetype: modify\nreplace: mail\n"
            "mail: b0.new@example.org\n"
        )
        during = _sync(config)
    assert [r["outcome"] for r in during.values()] == ["unchanged", "unchanged"]

    after = _sync(config)

    assert (after["client-a"]["outcome"], after["client-b"]["outcome"]) == (
        "unchanged",
        "applied",
    )
    assert [m["email"] for m in after["client-b"]["plan"]["update"]] == ["b0.new@example.org"]
    assert _sync(config)["client-b"]["outcome"] == "unchanged"


def test_a_change_list_cut_off_by_a_size_limit_leaves_each_organization_its_own_delta(
    dirsync: Dirsync, limited_account: LimitedAccount
) -> None:
    """An account whose searches stop after a few entries cannot read the naming context's
    changes: each organization then reads its own with syncrepl, still a delta."""
    tree = dirsync.tree
    dirsync.set(
        source={
            "bind_dn": limited_account.dn,
            "bind_password": limited_account.password,
            "incremental": "syncrepl",
            "page_size": 2,
        }
    )
    tree.add(*(tree.person(f"u{n}") for n in range(3)))
    assert dirsync.sync_json()["outcome"] == "applied"
    elsewhere = f"ou=Elsewhere,{tree.base_dn}"
    records = [ldif_record(elsewhere, {"objectClass": "organizationalUnit", "ou": "Elsewhere"})]
    records += [
        ldif_record(
            f"uid=x{n},{elsewhere}",
            {"objectClass": "inetOrgPerson", "uid": f"x{n}", "cn": f"x{n}", "sn": f"x{n}"},
        )
        for n in range(limited_account.size)
    ]
    tree.add(*records)
    tree.server.modify_ldif(
        f"dn: uid=u0,{tree.people}\nchangetype: modify\nreplace: mail\nmail: u0.new@example.org\n"
    )

    result = dirsync.sync_json()

    assert [u["email"] for u in result["plan"]["update"]] == ["u0.new@example.org"]
    fulls = [bool(full) for (full,) in dirsync.sql("SELECT full FROM runs ORDER BY started_at")]
    assert fulls == [True, False]
