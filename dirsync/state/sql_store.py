"""``SqlStore``: the embedded organization store on SQLAlchemy (SQLite by default, or PostgreSQL).

Every write is one transaction that either commits whole or leaves the store as it was; every
SQLAlchemy or Alembic error becomes a ``StoreError`` (``ConcurrentRunError`` for a version
conflict) raised ``from`` the original. A read-only store (dry runs, read commands) never
creates, migrates or modifies anything, not even the SQLite file's journal mode.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dirsync.errors import DirsyncError, StoreError
from dirsync.lifecycle import AdminChange
from dirsync.mapping.scope import ScopedOrganization
from dirsync.model import Cursor, DirectoryDelta, DirectoryGroup, DirectoryUser, Mirror
from dirsync.plan import Plan
from dirsync.state import (
    admin,
    approvals,
    held_rows,
    mirror_queries,
    org_queries,
    queries,
    run_rows,
    schedules,
    scope_rows,
    upkeep,
)
from dirsync.state import apply as apply_module
from dirsync.state.engine import (
    WRITE_OPTION,
    check_known,
    create_store_engine,
    display_url,
    has_schema,
    is_sqlite,
    page_cache,
    sqlite_path,
    upgrade,
)
from dirsync.state.records import (
    CollectionView,
    EventView,
    GroupView,
    MemberView,
    OpenedRun,
    OrganizationSummary,
    PlanApproval,
    RunRecord,
    StoredOrganization,
)
from dirsync.state.schema import RunRow

T = TypeVar("T")


def _describe(exc: BaseException) -> str:
    """A short message: the driver's first line, without SQL text or parameters."""
    origin = getattr(exc, "orig", None) or exc
    text = str(origin).strip().splitlines()[0] if str(origin).strip() else ""
    return f"{type(origin).__name__}: {text}" if text else type(origin).__name__


