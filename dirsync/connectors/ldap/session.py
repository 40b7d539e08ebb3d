"""The ldap3 seam: open, secure and bind a connection; run complete paged searches.

Everything ldap3 (and ssl) raises is translated here into the ``dirsync.errors`` tree, raised
``from`` the original, with one-line messages that name the organization and ``host:port`` and
never the password. Entries are the raw ``conn.response`` dicts (ldap3's ``Entry`` objects are
2-3x slower); every page's result code is checked, so a search either returns everything the
server holds or raises ``SourceReadIncomplete``.
"""

from __future__ import annotations

import contextlib
import math
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_errors

from dirsync.connectors.ldap import exchange
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.connectors.ldap.wire import decode_paged_cookie, encode_paged_control
from dirsync.errors import (
    ConfigError,
    CursorExpired,
    SourceAuthFailed,
    SourceError,
    SourceReadIncomplete,
    SourceTLSError,
    SourceUnreachable,
)

PAGED_RESULTS_OID: Final = "1.2.840.113556.1.4.319"
SUCCESS: Final = 0
SIZE_LIMIT_EXCEEDED: Final = 4
#: the server (or this database) does not do syncrepl after all
UNAVAILABLE_CRITICAL_EXTENSION: Final = 12
#: RFC 4533: the server cannot serve this cookie incrementally
E_SYNC_REFRESH_REQUIRED: Final = 4096
NO_SUCH_OBJECT: Final = 32
INVALID_CREDENTIALS: Final = 49
#: what an administrator can do about a search the server cut short
_LIMIT_HINTS: Final = {
    3: "the server's time limit; raise olcTimeLimit (or olcLimits) for the bind account",
    4: "the server's size limit; raise olcSizeLimit or set olcLimits "
    "(e.g. size.prtotal=unlimited) for the bind account",
    11: "an administrative limit; raise the server's limits for the bind account",
}

#: a raw ldap3 search result entry: {"dn", "raw_dn", "raw_attributes", "attributes", "type"}
RawEntry = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the directory is, for ldap3 and for messages."""

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


def _tls(settings: LdapSourceSettings) -> ldap3.Tls:
    if not settings.tls_verify:
        return ldap3.Tls(validate=ssl.CERT_NONE)
    # no ca_file: create_default_context() loads the system CA store
    ca_file = str(settings.ca_file) if settings.ca_file else None
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_tls_failure(exc: BaseException) -> bool:
    for item in _chain(exc):
        if isinstance(item, ssl.SSLError | ldap_errors.LDAPCertificateError):
            return True
        text = str(item)
        if "CERTIFICATE_VERIFY_FAILED" in text or "ssl wrapping error" in text or "SSL:" in text:
            return True
    return False


_SSL_REASON: Final = re.compile(r"\[SSL: ([A-Z_]+)\] ([^(\"']*?)\s*(?:\(_ssl|['\"]|$)")


def _tls_reason(exc: BaseException) -> str:
    """``certificate verify failed: self-signed certificate in chain`` out of ldap3's nesting."""
    for item in _chain(exc):
        # ldap3 builds exception classes that also derive from the ssl error they wrap,
        # without its attributes: hence getattr
        verify_message = getattr(item, "verify_message", None)
        if isinstance(item, ssl.SSLCertVerificationError) and verify_message:
            return f"certificate verify failed: {verify_message}"
        match = _SSL_REASON.search(str(item))
        if match:
            return match.group(2).strip() or match.group(1)
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


