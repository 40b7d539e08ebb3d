"""Azure AD (Entra ID) connector: users and groups of one tenant through Microsoft Graph.

A full read takes ``/users``, ``/groups`` and each group's ``/members`` (nested groups are refs,
flattened later by the mapping). Before it, the connector asks both delta endpoints for a token
of "now" (``$deltatoken=latest``), so a change made during the read is replayed by the next delta
round rather than lost. The two deltaLinks together are the organization's cursor; a later read
follows them (``delta.py`` merges the pages) and returns a ``DirectoryDelta``. An expired
token (410, ``syncStateNotFound``) raises ``CursorExpired`` and the sync reads in full once.

With ``user_filter`` or ``group_filter`` every read is a full read: a filter on group names
needs the whole group graph, which a delta round does not have.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from random import Random
from typing import Any, ClassVar
from urllib.parse import quote

import structlog

from dirsync.connectors.azure_ad.client import GraphClient, ObjectGone, Sleeper
from dirsync.connectors.azure_ad.cursor import GraphCursor
from dirsync.connectors.azure_ad.delta import (
    GROUP_SELECT,
    USER_SELECT,
    DeltaMerger,
    UserRules,
    is_guest,
    member_ref,
    user_of,
)
from dirsync.connectors.azure_ad.filters import apply_filters
from dirsync.connectors.azure_ad.settings import AzureAdSourceSettings
from dirsync.connectors.azure_ad.transport import GraphTransport, token_settings
from dirsync.connectors.base import HeldRefs, ProgressCallback
from dirsync.errors import SourceReadIncomplete
from dirsync.model import (
    Cursor,
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    Reading,
    SourceInfo,
)

log = structlog.get_logger("dirsync.connectors.azure_ad")
#: concurrent /members listings in a full read (Graph allows far more per app and tenant)
MEMBER_WORKERS = 4


class AzureAdConnector:
    #: what the config validates this connector's sources with (the dirsync.sources entry point)
    settings_class: ClassVar[type[AzureAdSourceSettings]] = AzureAdSourceSettings

    def __init__(
        self,
        settings: AzureAdSourceSettings,
        *,
        organization: str,
        sleep: Sleeper = time.sleep,
        rng: Random | None = None,
    ) -> None:
        self.settings = settings
        self.organization = organization
        self._sleep = sleep
        self._rng = rng
        self._transport: GraphTransport | None = None
        self.rules = UserRules(
            email_attribute=settings.email_attribute,
            email_fallback=settings.email_fallback,
            include_guests=settings.include_guests,
        )
        self._token_settings = token_settings(settings, organization=organization)

    @property
    def filtered(self) -> bool:
        return bool(self.settings.user_filter or self.settings.group_filter)

    # -- the Connector protocol -------------------------------------------------------------

    def read(
        self,
        cursor: Cursor | None,
        *,
        progress: ProgressCallback | None = None,
        held: HeldRefs | None = None,
    ) -> Reading:
        graph = self._client()
        graph.start_read()  # the deadline runs; requests are counted per read (graph.*_read)
        if cursor is not None and not self.filtered:
            return self._delta(graph, cursor, progress)
        return self._full(graph, progress)

    def probe(self) -> SourceInfo:
        graph = self._client()
        graph.start_read()
        graph.get(graph.url("/users?$select=id&$top=1"))
        return SourceInfo(
            url=self.settings.graph_url,
            vendor="Microsoft Graph",
            details=(("tenant", self.settings.tenant), ("authority", self.settings.authority)),
        )

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def _client(self) -> GraphClient:
        """One msal session and one httpx client per connector, reused across reads."""
        if self._transport is None:
            self._transport = GraphTransport(
                self.settings,
                self._token_settings,
                organization=self.organization,
                sleep=self._sleep,
                rng=self._rng,
            )
        return self._transport.graph

    @property
    def token_requests(self) -> int:
        """Tokens the token endpoint issued to this connector (msal's cache served the rest)."""
        return self._transport.tokens.issued if self._transport is not None else 0

    # -- full read --------------------------------------------------------------------------

    def _full(self, graph: GraphClient, progress: ProgressCallback | None) -> Reading:
        # the delta tokens first: a change made while reading is replayed by the next round
        links = None if self.filtered else self._latest_links(graph)
        count = _Counter(progress)
        users, guests = self._users(graph, count)
        groups = self._groups(graph, guests, count)
        warnings: list[str] = []
        if self.filtered:
            users, groups, warnings = apply_filters(
                users,
                groups,
                user_filter=self.settings.user_filter,
                group_filter=self.settings.group_filter,
            )
        log.info(
            "graph.full_read",
            organization=self.organization,
            users=len(users),
            groups=len(groups),
            requests=graph.requests,
        )
        cursor = None
        if links is not None:
            cursor = GraphCursor(
                users=links["users"],
                groups=links["groups"],
                settings=self._reading_settings(),
                guests=guests,
            ).to_cursor()
        return Reading(
            snapshot=DirectorySnapshot(users=tuple(users), groups=tuple(groups)),
            cursor=cursor,
            entries_read=count.value,
            warnings=tuple(warnings),
        )

    def _latest_links(self, graph: GraphClient) -> dict[str, str]:
        links = {}
        for what, select in (("users", ",".join(USER_SELECT)), ("groups", "displayName,members")):
            page = graph.get(graph.url(f"/{what}/delta?$select={select}&$deltatoken=latest"))
            link = page.get("@odata.deltaLink")
            if not isinstance(link, str):
                raise SourceReadIncomplete(
                    f"organization {self.organization}: Graph gave no deltaLink for /{what}/delta"
                )
            links[what] = link
        return links

    def _users(
        self, graph: GraphClient, count: _Counter
    ) -> tuple[list[DirectoryUser], frozenset[str]]:
        url = graph.url(f"/users?$select={','.join(USER_SELECT)}&$top={self.settings.page_size}")
        users: list[DirectoryUser] = []
        guests: set[str] = set()
        for page in graph.pages(url):
            for item in page["value"]:
                if is_guest(item) and not self.settings.include_guests:
                    guests.add(str(item["id"]))
                else:
                    users.append(user_of(item, self.rules))
            count.add(len(page["value"]))
        return users, frozenset(guests)

    def _groups(
        self, graph: GraphClient, guests: frozenset[str], count: _Counter
    ) -> list[DirectoryGroup]:
        size = self.settings.page_size
        url = graph.url(f"/groups?$select={','.join(GROUP_SELECT)}&$top={size}")
        found: list[Mapping[str, Any]] = []
        for page in graph.pages(url):
            found.extend(page["value"])
            count.add(len(page["value"]))

        def members(item: Mapping[str, Any]) -> frozenset[str]:
            url = graph.url(f"/groups/{quote(str(item['id']))}/members?$select=id&$top={size}")
            return frozenset(_refs(m for page in graph.pages(url) for m in page["value"]))

        # one /members listing per group: a few at a time, as Graph's latency dominates
        with ThreadPoolExecutor(MEMBER_WORKERS, thread_name_prefix="graph-members") as pool:
            member_sets = list(pool.map(members, found))
        groups = [
            DirectoryGroup(
                external_id=str(item["id"]),
                ref=str(item["id"]),
                name=str(item.get("displayName") or item["id"]),
                member_refs=refs - guests,
            )
            for item, refs in zip(found, member_sets, strict=True)
        ]
        return groups

    # -- delta ------------------------------------------------------------------------------

    def _delta(
        self, graph: GraphClient, cursor: Cursor, progress: ProgressCallback | None
    ) -> Reading:
        stored = GraphCursor.parse(
            cursor,
            graph_url=graph.graph_url,
            settings=self._reading_settings(),
            organization=self.organization,
        )
        merger = DeltaMerger(self.rules, known_guests=stored.guests)
        count = _Counter(progress)
        users_link = self._follow(graph, stored.users, merger.add_user_page, count)
        self._complete_partial_users(graph, merger)
        groups_link = self._follow(graph, stored.groups, merger.add_group_page, count)
        delta = merger.delta()
        new = GraphCursor(
            users=users_link,
            groups=groups_link,
            settings=stored.settings,
            guests=merger.guests,
        )
        log.info(
            "graph.delta_read",
            organization=self.organization,
            users=len(delta.users),
            deleted_users=len(delta.deleted_user_ids),
            groups=len(delta.group_changes),
            deleted_groups=len(delta.deleted_group_ids),
            requests=graph.requests,
        )
        return Reading(delta=delta, cursor=new.to_cursor(), entries_read=count.value)

    def _complete_partial_users(self, graph: GraphClient, merger: DeltaMerger) -> None:
        """Users Graph sent with only their changed properties, fetched whole (rare)."""
        for object_id in sorted(merger.partial):
            url = graph.url(f"/users/{quote(object_id)}?$select={','.join(USER_SELECT)}")
            try:
                item = graph.get(url, page=False)
            except ObjectGone:
                item = {"id": object_id, "@removed": {"reason": "deleted"}}
            merger.add_user_page([item])
        if merger.partial:
            raise SourceReadIncomplete(
                f"organization {self.organization}: Graph sent incomplete users "
                f"({', '.join(sorted(merger.partial)[:3])})"
            )

    def _reading_settings(self) -> str:
        """What shapes a read: a cursor taken under other settings is not continued."""
        s = self.settings
        return "|".join(
            [s.tenant, s.graph_url, s.email_attribute, s.email_fallback, str(s.include_guests)]
        )

    def _follow(
        self,
        graph: GraphClient,
        link: str,
        add: Callable[[Iterable[Mapping[str, Any]]], None],
        count: _Counter,
    ) -> str:
        for page in graph.pages(link):
            add(page["value"])
            count.add(len(page["value"]))
            if isinstance(delta_link := page.get("@odata.deltaLink"), str):
                return delta_link
        raise SourceReadIncomplete(
            f"organization {self.organization}: a delta round ended without a deltaLink"
        )


def _refs(items: Iterable[Mapping[str, Any]]) -> set[str]:
    return {ref for item in items if (ref := member_ref(item)) is not None}


class _Counter:
    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.value = 0

    def add(self, n: int) -> None:
        self.value += n
        if self.progress is not None and n:
            self.progress(self.value)