class SqlStore:
    """One store; open with ``SqlStore.open(url)``, close with ``close()`` (or use ``with``)."""

    def __init__(self, engine: Engine | None, *, readonly: bool) -> None:
        self._engine = engine
        #: a read-only store over nothing (no file, no schema yet): every read is empty
        self._empty = engine is None
        self._sessions = sessionmaker(engine, expire_on_commit=False) if engine else None
        self.readonly = readonly

    @classmethod
    def open(
        cls, url: str, *, readonly: bool = False, stall_timeout: timedelta | None = None
    ) -> SqlStore:
        """Open (and, unless ``readonly``, migrate) the store at ``url``; ``stall_timeout``:
        see ``engine.create_store_engine``."""
        try:
            parsed = make_url(url)
        except ArgumentError as exc:  # its message repeats the URL, password included
            raise StoreError("the store URL is not a valid SQLAlchemy URL") from exc
        engine: Engine | None = None
        try:
            if readonly and is_sqlite(parsed):
                path = sqlite_path(parsed)
                if path is None or not path.is_file():
                    return cls(None, readonly=True)  # behaves as empty; creates nothing
            engine = create_store_engine(parsed, readonly=readonly, stall_timeout=stall_timeout)
            if readonly:
                if not has_schema(engine):
                    engine.dispose()
                    return cls(None, readonly=True)
                check_known(engine)
            else:
                upgrade(engine)
            return cls(engine, readonly=readonly)
        except Exception as exc:
            # alembic's CommandError included, without importing alembic to name it
            foreign = isinstance(exc, SQLAlchemyError | OSError) or type(exc).__module__.startswith(
                "alembic."
            )
            if engine is not None:
                engine.dispose()
            if not foreign:
                raise
            shown = display_url(url)
            raise StoreError(f"cannot open the store {shown}: {_describe(exc)}") from exc

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = None

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Session]:
        if self._sessions is None:
            raise StoreError("the store is closed")
        if write and self.readonly:
            raise StoreError("the store was opened read-only")
        options = {WRITE_OPTION: True} if write else None
        try:
            with self._sessions() as session:
                session.connection(execution_options=options)
                try:
                    yield session
                    if write:
                        session.commit()
                except BaseException:
                    session.rollback()
                    raise
        except DirsyncError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store transaction failed: {_describe(exc)}") from exc

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Connection]:
        """A Core connection in one transaction, for the few statements built once
        (``run_rows``): no ORM session to set up. Errors as ``_transaction``'s."""
        if self._engine is None:
            raise StoreError("the store is closed")
        if write and self.readonly:
            raise StoreError("the store was opened read-only")
        try:
            with self._engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    yield connection
        except DirsyncError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store transaction failed: {_describe(exc)}") from exc

    def _read(self, query: Callable[[Session], T], empty: T) -> T:
        if self._empty:
            return empty
        with self._transaction(write=False) as session:
            return query(session)

    # -- the API -----------------------------------------------------------------------------

    def load(self, organization: str) -> StoredOrganization:
        return self._read(
            lambda s: queries.load_organization(s, organization),
            queries.empty_organization(organization),
        )

    def load_scoped(
        self,
        organization: str,
        delta: DirectoryDelta,
        *,
        seats: bool = False,
        reinvite_before: datetime | None = None,
        collection_groups: Collection[str] | None = None,
    ) -> ScopedOrganization | None:
        """Only the part of the organization and mirror that ``delta`` can change the plan
        for, and the whole organization's counts (see ``mapping.scope``; ``seats``: there is
        a seat limit; ``reinvite_before`` and ``collection_groups``: see ``Store``); None
        when the organization was never written."""
        return self._read(
            lambda s: scope_rows.load_scoped(
                s,
                organization,
                delta,
                seats=seats,
                reinvite_before=reinvite_before,
                collection_groups=collection_groups,
            ),
            None,
        )

    def known_ids(
        self, organization: str, user_ids: Collection[str], group_ids: Collection[str]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Which of these user and group ids the organization holds (mirror or its own)."""
        nothing: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
        return self._read(
            lambda s: held_rows.known_ids(s, organization, user_ids, group_ids), nothing
        )

    def apply(
        self,
        organization: str,
        *,
        plan: Plan,
        mirror_before: Mirror,
        mirror_after: Mirror,
        cursor: Cursor | None,
        run: RunRecord,
        expected_version: int,
        now: datetime,
    ) -> int:
        """Write one run in one transaction; returns the organization's new version."""
        job = apply_module.ApplyInput(
            organization=organization,
            plan=plan,
            mirror_before=mirror_before,
            mirror_after=mirror_after,
            cursor=cursor,
            run=run,
            expected_version=expected_version,
            now=now,
        )
        with self._transaction(write=True) as session, page_cache(session.connection()):
            return apply_module.apply_run(session, job)

    def begin_run(self, organization: str, run: RunRecord) -> int:
        """Record a run as running, closing stale ones as interrupted; returns how many."""
        with self._connection(write=True) as connection:
            return run_rows.begin_run(connection, organization, run)

    def open_run(self, organization: str, run: RunRecord) -> OpenedRun:
        """``begin_run`` and ``quick_look`` in one write transaction."""
        with self._connection(write=True) as connection:
            return run_rows.open_run(connection, organization, run)

    def admin_change(
        self, organization: str, decide: admin.Decide, *, actor: str, now: datetime
    ) -> AdminChange | None:
        """An administrator's change to one member, with its event, in one transaction."""
        with self._transaction(write=True) as session:
            return admin.apply_admin(session, organization, decide, actor=actor, now=now)

    def quick_look(self, organization: str) -> tuple[Cursor | None, int]:
        """The stored cursor and version only (one small query, for quiet runs)."""
        nothing: tuple[Cursor | None, int] = (None, 0)
        return self._read(lambda s: queries.cursor_and_version(s, organization), nothing)

    def record_quiet_run(
        self,
        organization: str,
        *,
        cursor: Cursor | None,
        run: RunRecord,
        expected_version: int,
        reinvite_before: datetime | None = None,
    ) -> bool:
        """Record a run that found nothing to change, and its new cursor, without touching
        the version. False (and nothing written) if the version moved since ``quick_look``,
        or an invitation last sent by ``reinvite_before`` is pending (one indexed look-up)."""
        with self._connection(write=True) as connection:
            return run_rows.record_quiet_run(
                connection,
                organization,
                cursor=cursor,
                run=run,
                expected_version=expected_version,
                reinvite_before=reinvite_before,
            )

    def record_run(self, organization: str, run: RunRecord) -> None:
        """Record a run that changed nothing else (failed, refused); replaces a same-id run."""
        now = run.finished_at or run.started_at or datetime.now(UTC)
        with self._transaction(write=True) as session:
            org_id = apply_module.ensure_organization(session, organization, now)
            session.merge(RunRow(**apply_module.run_values(org_id, run)))

    def claim_schedule(
        self, organization: str, *, node: str, now: datetime, lease_until: datetime
    ) -> schedules.Claim:
        """Claim a due organization for ``node`` (see ``state/schedules.py``); one transaction."""
        with self._transaction(write=True) as session:
            return schedules.claim(
                session, organization, node=node, now=now, lease_until=lease_until
            )

    def finish_schedule(
        self,
        organization: str,
        *,
        number: int,
        next_due: datetime,
        failures: int,
        last_full: datetime | None,
    ) -> bool:
        """After a claimed run: when it is due next; False if another node claimed it since."""
        with self._transaction(write=True) as session:
            return schedules.finish(
                session,
                organization,
                number=number,
                next_due=next_due,
                failures=failures,
                last_full=last_full,
            )

    def due_times(self) -> dict[str, datetime]:
        """The shared schedule: each organization's next due time (claimed ones only)."""
        return self._read(schedules.due_times, {})

    def next_due(self, organization: str) -> datetime | None:
        """When the shared schedule has ``organization`` due next (None: never claimed)."""
        return self._read(lambda s: schedules.next_due(s, organization), None)

    def prune(self, *, runs_before: datetime, events_before: datetime | None) -> upkeep.Pruned:
        """Delete old run records (each organization keeps its latest and latest successful
        run) and, given ``events_before``, old audit events; one transaction."""
        with self._connection(write=True) as connection:
            return upkeep.prune(connection, runs_before=runs_before, events_before=events_before)

    def last_runs(self) -> dict[str, RunRecord]:
        return self._read(queries.last_runs, {})

    def runs(
        self, organizations: Sequence[str] | None = None, *, since: datetime | None = None
    ) -> list[RunRecord]:
        """The run history, oldest first (``dirsync runs``)."""
        return self._read(lambda s: queries.run_history(s, organizations, since), [])

    def last_successes(self) -> dict[str, datetime]:
        return self._read(queries.last_successes, {})

    def members(self, organization: str) -> list[MemberView]:
        return self._read(lambda s: queries.member_views(s, organization), [])

    def groups(self, organization: str) -> list[GroupView]:
        return self._read(lambda s: queries.group_views(s, organization), [])

    def events(self, organization: str, *, since: datetime | None = None) -> list[EventView]:
        return self._read(lambda s: queries.event_views(s, organization, since), [])

    def mirror_user(self, organization: str, external_id: str) -> DirectoryUser | None:
        """One user of the stored mirror, by external id."""
        return self._read(lambda s: mirror_queries.mirror_user(s, organization, external_id), None)

    def mirror_users(
        self,
        organization: str,
        *,
        username: str | None = None,
        idp_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[DirectoryUser]]:
        """How many mirror users match (``username``: that user name, in any case; ``idp_id``:
        that identity provider id) and one page of them, in external id order."""
        nothing: tuple[int, list[DirectoryUser]] = (0, [])
        return self._read(
            lambda s: mirror_queries.mirror_users_page(
                s, organization, username=username, idp_id=idp_id, offset=offset, limit=limit
            ),
            nothing,
        )

    def mirror_groups(
        self,
        organization: str,
        *,
        name: str | None = None,
        group_id: str | None = None,
        idp_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
        members: bool = True,
    ) -> tuple[int, list[DirectoryGroup]]:
        """How many mirror groups match (``name``: that name in any case; ``group_id``: that
        id; ``idp_id``: that identity provider id) and one page of them, with their member
        refs unless ``members`` is False."""
        nothing: tuple[int, list[DirectoryGroup]] = (0, [])
        return self._read(
            lambda s: mirror_queries.mirror_groups_page(
                s,
                organization,
                name=name,
                group_id=group_id,
                idp_id=idp_id,
                offset=offset,
                limit=limit,
                members=members,
            ),
            nothing,
        )

    def mirror_members_among(
        self, organization: str, group_id: str, refs: Collection[str]
    ) -> frozenset[str]:
        """Which of ``refs`` the mirror group ``group_id`` has among its members."""
        return self._read(
            lambda s: mirror_queries.mirror_members_among(s, organization, group_id, refs),
            frozenset(),
        )

    def mirror_kinds(self, organization: str, refs: Collection[str]) -> dict[str, str]:
        """Which of ``refs`` name a user or group of the stored mirror ("User", "Group")."""
        return self._read(lambda s: mirror_queries.mirror_kinds(s, organization, refs), {})

    def held_refs(self, organization: str, ids: Collection[str]) -> dict[str, str]:
        """The refs of the mirror's users and groups with these ids (id → ref)."""
        return self._read(lambda s: held_rows.held_refs(s, organization, ids), {})

    def organizations(self) -> list[str]:
        return self._read(queries.organization_names, [])

    def collections(self, organization: str) -> list[CollectionView]:
        return self._read(lambda s: org_queries.collection_views(s, organization), [])

    def removals_since(self, organization: str, since: datetime) -> int:
        """Members revoked or removed by runs (not administrators) at or after ``since``."""
        return self._read(lambda s: org_queries.removals_since(s, organization, since), 0)

    def refused_at(self, organization: str, digest: str) -> datetime | None:
        """When a run of the organization last refused the plan with this digest, if ever."""
        return self._read(lambda s: approvals.refused_at(s, organization, digest), None)

    def approve_plan(self, organization: str, digest: str, *, actor: str, now: datetime) -> None:
        """Record an administrator's approval of a refused plan (an audit event)."""
        with self._transaction(write=True) as session:
            approvals.record_approval(session, organization, digest, actor=actor, now=now)

    def approvals_since(self, organization: str, since: datetime) -> list[PlanApproval]:
        """Approvals of refused plans recorded at or after ``since``, oldest first."""
        return self._read(lambda s: approvals.approvals_since(s, organization, since), [])

    def member_collections(self, organization: str) -> dict[str, dict[str, str]]:
        return self._read(lambda s: org_queries.member_collections(s, organization), {})

    def summaries(self, stale_before: dict[str, datetime | None]) -> dict[str, OrganizationSummary]:
        """Per organization: members by status, invitations sent at or before its cutoff."""
        empty = {name: org_queries.empty_summary() for name in stale_before}
        return self._read(lambda s: org_queries.summaries(s, stale_before), empty)
