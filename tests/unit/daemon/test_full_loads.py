"""``[daemon] max_full_loads``: the key, its reload, and the gate's own counts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dirsync.config.settings import Config, parse_config
from dirsync.daemon import memory
from dirsync.daemon.full_loads import FullLoads
from dirsync.daemon.schedule import plan_reload
from dirsync.errors import ConfigError

SOURCE = {"type": "ldap", "url": "ldap://127.0.0.1", "base_dn": "dc=example,dc=org"}


def _config(**daemon: object) -> Config:
    raw = {"daemon": daemon, "organization": [{"name": "acme", "source": SOURCE}]}
    return parse_config(raw, base_dir=Path("."))


def test_max_full_loads_is_one_by_default_and_at_least_one() -> None:
    assert _config().daemon.max_full_loads == 1
    with pytest.raises(ConfigError) as error:
        _config(max_full_loads=0)
    assert error.value.problems == [
        "daemon.max_full_loads: Input should be greater than or equal to 1"
    ]


def test_a_reload_keeps_max_full_loads_until_a_restart() -> None:
    change = plan_reload(_config(max_full_loads=2), _config(max_full_loads=5))
    assert change.needs_restart == ("daemon.max_full_loads",)
    assert change.config.daemon.max_full_loads == 2


def test_the_gate_counts_who_holds_it_and_the_most_at_once() -> None:
    gate = FullLoads(2, patience=60)
    with gate() as first, gate() as second:
        assert gate.holding == 0  # both read: no load slot yet
        first.hold()
        second.hold()
        assert (gate.holding, gate.peak, gate.waiting) == (2, 2, 0)
    with gate() as third:
        third.hold()
        assert (gate.holding, gate.peak) == (1, 2)
    assert (gate.holding, gate.lent) == (0, 0)


def test_a_slow_read_lends_its_slot_and_its_run_takes_one_again_to_load() -> None:
    gate = FullLoads(1, patience=0.0)  # every read is slow
    with gate() as slow:
        deadline = time.monotonic() + 10
        while gate.lent == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert (gate.holding, gate.lent) == (0, 1)  # lent: free for another run
        with gate() as other:
            other.hold()
            assert gate.holding == 1
        slow.hold()  # its load, plan and apply: a slot again, and it stays
        assert gate.holding == 1
    assert (gate.holding, gate.peak) == (0, 1)


def test_memory_is_given_back_by_glibc_on_this_machine() -> None:
    assert memory.give_back() is True


def test_the_malloc_arenas_are_limited_by_glibc_on_this_machine() -> None:
    assert memory.limit_arenas() is True
