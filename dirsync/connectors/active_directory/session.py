"""An LDAP session that speaks Active Directory: bind diagnostics, checked ranged values,
control searches (DirSync, show-deleted), the rootDSE facts incremental reads rely on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dirsync.connectors.active_directory.controls import (
    BerError,
    Control,
    paged_results_control,
    paged_results_cookie,
)
from dirsync.connectors.active_directory.ranges import RangeError, complete_ranges, ranged_keys
from dirsync.connectors.active_directory.settings import ActiveDirectorySourceSettings
from dirsync.connectors.active_directory.values import bind_failure_reason, guid_to_str, parse_int
from dirsync.connectors.ldap.session import SUCCESS, LdapSession, RawEntry
from dirsync.connectors.ldap.wire import Attributes
from dirsync.errors import SourceAuthFailed, SourceError, SourceReadIncomplete


class AdSession(LdapSession):
    """One bound connection to one domain controller."""

    REFUSE_RANGES = False  # ranges are read by complete_ranges, which raises instead of truncating

    settings: ActiveDirectorySourceSettings

    def __init__(self, settings: ActiveDirectorySourceSettings, *, organization: str) -> None:
        super().__init__(settings, organization=organization)
        self.url = settings.url

    def _bind_refused(self, result: dict[str, Any]) -> SourceError:
        who = self.settings.bind_dn or "anonymous"
        reason = bind_failure_reason(result.get("result"), result.get("message"))
        return SourceAuthFailed(
            f"{self._where()}: the domain controller refused the bind as {who}: {reason}"
        )

    def paged_search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        what: str,
        on_page: Callable[[int], None] | None = None,
        allow_continuation_references: bool = False,
        controls: Sequence[Control] = (),
    ) -> Iterator[RawEntry]:
        # a search from a domain's root returns continuation references to the other
        # naming contexts (Configuration, DNS zones, child domains): not part of this domain
        if controls:
            yield from self.paged_control_search(
                base, search_filter, attributes, what=what, controls=controls
            )
            return
        # completing ranged values asks the DC again, which must wait until this search is
        # over: the next page has already been asked for on the same connection
        ranged: list[RawEntry] = []
        for entry in super().paged_search(
            base,
            search_filter,
            attributes,
            what=what,
            on_page=on_page,
            allow_continuation_references=True,
        ):
            if ranged_keys(entry["raw_attributes"]):
                ranged.append(entry)
            else:
                yield self._with_email_fallback(entry)
        for entry in ranged:
            yield self.normalize(entry, what)

    def paged_control_search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        what: str,
        controls: Sequence[Control],
    ) -> Iterator[RawEntry]:
        """A paged search with more request controls (show-deleted); every page checked."""
        cookie = b""
        while True:
            paged = paged_results_control(size=self.settings.page_size, cookie=cookie)
            entries, result = self.checked_search(
                base, search_filter, attributes, what=what, controls=[paged, *controls]
            )
            for entry in entries:
                yield self.normalize(entry, what)
            try:
                cookie = paged_results_cookie(result.get("controls"))
            except BerError as exc:
                raise SourceReadIncomplete(
                    f"{self._where()}: the {what} search returned an unreadable page cookie"
                ) from exc
            if not cookie:
                return

    def normalize(self, entry: RawEntry, what: str) -> RawEntry:
        """Ranged values read completely; the email falls back to ``email_fallback_attribute``."""
        raw = entry["raw_attributes"]
        if ranged_keys(raw):
            try:
                completed = complete_ranges(str(entry.get("dn", "")), raw, self._fetch_range)
            except RangeError as exc:
                raise SourceReadIncomplete(
                    f"{self._where()}: the {what} search could not read all values: {exc}; "
                    "nothing was changed"
                ) from exc
            # names are lower-cased and looked up in any case: keep it so
            entry["raw_attributes"] = Attributes(completed)
        return self._with_email_fallback(entry)

    def _with_email_fallback(self, entry: RawEntry) -> RawEntry:
        """The email falls back to ``email_fallback_attribute`` where it is empty."""
        raw = entry["raw_attributes"]
        s = self.settings
        fallback = s.email_fallback_attribute
        if fallback and not raw.get(s.email_attribute) and raw.get(fallback):
            raw[s.email_attribute] = raw[fallback]
        return entry

    def _fetch_range(self, dn: str, attribute: str) -> dict[str, Sequence[Any]]:
        entries, result = self.search(
            dn, "(objectClass=*)", [attribute], what="ranged member", base_scope=True
        )
        if result.get("result") != SUCCESS or not entries:
            raise RangeError(
                f"{dn}: reading {attribute} failed: {result.get('description') or 'no entry'}"
            )
        return dict(entries[0]["raw_attributes"])

    def checked_search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        what: str,
        base_scope: bool = False,
        controls: Sequence[Control] = (),
    ) -> tuple[list[RawEntry], dict[str, Any]]:
        """``search`` whose result must be success, else ``SourceReadIncomplete``."""
        entries, result = self.search(
            base, search_filter, attributes, what=what, base_scope=base_scope, controls=controls
        )
        code = result.get("result")
        if code != SUCCESS:
            message = (result.get("message") or "").strip()
            raise SourceReadIncomplete(
                f"{self._where()}: the {what} search failed: "
                f"{result.get('description') or 'error'} ({code})"
                + (f": {message}" if message else "")
                + "; nothing was changed"
            )
        return entries, result

    def dc_state(self) -> tuple[str, int]:
        """This DC's ``invocationId`` (as a GUID string) and ``highestCommittedUSN``."""
        dse = self.root_dse(["dsServiceName", "highestCommittedUSN"])
        service = _first(dse.get("dsServiceName"))
        usn = parse_int(_first(dse.get("highestCommittedUSN")))
        if service is None or usn is None:
            raise SourceError(
                f"{self._where()}: the rootDSE has no dsServiceName/highestCommittedUSN; "
                "is this an Active Directory domain controller?"
            )
        entries, _ = self.checked_search(
            service.decode("utf-8", errors="replace"),
            "(objectClass=*)",
            ["invocationId"],
            what="invocationId",
            base_scope=True,
        )
        raw = (entries[0]["raw_attributes"].get("invocationId") or [b""])[0] if entries else b""
        if len(raw) != 16:
            raise SourceError(f"{self._where()}: the DC's invocationId cannot be read")
        return guid_to_str(raw), usn


def _first(values: Any) -> bytes | None:
    if not values:
        return None
    value = values[0]
    return value if isinstance(value, bytes) else str(value).encode()
