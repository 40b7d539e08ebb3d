"""An LDAP session for one organization: open, secure and bind a connection; run complete
paged searches. The boundary of the LDAP transport: what ``client`` (and ``ssl``, ``socket``)
raises is translated here into the ``dirsync.errors`` tree, raised ``from`` the original, with
one-line messages that name the organization and ``host:port`` and never the password. Every
page's result code is checked, so a search either returns everything the server holds or
raises ``SourceReadIncomplete``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from dirsync.connectors.ldap import client
from dirsync.connectors.ldap.client import Answer, Connection, TransportError
from dirsync.connectors.ldap.filters import FilterError
from dirsync.connectors.ldap.messages import Control, Deref, Scope
from dirsync.connectors.ldap.result_codes import (
    E_SYNC_REFRESH_REQUIRED,
    INVALID_CREDENTIALS,
    NO_SUCH_OBJECT,
    SIZE_LIMIT_EXCEEDED,
    SUCCESS,
    UNAVAILABLE_CRITICAL_EXTENSION,
)
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.connectors.ldap.tls import client_context, describe_failure
from dirsync.connectors.ldap.wire import Attributes, decode_paged_cookie, encode_paged_control
from dirsync.errors import (
    ConfigError,
    CursorExpired,
    SourceAuthFailed,
    SourceError,
    SourceReadIncomplete,
    SourceTLSError,
    SourceUnreachable,
)

__all__ = ["SUCCESS", "Endpoint", "LdapSession", "RawEntry"]

PAGED_RESULTS_OID: Final = "1.2.840.113556.1.4.319"
#: what an administrator can do about a search the server cut short
_LIMIT_HINTS: Final = {
    3: "the server's time limit; raise olcTimeLimit (or olcLimits) for the bind account",
    4: "the server's size limit; raise olcSizeLimit or set olcLimits "
    "(e.g. size.prtotal=unlimited) for the bind account",
    11: "an administrative limit; raise the server's limits for the bind account",
}

#: a search result entry: {"type", "dn", "raw_dn", "raw_attributes": wire.Attributes}
RawEntry = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the directory is, for the connection and for messages."""

    host: str
    port: int
    ldaps: bool

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        ldaps = parts.scheme.lower() == "ldaps"
        try:
            port = parts.port or (636 if ldaps else 389)
        except ValueError as exc:  # a port that is not a number or out of range
            raise ConfigError(f"{url!r} has an invalid port") from exc
        return cls(host=parts.hostname or "", port=port, ldaps=ldaps)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


