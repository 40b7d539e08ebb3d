"""The token side of the local Graph: OpenID configuration, token endpoint, bearer checks.

Client secrets are compared; certificate assertions are JWTs whose signature is verified with
the public key of the certificate registered for the app (``x5t#S256`` or ``x5t`` must name
it), with audience, issuer, subject and expiry checked. Errors carry the AADSTS codes Entra ID
sends, so the connector's messages can be tested against them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dirsync.testing.graph_answers import Fault, error, faulty, json_answer

if TYPE_CHECKING:
    from dirsync.testing.graph_tenant import Tenant

TOKEN_LIFETIME = 3599
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Issuer(Protocol):
    """What the token desk needs of the fake it serves (``GraphFake``)."""

    url: str
    tenants: dict[str, Tenant]
    faults: list[Fault]


class TokenDesk:
    def __init__(self, fake: Issuer) -> None:
        self.fake = fake
        #: access token → (tenant id, client id, expiry as time.time())
        self.tokens: dict[str, tuple[str, str, float]] = {}
        #: the Authorization header of the request being served (set under the fake's lock)
        self.authorization: str | None = None
        self.issued: list[str] = []

    def openid_configuration(self, tenant_id: str) -> tuple[int, str | None, Any]:
        if tenant_id not in self.fake.tenants:
            return (
                400,
                None,
                json_answer(400, _aad("invalid_tenant", 90002, f"Tenant '{tenant_id}' not found.")),
            )
        base = f"{self.fake.url}/{tenant_id}"
        return (
            200,
            tenant_id,
            json_answer(
                200,
                {
                    "issuer": f"{base}/v2.0",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_post",
                        "private_key_jwt",
                    ],
                },
            ),
        )

    def token(self, tenant_id: str, body: bytes) -> tuple[int, str | None, Any]:
        for fault in self.fake.faults:
            if "oauth2" in fault.path and fault.times > 0:
                fault.times -= 1
                if fault.kind != "status":
                    status, answer = faulty(fault)
                    return status, tenant_id, answer
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                busy = _aad("temporarily_unavailable", 50196, "The server is busy; retry later.")
                return fault.status, tenant_id, json_answer(fault.status, busy, headers)
        tenant = self.fake.tenants.get(tenant_id)
        if tenant is None:
            return 400, None, json_answer(400, _aad("invalid_tenant", 90002, "Tenant not found."))
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        app = tenant.apps.get(form.get("client_id", ""))
        if form.get("grant_type") != "client_credentials" or app is None:
            return (
                400,
                tenant_id,
                json_answer(
                    400,
                    _aad("unauthorized_client", 700016, "Application not found in the directory."),
                ),
            )
        if form.get("scope") != f"{self.fake.url}/.default":
            return 400, tenant_id, json_answer(400, _aad("invalid_scope", 1002012, "bad scope"))
        if app.certificate_pem is not None:
            problem = self._assertion_problem(app.certificate_pem, app.client_id, tenant_id, form)
            if problem:
                return 401, tenant_id, json_answer(401, _aad("invalid_client", 700027, problem))
        elif form.get("client_secret") != app.secret:
            return (
                401,
                tenant_id,
                json_answer(
                    401, _aad("invalid_client", 7000215, "Invalid client secret provided.")
                ),
            )
        elif app.secret_expired:
            return (
                401,
                tenant_id,
                json_answer(
                    401,
                    _aad("invalid_client", 7000222, "The provided client secret keys are expired."),
                ),
            )
        access = secrets.token_urlsafe(32)
        self.tokens[access] = (tenant_id, app.client_id, time.time() + TOKEN_LIFETIME)
        self.issued.append(access)
        return (
            200,
            tenant_id,
            json_answer(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME,
                    "ext_expires_in": TOKEN_LIFETIME,
                    "access_token": access,
                },
            ),
        )

    def _assertion_problem(
        self, cert_pem: bytes, client_id: str, tenant_id: str, form: dict[str, str]
    ) -> str | None:
        if form.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in form:
            return "a certificate credential is registered: send a client assertion"
        assertion = form["client_assertion"]
        cert = x509.load_pem_x509_certificate(cert_pem)
        der = cert.public_bytes(serialization.Encoding.DER)
        header = jwt.get_unverified_header(assertion)
        sha256 = _b64(hashlib.sha256(der).digest())
        sha1 = _b64(hashlib.sha1(der).digest())  # x5t is SHA-1 by spec (RFC 7515)
        named = str(header.get("x5t#S256", "")).rstrip("=") == sha256 or (
            str(header.get("x5t", "")).rstrip("=") == sha1
        )
        if not named:
            return "the assertion names a certificate that is not registered"
        try:
            claims = jwt.decode(
                assertion,
                key=cert.public_key(),  # type: ignore[arg-type]  # an RSA key in these tests
                algorithms=["RS256", "PS256"],
                audience=f"{self.fake.url}/{tenant_id}/oauth2/v2.0/token",
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError as exc:
            return f"the client assertion is invalid: {exc}"
        if claims["iss"] != client_id or claims["sub"] != client_id:
            return "the assertion's issuer and subject must be the client id"
        return None

    def caller(self) -> tuple[Tenant | None, tuple[int, str | None, Any]]:
        """The tenant of the bearer token, or the 401 answer."""
        header = self.authorization or ""
        token = header.removeprefix("Bearer ").strip()
        found = self.tokens.get(token)
        if not header.startswith("Bearer ") or found is None or found[2] < time.time():
            answer = json_answer(
                401, error("InvalidAuthenticationToken", "Access token is invalid.")
            )
            return None, (401, None, answer)
        return self.fake.tenants[found[0]], (200, found[0], None)

    def client_of_caller(self) -> str:
        token = (self.authorization or "").removeprefix("Bearer ").strip()
        return self.tokens[token][1]


def _aad(error: str, code: int, description: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {description}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": secrets.token_hex(8),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
