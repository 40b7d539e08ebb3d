"""A cycle: one pass of ``dirsync sync`` over its organizations, in which what a connector
learned of a server as the cycle began may stand for the rest of the cycle.

An MSP's cycle runs hundreds of organizations below one server, one after the other in a
second or two. Each run's delta starts from its stored cursor and ends at a point the source
names (for LDAP, the change list's cookie), so a change made while the cycle runs is never
lost: an organization that does not see it in this cycle sees it in the next one, from the
cursor this cycle stored. Within a cycle, then, a fact such as "the directory's contextCSN is
still X" need not be asked again for each organization (``remembered``).

Outside a cycle (the daemon's runs, which come due one by one; a library caller) every call
computes afresh. The cycle is a context variable: a thread sees only the cycle it entered.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_facts: ContextVar[dict[Hashable, object] | None] = ContextVar("dirsync_cycle", default=None)


@contextmanager
def one_cycle() -> Iterator[None]:
    """Run the body as one cycle (nested: the outer cycle goes on)."""
    if _facts.get() is not None:
        yield
        return
    token = _facts.set({})
    try:
        yield
    finally:
        _facts.reset(token)


def remembered(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, once per cycle for ``key`` (a call that raises is not remembered);
    outside a cycle, every time."""
    facts = _facts.get()
    if facts is None:
        return compute()
    if key not in facts:
        facts[key] = compute()
    return facts[key]  # type: ignore[return-value]  # stored under its key by this function
