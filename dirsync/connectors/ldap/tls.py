"""TLS for directory connections: Python's ``ssl``, one context per source.

``check_hostname`` is on whenever verification is: OpenSSL itself matches the name we
connect to against the certificate's DNS *and* IP-address subject alternative names, checks
the chain and the validity dates, identically on every Python we support. With ``ca_file``
the context trusts that file's CAs only (a client's private CA: a certificate from any
other CA, public ones included, is refused); without it, the system's CA store.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Final

#: OpenSSL's X509_V_ERR_* codes that get their own message (x509_vfy.h)
_EXPIRED: Final = 10
_NOT_YET_VALID: Final = 9
_SELF_SIGNED: Final = frozenset({18, 19})
_UNKNOWN_ISSUER: Final = frozenset({2, 20, 21})
_HOSTNAME_MISMATCH: Final = 62
_IP_ADDRESS_MISMATCH: Final = 64


def client_context(*, verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    """The context for one source's connections (LDAPS and StartTLS alike)."""
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def describe_failure(exc: ssl.SSLError, host: str) -> str:
    """One line for what went wrong in a handshake, with the fix where there is one."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
            return f"the server certificate does not name {host}"
        if code == _EXPIRED:
            return "the server certificate has expired (certificate verify failed)"
        if code == _NOT_YET_VALID:
            return "the server certificate is not valid yet (check the clocks)"
        reason = exc.verify_message or "certificate verify failed"
        if code in _SELF_SIGNED or code in _UNKNOWN_ISSUER:
            return (
                f"the server certificate does not verify (certificate verify failed: {reason}); "
                "check ca_file"
            )
        return f"the server certificate does not verify (certificate verify failed: {reason})"
    reason = exc.reason or type(exc).__name__
    return f"the TLS handshake failed: {str(reason).replace('_', ' ').lower()}"
