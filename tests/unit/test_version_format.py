"""setuptools-scm's version rules, as dirsync follows them when it asks git itself."""

from __future__ import annotations

from datetime import date

from dirsync.version import format_version

DAY = date(2026, 12, 5)


def test_a_clean_tagged_commit_is_the_release_itself() -> None:
    assert format_version("0.2.0", distance=0, node="1a2b3c4d5", dirty=False, today=DAY) == "0.2.0"


def test_commits_after_a_tag_are_a_dev_release_of_the_next_version_naming_the_commit() -> None:
    assert (
        format_version("0.2.0", distance=4, node="1a2b3c4d5", dirty=False, today=DAY)
        == "0.2.1.dev4+g1a2b3c4d5"
    )
    assert format_version("0.3", distance=1, node="abc", dirty=False, today=DAY) == "0.4.dev1+gabc"


def test_uncommitted_changes_add_the_day_even_on_a_tag() -> None:
    assert (
        format_version("0.2.0", distance=0, node="1a2b3c4d5", dirty=True, today=DAY)
        == "0.2.1.dev0+g1a2b3c4d5.d20261205"
    )