class LdapSession:
    """One bound connection for one organization; use as a context manager."""

    #: ldap3 stitches ranged values (``member;range=0-1499``) itself; a subclass that reads
    #: ranges with its own checked loop (Active Directory) turns this off
    AUTO_RANGE: bool = True

    def __init__(self, settings: LdapSourceSettings, *, organization: str) -> None:
        self.settings = settings
        self.organization = organization
        self.endpoint = Endpoint.from_url(settings.url)
        self.conn: Any = None

    def __enter__(self) -> LdapSession:
        if self.conn is None:
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _where(self) -> str:
        return f"organization {self.organization}: the directory at {self.endpoint}"

    def open(self) -> None:
        settings = self.settings
        seconds = settings.timeout.total_seconds()
        # ldap3 packs receive_timeout into a struct timeval: it must be a whole number
        receive_timeout = max(1, math.ceil(seconds))
        server = ldap3.Server(
            self.endpoint.host,
            port=self.endpoint.port,
            use_ssl=self.endpoint.ldaps,
            tls=_tls(settings) if settings.uses_tls else None,
            connect_timeout=seconds,
            get_info=ldap3.NONE,
        )
        password = settings.password
        conn = ldap3.Connection(
            server,
            user=settings.bind_dn,
            password=password.reveal() if settings.bind_dn and password is not None else None,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=False,
            receive_timeout=receive_timeout,
            auto_range=self.AUTO_RANGE,  # AD cuts big member lists into ranges
            auto_referrals=False,
            read_only=True,
            check_names=False,
        )
        self.conn = conn
        try:
            try:
                conn.open()
                if settings.start_tls:
                    conn.start_tls()
                bound = conn.bind()
            except ldap_errors.LDAPException as exc:
                raise self._translate_connect(exc) from exc
            except OSError as exc:  # ssl.SSLError included
                raise self._translate_connect(exc) from exc
            except Exception as exc:  # the boundary: nothing foreign escapes, not even a bug
                detail = f"{type(exc).__name__}: {_first_line(exc)}"
                raise SourceError(f"{self._where()}: {detail}") from exc
            if not bound:
                raise self._bind_refused(conn.result or {})
        except SourceError:
            self.close()
            raise
        finally:
            conn.password = None  # ldap3's repr() would show it; it is only needed to bind

    def _translate_connect(self, exc: BaseException) -> SourceError:
        where = self._where()
        if any(isinstance(e, ldap_errors.LDAPCertificateError) for e in _chain(exc)):
            return SourceTLSError(
                f"{where}: the server certificate does not name {self.endpoint.host}"
            )
        if _is_tls_failure(exc):
            reason = _tls_reason(exc)
            if "verify failed" in reason:
                return SourceTLSError(
                    f"{where}: the server certificate does not verify ({reason}); check ca_file"
                )
            return SourceTLSError(f"{where}: the TLS handshake failed: {reason}")
        if isinstance(exc, ldap_errors.LDAPStartTLSError):
            return SourceTLSError(f"{where}: StartTLS was refused: {_first_line(exc)}")
        if isinstance(exc, ldap_errors.LDAPSocketOpenError | OSError):
            return SourceUnreachable(f"{where} cannot be reached: {_first_line(exc)}")
        if isinstance(exc, ldap_errors.LDAPCommunicationError):
            return SourceUnreachable(f"{where} dropped the connection: {_first_line(exc)}")
        return SourceError(f"{where}: {_first_line(exc)}")

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
        if conn is None:
            return
        with contextlib.suppress(ldap_errors.LDAPException, OSError):
            conn.unbind()  # an error here means the connection is already gone

    def root_dse(self, attributes: Sequence[str]) -> dict[str, list[bytes]]:
        """The rootDSE's raw attributes (empty if the server hides it)."""
        conn = self._require()
        try:
            conn.search("", "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
        except (ldap_errors.LDAPException, OSError) as exc:
            raise self._translate_connect(exc) from exc
        except Exception as exc:  # the boundary: nothing foreign escapes
            raise SourceError(f"{self._where()}: {type(exc).__name__}: {exc}") from exc
        for item in conn.response or ():
            if item.get("type") == "searchResEntry":
                return dict(item["raw_attributes"])
        return {}

    def search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        what: str,
        base_scope: bool = False,
        controls: Sequence[tuple[str, bool, bytes | None]] = (),
    ) -> tuple[list[RawEntry], dict[str, Any]]:
        """One search with request controls: (its entries, its result with the controls).

        The result code is left to the caller (a control may make an error meaningful); a
        lost connection or a timeout raises ``SourceReadIncomplete``.
        """
        conn = self._require()
        with self._search_errors(what, search_filter, "search broke off"):
            conn.search(
                base,
                search_filter,
                ldap3.BASE if base_scope else ldap3.SUBTREE,
                attributes=list(attributes),
                controls=list(controls) or None,
            )
        entries = [i for i in conn.response or () if i.get("type") == "searchResEntry"]
        return entries, dict(conn.result or {})

    def paged_search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        what: str,
        on_page: Callable[[int], None] | None = None,
        allow_continuation_references: bool = False,
        controls: Sequence[exchange.Control] = (),
    ) -> Iterator[RawEntry]:
        """Every entry below ``base`` matching the filter, page by page (RFC 2696).

        Raises ``SourceReadIncomplete`` unless the server confirms each page with success.
        ``what`` names the search in messages ("users", "groups"); ``on_page`` gets the
        number of entries yielded so far after each page.
        """
        conn = self._require()
        cookie: bytes | None = None
        count = 0
        #: the message id of the next page, asked for before this page's entries are yielded
        #: (fast reader only): the server reads it while the caller converts this one
        ahead: int | None = None

        def ask(cookie: bytes | None) -> int:
            return self._send_page(conn, base, search_filter, attributes, cookie, controls)

        while True:
            with self._search_errors(
                what, search_filter, f"search broke off after {count} entries"
            ):
                if self.fast:
                    if ahead is None:  # the first page
                        ahead = ask(cookie)
                    responses, result, cookie = self._receive_page(conn, ahead)
                    ahead = None
                    if cookie and result.get("result") == SUCCESS:
                        ahead = ask(cookie)
                else:
                    responses, result, cookie = self._page(
                        conn, base, search_filter, attributes, cookie, controls
                    )
            self.check_result(result, what=what, base=base, count=count)
            for item in responses:
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
            if not cookie:
                return

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
            hint = _LIMIT_HINTS.get(code) if isinstance(code, int) else None
            raise SourceReadIncomplete(
                f"{self._where()}: the {what} search stopped after {count} entries: "
                f"{reason}"
                + (f": {message}" if message else "")
                + (f" ({hint}); nothing was changed" if hint else "; nothing was changed")
            )

    @property
    def fast(self) -> bool:
        """Whether searches read the socket with ``wire`` rather than ldap3's decoder:
        wherever the messages are plain BER on the socket (simple or anonymous binds, with or
        without TLS). Ranged values (``member;range=0-1499``) are not stitched together by the
        fast reader: a session that leaves them to ldap3's auto_range refuses them there
        (``_receive_page``), and Active Directory's completes them with its own checked loop.
        """
        return self.conn is not None and exchange.supported(self.conn)

    def _send_page(
        self,
        conn: Any,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        cookie: bytes | None,
        controls: Sequence[exchange.Control],
    ) -> int:
        """Ask for one page (fast reader); returns its message id for ``_receive_page``."""
        paged = (PAGED_RESULTS_OID, False, encode_paged_control(self.settings.page_size, cookie))
        return exchange.send(conn, base, search_filter, attributes, controls=[paged, *controls])

    def _receive_page(
        self, conn: Any, message_id: int
    ) -> tuple[list[RawEntry], dict[str, Any], bytes | None]:
        """One page asked for by ``_send_page``: its responses, result and next cookie."""
        answer = exchange.receive(conn, message_id)
        if self.AUTO_RANGE and any(";range=" in name for name in answer.attribute_names):
            raise exchange.ExchangeError("the server sent ranged values")
        next_cookie = decode_paged_cookie(answer.controls.get(PAGED_RESULTS_OID))
        return answer.responses, answer.result, next_cookie

    def _page(
        self,
        conn: Any,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        cookie: bytes | None,
        controls: Sequence[exchange.Control],
    ) -> tuple[list[RawEntry], dict[str, Any], bytes | None]:
        """One page read by ldap3: its responses, its result, and the next page's cookie."""
        conn.search(
            base,
            search_filter,
            ldap3.SUBTREE,
            attributes=list(attributes),
            paged_size=self.settings.page_size,
            paged_cookie=cookie,
            controls=list(controls) or None,
        )
        result = conn.result or {}
        control = (result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
        return list(conn.response or ()), result, (control.get("value") or {}).get("cookie")

    def sync_search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        control: exchange.Control,
        *,
        what: str,
    ) -> tuple[list[RawEntry], dict[str, Any]]:
        """One unpaged search with a Sync Request control (RFC 4533): every response, with
        its controls, and the final result. e-syncRefreshRequired, a size limit (too many
        changes for one unpaged answer) or a refused control raise ``CursorExpired``: read
        again in full."""
        conn = self._require()
        if not exchange.supported(conn):
            raise CursorExpired(f"{self._where()}: syncrepl needs a simple or anonymous bind")
        with self._search_errors(what, search_filter, "change search broke off"):
            answer = exchange.search(
                conn, base, search_filter, attributes, controls=[control], deref=ldap3.DEREF_NEVER
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
        """A bad filter is a config error; anything else a search raises makes it incomplete."""
        try:
            yield
        except ldap_errors.LDAPInvalidFilterError as exc:
            raise ConfigError(
                f"organization[{self.organization}].source: the {what} filter "
                f"{search_filter!r} is not a valid LDAP filter: {_first_line(exc)}"
            ) from exc
        except Exception as exc:  # lost connection, timeout, a decoding bug: all incomplete
            raise SourceReadIncomplete(
                f"{self._where()}: the {what} {broke_off}: {_first_line(exc)}"
            ) from exc

    def _require(self) -> Any:
        if self.conn is None:
            raise RuntimeError("the LDAP session is not open")
        return self.conn
