"""A cycle remembers what a connector learned once, for that cycle and that thread only."""

from __future__ import annotations

import threading

import pytest

from dirsync.connectors.cycle import one_cycle, remembered


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_outside_a_cycle_every_call_computes() -> None:
    counter = Counter()
    assert [remembered("k", counter), remembered("k", counter)] == [1, 2]


def test_within_a_cycle_a_key_is_computed_once_and_each_cycle_afresh() -> None:
    counter = Counter()
    with one_cycle():
        assert [remembered("k", counter), remembered("k", counter)] == [1, 1]
        assert remembered("other", counter) == 2
    with one_cycle():
        assert remembered("k", counter) == 3
    assert counter.calls == 3


def test_a_nested_cycle_is_part_of_the_outer_one() -> None:
    counter = Counter()
    with one_cycle():
        assert remembered("k", counter) == 1
        with one_cycle():
            assert remembered("k", counter) == 1
        assert remembered("k", counter) == 1


def test_a_call_that_raises_is_not_remembered() -> None:
    def broken() -> int:
        raise OSError("the server went away")

    counter = Counter()
    with one_cycle():
        with pytest.raises(OSError):
            remembered("k", broken)
        assert remembered("k", counter) == 1


def test_another_thread_does_not_see_the_cycle() -> None:
    counter = Counter()
    seen: list[int] = []
    with one_cycle():
        remembered("k", counter)
        thread = threading.Thread(target=lambda: seen.append(remembered("k", counter)))
        thread.start()
        thread.join()
    assert seen == [2]
