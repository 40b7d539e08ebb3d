"""An organization's schedule kept in the store: which node runs it, and when it is due next.

Several nodes that share a store each schedule every organization, but only the node that
*claims* a due organization runs it; the others learn when it is due next and look again then.
A claim is one transaction, made while the node holds the organization's lock (so two claims
of one organization never race): it succeeds when ``next_due`` has passed and moves
``next_due`` to a lease, the time after which another node may run the organization if this
one never reports back (it died or was cut off). ``finish`` then sets the real next time, the
failure count and the last full read, unless another node has claimed the organization since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from dirsync.state.apply import ensure_organization
from dirsync.state.schema import OrganizationRow, ScheduleRow


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim found: ``won`` (this node runs it now) or when the organization is due."""

    won: bool
    next_due: datetime | None
    #: the claim's number (``finish`` applies only while it is the latest)
    number: int = 0
    failures: int = 0
    last_full: datetime | None = None


def claim(
    session: Session, organization: str, *, node: str, now: datetime, lease_until: datetime
) -> Claim:
    """Claim ``organization`` for ``node`` if it is due at ``now``."""
    org_id = ensure_organization(session, organization, now)
    row = session.execute(
        select(ScheduleRow).where(ScheduleRow.organization_id == org_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        values = {
            "organization_id": org_id,
            "next_due": lease_until,
            "claim": 1,
            "node": node,
            "claimed_at": now,
            "failures": 0,
            "last_full": None,
        }
        session.execute(insert(ScheduleRow), [values])
        return Claim(won=True, next_due=lease_until, number=1)
    if row.next_due > now:
        return Claim(won=False, next_due=row.next_due, number=row.claim)
    number = row.claim + 1
    session.execute(
        update(ScheduleRow)
        .where(ScheduleRow.organization_id == org_id)
        .values(next_due=lease_until, claim=number, node=node, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return Claim(
        won=True,
        next_due=lease_until,
        number=number,
        failures=row.failures,
        last_full=row.last_full,
    )


def finish(
    session: Session,
    organization: str,
    *,
    number: int,
    next_due: datetime,
    failures: int,
    last_full: datetime | None,
) -> bool:
    """After the run of claim ``number``: when it is due next; False (nothing written) when
    another node has claimed it since."""
    org_id = _organization_id(session, organization)
    if org_id is None:
        return False
    result = session.execute(
        update(ScheduleRow)
        .where(ScheduleRow.organization_id == org_id, ScheduleRow.claim == number)
        .values(next_due=next_due, failures=failures, last_full=last_full)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def next_due(session: Session, organization: str) -> datetime | None:
    """When ``organization`` is due next; None before its first claim."""
    return session.scalar(
        select(ScheduleRow.next_due)
        .join(OrganizationRow, OrganizationRow.id == ScheduleRow.organization_id)
        .where(OrganizationRow.name == organization)
    )


def due_times(session: Session) -> dict[str, datetime]:
    """Every claimed organization's next due time, by name."""
    rows = session.execute(
        select(OrganizationRow.name, ScheduleRow.next_due).join(
            OrganizationRow, OrganizationRow.id == ScheduleRow.organization_id
        )
    )
    return {name: due for name, due in rows}


def _organization_id(session: Session, organization: str) -> int | None:
    return session.scalar(select(OrganizationRow.id).where(OrganizationRow.name == organization))
