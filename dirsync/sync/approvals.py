"""Approving a refused push: recorded by an administrator, found by the identity provider's retry.

A sync's refused plan is approved by running the sync again with ``--approve DIGEST``. A push
cannot be re-run by dirsync (only the identity provider has the request), so for a pushed
organization ``dirsync sync --approve DIGEST`` records the approval in the store instead, and:

- the next push whose plan has that digest is applied despite the guards, once (its retry:
  the same request on the same organization plans to the same digest);
- the removal window restarts at the approval: the deprovisionings counted against
  ``max_removals`` are those after it, so a burst of single DELETEs that the window refused
  can go on, up to ``max_removals`` again.

An approval holds for ``APPROVAL_VALID`` or until a run applies its plan, whichever is first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dirsync.errors import NotFound
from dirsync.rules import SyncRules
from dirsync.state.sql_store import SqlStore

#: how long an approval waits for the identity provider's retry (Entra ID retries a failed
#: request on its next cycles, 40 minutes apart, backing off to hours when it keeps failing)
APPROVAL_VALID = timedelta(days=1)


def approve_command(organization: str, digest: str) -> str:
    """The command an administrator runs to approve a refused plan."""
    return f"dirsync sync --org {organization} --approve {digest}"


def approve_push(
    store: SqlStore, organization: str, digest: str, *, actor: str, now: datetime
) -> datetime:
    """Record ``actor``'s approval of the refused plan ``digest``; when it was refused. A
    digest no run of the organization refused is a ``NotFound`` (exit 2), and nothing is
    recorded."""
    refused = store.refused_at(organization, digest)
    if refused is None:
        raise NotFound(
            f"no run of {organization} refused a plan {digest!r}: nothing to approve (the "
            "refusal names its plan: the SCIM error, the scim.refused log line, dirsync runs)"
        )
    store.approve_plan(organization, digest, actor=actor, now=now)
    return refused


def removal_window_start(
    store: SqlStore, organization: str, rules: SyncRules, now: datetime
) -> datetime:
    """Where the removal window of a push begins: ``removal_window`` ago, or the last
    approval in it, whichever is later."""
    start = now - rules.removal_window
    return max([start, *(a.at for a in store.approvals_since(organization, start))])


def is_approved(store: SqlStore, organization: str, digest: str, now: datetime) -> bool:
    """Whether an administrator approved this plan and no run has applied it since."""
    return any(
        a.digest == digest and not a.used
        for a in store.approvals_since(organization, now - APPROVAL_VALID)
    )
