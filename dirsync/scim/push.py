"""One SCIM request that changes something, as one run: delta → plan → guards → apply.

A push is what an incremental read would have returned: the users and groups it creates or
replaces, the ones it deletes. It runs through ``sync.run.run_organization`` like any delta, so
it is planned by the same mapping (by difference, when the organization is as the last plan
left it: no whole-organization load), judged by the same guards and applied in one transaction
with its audit events (actor ``scim:<organization>``) and its run record. The organization's
lock (the one syncs take) is held meanwhile, so pushes of one organization apply one at a time,
and the read-modify-write of a PATCH reads what the previous push wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog

from dirsync.connectors.base import HeldRefs, ProgressCallback
from dirsync.connectors.scim.connector import PUSHED
from dirsync.model import Cursor, DirectoryDelta, Reading, SourceInfo
from dirsync.plan import Outcome
from dirsync.rules import SyncRules
from dirsync.scim.errors import ScimError
from dirsync.state.sql_store import SqlStore
from dirsync.sync.approvals import approve_command, is_approved, removal_window_start
from dirsync.sync.locks import OrganizationLock
from dirsync.sync.result import RunResult
from dirsync.sync.run import Clock, run_organization, utcnow
from dirsync.sync.store_lock import StoreLock, organization_lock

log = structlog.get_logger("dirsync.scim.push")


class _Pushed:
    """The connector of one push: its delta is what the identity provider sent."""

    def __init__(self, delta: DirectoryDelta) -> None:
        self.delta = delta

    def read(
        self,
        cursor: Cursor | None,
        *,
        progress: ProgressCallback | None = None,
        held: HeldRefs | None = None,
    ) -> Reading:
        entries = len(self.delta.users) + len(self.delta.groups) + len(self.delta.group_changes)
        return Reading(delta=self.delta, cursor=PUSHED, entries_read=entries)

    def probe(self) -> SourceInfo:
        return SourceInfo(url="scim push")

    def close(self) -> None:
        """Nothing is open."""


@dataclass(frozen=True, slots=True)
class Pusher:
    """Applies pushes to the store, one organization lock at a time."""

    store: SqlStore
    #: the store's URL and the runtime folder: where the organization's lock is (a flock, or
    #: PostgreSQL's advisory lock for a store shared by several nodes)
    store_url: str
    runtime_dir: Path
    takeover: timedelta = timedelta(seconds=60)
    clock: Clock = utcnow

    def lock(self, organization: str) -> OrganizationLock | StoreLock:
        """The organization's lock, the one syncs take, waited for (a sync may be running)."""
        return organization_lock(
            self.store_url, self.runtime_dir, organization, takeover=self.takeover, wait=True
        )

    def push(
        self,
        organization: str,
        rules: SyncRules,
        delta: DirectoryDelta,
        *,
        approvable: bool = True,
    ) -> RunResult:
        """Plan, guard and apply ``delta``; the caller holds ``lock(organization)``. A refusal
        or a failure raises a ``ScimError`` (the store is then unchanged).

        A refused plan an administrator approved (``sync.approvals``) is planned again with
        the approval, once: the identity provider's retry of a refused request goes through.
        Not ``approvable``: a create, whose retry gets a new id and so is another plan; its
        refusal names the limit to raise rather than an approval that could never apply.
        """
        now = self.clock()
        recent = 0
        if delta.deleted_user_ids or any(u.disabled for u in delta.users):
            # only a push that can deprovision asks (the guard counts them with its own)
            since = removal_window_start(self.store, organization, rules, now)
            recent = self.store.removals_since(organization, since)
        result = self._run(organization, rules, delta, recent)
        if result.outcome == Outcome.REFUSED and is_approved(
            self.store, organization, result.digest(), now
        ):
            log.info("scim.approved_plan", organization=organization, plan=result.digest())
            result = self._run(organization, rules, delta, recent, approve=result.digest())
        counts = result.plan.counts()
        if result.outcome == Outcome.REFUSED:
            digest = result.digest()
            command = approve_command(organization, digest)
            log.warning(
                "scim.refused",
                organization=organization,
                reasons=list(result.refusal),
                plan=digest,
                approve=command,
            )
            remedy = (
                f"plan {digest}; to apply it when the identity provider retries: {command}"
                if approvable
                else "a create's retry is a new plan and cannot be approved: raise the "
                "organization's seats, or make room"
            )
            raise ScimError(
                403,
                "refused by dirsync's guards, nothing changed: "
                + "; ".join(result.refusal)
                + f" ({remedy})",
            )
        if result.outcome == Outcome.FAILED:
            log.error("scim.failed", organization=organization, error=result.error)
            raise ScimError(503, f"not applied, nothing changed: {result.error}")
        log.info("scim.applied", organization=organization, outcome=str(result.outcome), **counts)
        return result

    def _run(
        self,
        organization: str,
        rules: SyncRules,
        delta: DirectoryDelta,
        recent: int,
        *,
        approve: str | None = None,
    ) -> RunResult:
        return run_organization(
            organization,
            rules,
            _Pushed(delta),
            self.store,
            now=self.clock,
            actor=f"scim:{organization}",
            recent_removals=recent,
            approve=approve,
        )
