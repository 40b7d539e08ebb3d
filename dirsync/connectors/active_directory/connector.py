"""Active Directory connector: the LDAP connector with AD's ids, flags, binds, ranges, DCs and
incremental reads.

- external ids are ``objectGUID`` as canonical GUID strings; users are
  ``(&(objectClass=user)(objectCategory=person))`` plus ``user_filter``;
- a user is disabled by ``userAccountControl`` 0x2, or (``expired_is_disabled``) by an
  ``accountExpires`` in the past; the email falls back to ``userPrincipalName``;
- ``url`` may list several domain controllers: the first one that can be reached is used,
  and a failover is a warning of the run;
- a full read also marks where the next incremental read starts (``incremental.py``):
  a DirSync cookie when the account may replicate changes, else the DC's USN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog

from dirsync.connectors.active_directory import incremental as ad_incremental
from dirsync.connectors.active_directory.controls import IN_CHAIN_RULE
from dirsync.connectors.active_directory.cursor import parse_cursor
from dirsync.connectors.active_directory.session import AdSession
from dirsync.connectors.active_directory.settings import ActiveDirectorySourceSettings
from dirsync.connectors.active_directory.values import (
    account_disabled,
    account_expired,
    guid_to_str,
    parse_int,
)
from dirsync.connectors.base import HeldRefs, ProgressCallback
from dirsync.connectors.ldap import filter_watch
from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.dn import escape_filter_value, normalize_dn
from dirsync.connectors.ldap.reader import LdapReader, join_dn
from dirsync.connectors.ldap.session import RawEntry
from dirsync.errors import SourceUnreachable
from dirsync.model import Cursor, DirectoryGroup, DirectorySnapshot, Reading

log = structlog.get_logger("dirsync.connectors.active_directory")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ActiveDirectoryConnector(LdapConnector):
    """Reads users and groups from Active Directory (Windows Server or Samba 4 DCs)."""

    settings_class: ClassVar[type[ActiveDirectorySourceSettings]] = ActiveDirectorySourceSettings
    settings: ActiveDirectorySourceSettings
    #: AD's delta reads are DirSync or uSNChanged (``incremental.py``), never LDAP's
    generic_incremental: ClassVar[bool] = False
    #: objectGUID ids and userAccountControl flags: not the one-pass conversion's
    generic_entries: ClassVar[bool] = False

    def __init__(
        self,
        settings: ActiveDirectorySourceSettings,
        *,
        organization: str,
        clock: Clock = _utcnow,
    ) -> None:
        # computers are objectClass=user too: people only, then the administrator's filter
        effective = settings.model_copy(
            update={"user_filter": "(objectCategory=person)" + settings.user_filter}
        )
        super().__init__(effective, organization=organization)
        self.clock = clock
        #: warnings of the current read that are not about entries (a failover)
        self.notes: list[str] = []

    # -- the Connector protocol -------------------------------------------------------------

    def read(
        self,
        cursor: Cursor | None,
        *,
        progress: ProgressCallback | None = None,
        held: HeldRefs | None = None,
    ) -> Reading:
        """A full read (``cursor`` None, or incremental reads off), else a delta since it
        (``held`` unused: the delta finds the groups of its entries by their back-links)."""
        self.notes = []
        if cursor is None or self.settings.incremental == "off":
            return self._full_read(progress)
        return ad_incremental.delta_read(self, parse_cursor(cursor), progress, raw=cursor)

    def watched_groups(self, session: AdSession, cursor: Cursor | None) -> str | None:
        """The digest of the groups a filter names through ``memberOf`` (``filter_watch``),
        taken now, or None when no filter does. With ``cursor`` (a delta is about to be
        read), raises ``CursorExpired`` when they changed since it was taken: AD changes a
        user's memberOf without changing the user, so the delta would not see it."""
        watch = filter_watch.watch_of(self.settings)
        if not watch.needed:
            return None
        reader = self.reader(session, None)
        watched = None if watch.blind is not None else filter_watch.digest(reader, watch)
        self.notes.extend(reader.warnings)
        if cursor is not None:
            filter_watch.check(watch, watched, cursor)
        return watched

    # -- extension points of LdapConnector ------------------------------------------------------

    def decode_external_id(self, value: bytes | str) -> str | None:
        if isinstance(value, bytes) and len(value) == 16:
            return guid_to_str(value)
        if self.settings.external_id_attribute.lower() != "objectguid":
            return super().decode_external_id(value)
        return None

    def user_disabled(self, entry: RawEntry) -> bool:
        raw = entry["raw_attributes"]
        uac = parse_int(_first(raw.get("userAccountControl")))
        if account_disabled(uac):
            return True
        if self.settings.expired_is_disabled:
            return account_expired(parse_int(_first(raw.get("accountExpires"))), self.clock())
        return False

    def user_attributes(self) -> list[str]:
        extra = ["userAccountControl", "accountExpires"]
        if self.settings.email_fallback_attribute:
            extra.append(self.settings.email_fallback_attribute)
        return [*super().user_attributes(), *extra]

    # -- connecting -------------------------------------------------------------------------

    def _open(self) -> AdSession:
        return self.connect(self.settings.urls)

    def connect(self, urls: Sequence[str]) -> AdSession:
        """A bound session to the first DC of ``urls`` that can be reached."""
        self.close()
        problems: list[str] = []
        for url in urls:
            session = AdSession(self.settings.for_url(url), organization=self.organization)
            try:
                session.open()
            except SourceUnreachable as exc:
                problems.append(str(exc))
                log.warning("ad.dc_unreachable", organization=self.organization, url=url)
                continue
            if problems:
                log.warning("ad.failover", organization=self.organization, url=url)
                self.notes.append(f"failed over to {url}: " + "; ".join(problems))
            self._session = session
            return session
        if len(problems) == 1:
            raise SourceUnreachable(problems[0])
        raise SourceUnreachable(
            f"organization {self.organization}: no domain controller could be reached: "
            + "; ".join(problems)
        )

    # -- reading ----------------------------------------------------------------------------

    def _full_read(self, progress: ProgressCallback | None) -> Reading:
        session = self._open()
        with session:
            mark = ad_incremental.mark(self, session)  # before the read: nothing slips through
            watched = self.watched_groups(session, None)
            reader = self.reader(session, progress)
            users = self.read_users(reader)
            groups = self.read_groups(reader)
            if self.settings.nested_groups_in_chain:
                groups = self.with_chain_members(session, reader, groups)
        return Reading(
            snapshot=DirectorySnapshot(users=tuple(users), groups=tuple(groups)),
            cursor=filter_watch.stamped(mark.to_cursor() if mark is not None else None, watched),
            entries_read=reader.done,
            warnings=(*self.notes, *reader.warnings),
        )

    def scoped(self, *, users: str = "", groups: str = "") -> ActiveDirectoryConnector:
        """This connector with extra filters ANDed into the user and group searches."""
        view: ActiveDirectoryConnector = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.settings = self.settings.model_copy(
            update={
                "user_filter": self.settings.user_filter + users,
                "group_filter": self.settings.group_filter + groups,
            }
        )
        return view

    def with_chain_members(
        self, session: AdSession, reader: LdapReader, groups: list[DirectoryGroup]
    ) -> list[DirectoryGroup]:
        """Add each group's transitive user members as the DC resolves them (IN_CHAIN).

        The mapping flattens nesting itself, so this only adds what the DC knows beyond the
        direct members; an empty answer is never taken as "no members".
        """
        s = self.settings
        base = join_dn(s.user_path, s.base_dn)
        result = []
        for group in groups:
            dn = group.ref
            entries = list(
                session.paged_search(
                    base,
                    f"(&(objectClass={escape_filter_value(s.user_object_class)}){s.user_filter}"
                    f"(memberOf:{IN_CHAIN_RULE}:={escape_filter_value(dn)}))",
                    ["objectGUID"],
                    what="nested members",
                )
            )
            refs = {normalize_dn(reader.dn(e)) for e in entries}
            if not refs:
                result.append(group)  # empty is "unknown", not "nobody": keep the direct ones
                continue
            result.append(
                DirectoryGroup(
                    external_id=group.external_id,
                    ref=group.ref,
                    name=group.name,
                    member_refs=group.member_refs | refs,
                )
            )
        return result


def _first(values: Any) -> bytes | str | None:
    return values[0] if values else None
