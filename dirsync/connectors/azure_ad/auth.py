"""The msal seam: app-only tokens for Microsoft Graph, per organization.

msal's ``ConfidentialClientApplication`` runs the client-credentials flow with a client secret
or a certificate and keeps the token in its in-memory cache, so one token serves every request
until it is close to expiry. msal gets its own ``requests.Session`` with ``trust_env=False``:
otherwise ``REQUESTS_CA_BUNDLE`` and proxy variables of the environment would override the
source's ``ca_file`` and ``proxy``. Every msal and requests failure becomes a dirsync error here,
naming the organization and never the secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dirsync.config.secrets import Secret
from dirsync.connectors.azure_ad.limits import TokenReadStopped
from dirsync.errors import (
    ConfigError,
    SourceAuthFailed,
    SourceError,
    SourceReadIncomplete,
    SourceTLSError,
    SourceUnreachable,
)

#: AADSTS codes with a message an administrator can act on
_AADSTS_HINTS = {
    90002: "the tenant {tenant!r} does not exist at {authority}",
    900023: "the tenant {tenant!r} is not a valid tenant name or id",
    7000215: "the client secret is wrong for application {client_id}",
    7000222: "the client secret of application {client_id} has expired; create a new one",
    700016: "application {client_id} does not exist in tenant {tenant!r}",
    700027: "the certificate is not registered for application {client_id}",
    700024: "the certificate assertion is not valid at this time (check the clock)",
    50012: "the client assertion of application {client_id} was refused",
    7000112: "application {client_id} is disabled",
}
#: token answers that a later attempt may get past
RETRYABLE_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


class TokenUnavailable(SourceError):
    """The token endpoint is throttled or unavailable for now; another attempt may work."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSettings:
    organization: str
    tenant: str
    client_id: str
    authority: str
    scope: str
    secret: Secret | None = None
    certificate_file: Path | None = None
    certificate_passphrase: Secret | None = None
    timeout: float = 30.0


def certificate_credential(path: Path, passphrase: Secret | None, *, where: str) -> dict[str, Any]:
    """msal's credential dict for a PEM file holding a certificate and its private key."""
    data = path.read_bytes()
    password = passphrase.reveal().encode() if passphrase else None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigError(f"{path} holds no PEM certificate", path=where) from None
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        hint = "is not encrypted: drop" if password else "is encrypted: set"
        raise ConfigError(
            f"the private key in {path} {hint} certificate_passphrase", path=where
        ) from None
    except ValueError:
        raise ConfigError(
            f"{path} holds no usable private key (or certificate_passphrase is wrong)", path=where
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"the private key in {path} must be an RSA key", path=where)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    # without a "thumbprint", msal (>= 1.35) signs PS256 with the SHA-256 thumbprint (x5t#S256)
    return {
        "private_key": key_pem,
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


class TokenProvider:
    """App-only Graph tokens for one organization; msal's cache reuses them until near expiry."""

    def __init__(self, settings: TokenSettings, session: requests.Session) -> None:
        self.settings = settings
        self._session = session
        self._app: msal.ConfidentialClientApplication | None = None
        self._credential: Any = None
        where = f"organization[{settings.organization}].source.certificate_file"
        if settings.certificate_file is not None:
            self._credential = certificate_credential(
                settings.certificate_file, settings.certificate_passphrase, where=where
            )
        elif settings.secret is not None:
            self._credential = settings.secret.reveal()
        #: how many tokens the token endpoint issued to us (msal's cache answers the rest)
        self.issued = 0

    def token(self) -> str:
        app = self._call(lambda: self._application())
        result = self._call(lambda: app.acquire_token_for_client(scopes=[self.settings.scope]))
        if "access_token" in result:
            if result.get("token_source") == "identity_provider":
                self.issued += 1
            return str(result["access_token"])
        raise self._refusal(result)

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            s = self.settings
            self._app = msal.ConfidentialClientApplication(
                s.client_id,
                client_credential=self._credential,
                authority=f"{s.authority}/{s.tenant}",
                http_client=self._session,
                instance_discovery=False,  # no trip to login.microsoftonline.com's discovery
                # never the MSAL_FORCE_REGION of the environment: no regional endpoint, no IMDS
                azure_region=msal.ConfidentialClientApplication.DISABLE_MSAL_FORCE_REGION,
                token_cache=msal.TokenCache(),  # the session applies the timeout
            )
        return self._app

    def _call(self, action: Callable[[], Any]) -> Any:
        s = self.settings
        discovering = self._app is None  # the first call fetches the tenant's OpenID config
        try:
            return action()
        except requests.exceptions.SSLError as exc:
            raise SourceTLSError(
                f"organization {s.organization}: TLS to {s.authority} failed: "
                f"{_first_line(exc)} (is ca_file right?)"
            ) from exc
        except TokenReadStopped as exc:
            raise SourceReadIncomplete(
                f"organization {s.organization}: a token from {s.authority}: {exc}; "
                "nothing was changed"
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise SourceUnreachable(
                f"organization {s.organization}: {s.authority} did not answer within {s.timeout:g}s"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise SourceUnreachable(
                f"organization {s.organization}: cannot reach {s.authority}: {_first_line(exc)}"
            ) from exc
        except ValueError as exc:
            if discovering:  # msal's answer when the tenant's OpenID configuration is missing
                raise SourceAuthFailed(
                    f"organization {s.organization}: the tenant {s.tenant!r} is unknown at "
                    f"{s.authority} (no OpenID configuration)"
                ) from exc
            raise SourceAuthFailed(
                f"organization {s.organization}: msal refused the credentials of application "
                f"{s.client_id}: {_first_line(exc)}"
            ) from exc

    def _refusal(self, result: dict[str, Any]) -> SourceError:
        s = self.settings
        error = str(result.get("error", "unknown_error"))
        codes = [int(c) for c in result.get("error_codes") or () if str(c).isdigit()]
        code_text = ", ".join(f"AADSTS{c}" for c in codes)
        for code in codes:
            if (hint := _AADSTS_HINTS.get(code)) is not None:
                message = hint.format(tenant=s.tenant, client_id=s.client_id, authority=s.authority)
                return SourceAuthFailed(
                    f"organization {s.organization}: {message} ({error}, {code_text})"
                )
        detail = f"{error}, {code_text}" if code_text else error
        if error in RETRYABLE_TOKEN_ERRORS:
            return TokenUnavailable(
                f"organization {s.organization}: the token endpoint is unavailable ({detail})"
            )
        return SourceAuthFailed(
            f"organization {s.organization}: {s.authority} refused a token for application "
            f"{s.client_id} ({detail})"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