class LdapSession:
    """One bound connection for one organization; use as a context manager."""

    #: whether ranged values (``member;range=0-1499``, Active Directory's way of cutting long
    #: lists) are refused as an incomplete read; a subclass that completes them (Active
    #: Directory's) turns this off
    REFUSE_RANGES: bool = True

    def __init__(self, settings: LdapSourceSettings, *, organization: str) -> None:
        self.settings = settings
        self.organization = organization
        self.endpoint = Endpoint.from_url(settings.url)
        self.conn: Connection | None = None
        #: ``time.monotonic()`` when the read must be over (set when the session opens)
        self.deadline: float | None = None

    def __enter__(self) -> LdapSession:
        if self.conn is None:
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _where(self) -> str:
        return f"organization {self.organization}: the directory at {self.endpoint}"

    def open(self) -> None:
        """Connect, secure (LDAPS or StartTLS) and bind; raises a ``SourceError`` kind."""
        settings = self.settings
        endpoint = self.endpoint
        context = (
            client_context(verify=settings.tls_verify, ca_file=settings.ca_file)
            if settings.uses_tls
            else None
        )
        self.deadline = time.monotonic() + settings.read_deadline.total_seconds()
        try:
            conn = Connection.open(
                endpoint.host,
                endpoint.port,
                timeout=settings.timeout.total_seconds(),
                tls=context if endpoint.ldaps else None,
                deadline=self.deadline,
            )
        except TransportError as exc:
            raise self._translate_connect(exc) from exc
        self.conn = conn
        try:
            try:
                if settings.start_tls and context is not None:
                    conn.start_tls(context, endpoint.host)
                password = settings.password
                secret = password.reveal() if settings.bind_dn and password is not None else ""
                result = conn.bind(settings.bind_dn or "", secret.encode("utf-8"))
            except TransportError as exc:
                raise self._translate_connect(exc) from exc
            if result.get("result") != SUCCESS:
                raise self._bind_refused(result)
        except SourceError:
            self.close()
            raise

    def renew(self, settings: LdapSourceSettings, organization: str) -> None:
        """Take this open session over for another read (``pool.py``): its settings (the
        same server, account and connection settings; other paths, filters, page size), its
        organization, a new ``read_deadline`` from now, and its counts from zero."""
        conn = self._require()
        self.settings = settings
        self.organization = organization
        self.deadline = time.monotonic() + self.settings.read_deadline.total_seconds()
        conn.deadline = self.deadline
        conn.received = 0

    def _translate_connect(self, exc: TransportError) -> SourceError:
        where = self._where()
        if isinstance(exc, client.TlsFailed):
            return SourceTLSError(f"{where}: {describe_failure(exc.error, self.endpoint.host)}")
        if isinstance(exc, client.StartTlsRefused):
            return SourceTLSError(f"{where}: StartTLS was refused: {exc}")
        if isinstance(exc, client.ConnectFailed):
            return SourceUnreachable(f"{where} cannot be reached: {exc}")
        if isinstance(exc, client.DeadlineExceeded):
            return SourceReadIncomplete(f"{where}: {self._past_deadline()}")
        if isinstance(exc, client.NoAnswer):
            return SourceUnreachable(f"{where} sent no answer within {self._timeout()} (timeout)")
        return SourceUnreachable(f"{where} dropped the connection: {exc}")

    def _bind_refused(self, result: dict[str, Any]) -> SourceError:
        who = self.settings.bind_dn or "anonymous"
        code = result.get("result")
        if code == INVALID_CREDENTIALS:
            return SourceAuthFailed(
                f"{self._where()}: the directory refused the bind as {who}: invalid credentials"
            )
        reason = result.get("description") or "unknown reason"
        message = (result.get("message") or "").strip()
        detail = f"{reason} ({code})" + (f": {message}" if message else "")
        return SourceAuthFailed(
            f"{self._where()}: the directory refused the bind as {who}: {detail}"
        )

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def root_dse(self, attributes: Sequence[str]) -> dict[str, list[bytes]]:
        """The rootDSE's raw attributes, names in any case (empty if the server hides it)."""
        conn = self._require()
        try:
            answer = conn.search("", "(objectClass=*)", attributes, scope=Scope.BASE)
        except TransportError as exc:
            raise self._translate_connect(exc) from exc
        for item in answer.responses:
            if item.get("type") == "searchResEntry":
                found: dict[str, list[bytes]] = item["raw_attributes"]
                return found
        return Attributes()

    def search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        what: str,
        base_scope: bool = False,
        controls: Sequence[Control] = (),
    ) -> tuple[list[RawEntry], dict[str, Any]]:
        """One search with request controls: (its entries, its result with the controls).

        The result code is left to the caller (a control may make an error meaningful); a
        lost connection or a timeout raises ``SourceReadIncomplete``.
        """
        conn = self._require()
        with self._search_errors(what, search_filter, "search broke off"):
            answer = conn.search(
                base,
                search_filter,
                attributes,
                controls=controls,
                scope=Scope.BASE if base_scope else Scope.SUBTREE,
            )
        entries = [i for i in answer.responses if i.get("type") == "searchResEntry"]
        return entries, answer.result

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
        """Every entry below ``base`` matching the filter, page by page (RFC 2696).

        Raises ``SourceReadIncomplete`` unless the server confirms each page with success.
        ``what`` names the search in messages ("users", "groups"); ``on_page`` gets the
        number of entries yielded so far after each page. The next page is asked for before
        this page's entries are yielded: the server reads it while the caller converts.
        """
        conn = self._require()
        count = 0
        size = self.settings.page_size

        def ask(cookie: bytes | None) -> int:
            paged = (PAGED_RESULTS_OID, False, encode_paged_control(size, cookie))
            return conn.send_search(base, search_filter, attributes, controls=[paged, *controls])

        broke_off = "search broke off"
        with self._search_errors(what, search_filter, broke_off):
            ahead: int | None = ask(None)
        try:
            while ahead is not None:
                with self._search_errors(what, search_filter, f"{broke_off} after {count} entries"):
                    answer = conn.receive(ahead)
                    ahead = None
                    cookie = decode_paged_cookie(answer.controls.get(PAGED_RESULTS_OID))
                    if self.REFUSE_RANGES and any(";range=" in n for n in answer.attribute_names):
                        raise client.ConnectionBroken(
                            "the server sent ranged values, which this source type does not read"
                        )
                    if cookie and answer.result.get("result") == SUCCESS:
                        ahead = ask(cookie)
                self.check_result(answer.result, what=what, base=base, count=count)
                for item in answer.responses:
                    kind = item.get("type")
                    if kind == "searchResEntry":
                        count += 1
                        yield item
                    elif kind == "searchResRef" and not allow_continuation_references:
                        raise SourceReadIncomplete(
                            f"{self._where()}: the {what} search returned a referral to "
                            f"{', '.join(item.get('uri') or ['another server'])}; "
                            "referrals are not followed, so the read would be incomplete"
                        )
                if on_page is not None:
                    on_page(count)
        finally:
            if ahead is not None and self.conn is conn:  # left early: the next page is unread
                with contextlib.suppress(TransportError):
                    conn.abandon(ahead)

    def check_result(self, result: dict[str, Any], *, what: str, base: str, count: int) -> None:
        """Raise unless a search's final result is success."""
        code = result.get("result")
        if code == NO_SUCH_OBJECT and count == 0:
            raise SourceError(
                f"{self._where()}: the {what} search base {base!r} does not exist "
                "(or the bind may not read it)"
            )
        if code != SUCCESS:
            reason = f"{result.get('description') or 'error'} ({code})"
            message = (result.get("message") or "").strip()
            referrals = result.get("referrals")
            if referrals:
                message = (message + " " if message else "") + "referral to " + ", ".join(referrals)
            hint = _LIMIT_HINTS.get(code) if isinstance(code, int) else None
            raise SourceReadIncomplete(
                f"{self._where()}: the {what} search stopped after {count} entries: "
                f"{reason}"
                + (f": {message}" if message else "")
                + (f" ({hint}); nothing was changed" if hint else "; nothing was changed")
            )

    def sync_search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        control: Control,
        *,
        what: str,
    ) -> tuple[list[RawEntry], dict[str, Any]]:
        """One unpaged search with a Sync Request control (RFC 4533): every response, with
        its controls, and the final result. e-syncRefreshRequired, a size limit (too many
        changes for one unpaged answer) or a refused control raise ``CursorExpired``: read
        again in full."""
        conn = self._require()
        with self._search_errors(what, search_filter, "change search broke off"):
            # syncprov refuses any deref but "never" with a Sync Request control
            answer: Answer = conn.search(
                base, search_filter, attributes, controls=[control], deref=Deref.NEVER
            )
        code = answer.result.get("result")
        if code in (E_SYNC_REFRESH_REQUIRED, SIZE_LIMIT_EXCEEDED, UNAVAILABLE_CRITICAL_EXTENSION):
            raise CursorExpired(
                f"{self._where()}: the {what} change search needs a full read "
                f"({answer.result.get('description')}, {code})"
            )
        self.check_result(answer.result, what=what, base=base, count=len(answer.responses))
        return answer.responses, answer.result

    @contextlib.contextmanager
    def _search_errors(self, what: str, search_filter: str, broke_off: str) -> Iterator[None]:
        """A bad filter is a config error; a broken connection makes the read incomplete."""
        try:
            yield
        except FilterError as exc:
            raise ConfigError(
                f"organization[{self.organization}].source: the {what} filter "
                f"{search_filter!r} is not a valid LDAP filter: {exc}"
            ) from exc
        except client.DeadlineExceeded as exc:
            raise SourceReadIncomplete(
                f"{self._where()}: the {what} {broke_off}: {self._past_deadline()}"
            ) from exc
        except client.NoAnswer as exc:
            raise SourceReadIncomplete(
                f"{self._where()}: the {what} {broke_off}: no answer within "
                f"{self._timeout()} (timeout)"
            ) from exc
        except TransportError as exc:
            raise SourceReadIncomplete(f"{self._where()}: the {what} {broke_off}: {exc}") from exc

    def _past_deadline(self) -> str:
        """Why a read that ran out of time stopped, and how far it got."""
        received = self.conn.received if self.conn is not None else 0
        return (
            f"the read passed its read_deadline of "
            f"{self.settings.read_deadline.total_seconds():g}s "
            f"({received:,} messages received); nothing was changed"
        )

    def _timeout(self) -> str:
        return f"{self.settings.timeout.total_seconds():g}s"

    def _require(self) -> Connection:
        if self.conn is None:
            raise RuntimeError("the LDAP session is not open")
        return self.conn
