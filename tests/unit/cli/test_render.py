"""Human output stays readable for big plans."""

from __future__ import annotations

from dirsync.cli.render import ROWS_PER_KIND, plan_rows
from dirsync.plan import Invite, Plan


def test_a_big_plan_shows_the_first_entries_of_each_kind_and_a_count_of_the_rest() -> None:
    invites = tuple(
        Invite(external_id=f"id{i}", email=f"u{i}@example.org", name=None) for i in range(120)
    )
    rows = plan_rows(Plan(invite=invites))
    assert len(rows) == ROWS_PER_KIND + 1
    assert rows[0] == ("invite", "u0@example.org", "")
    assert rows[-1] == ("invite", f"... {120 - ROWS_PER_KIND} more", "see --json")
