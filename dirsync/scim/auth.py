"""Who may push to an organization: the holder of its bearer token, and nobody else.

Tokens are compared as SHA-256 digests with ``hmac.compare_digest``: in constant time, and
without the length of the configured token showing in the time either. The token itself is
neither logged nor kept beyond the config's ``Secret``; an unknown organization, an
organization that is not ``type = "scim"``, a missing token and a wrong one all get the same
401.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from dirsync.config.settings import Config, OrganizationSettings
from dirsync.connectors.scim.settings import ScimSourceSettings
from dirsync.scim.errors import unauthorized

#: the config the daemon runs now (a reload replaces it)
ConfigSource = Callable[[], Config]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def pushed_organization(config: Config, name: str) -> OrganizationSettings | None:
    for org in config.organization:
        if org.name == name and isinstance(org.source, ScimSourceSettings):
            return org
    return None


def authorize(config: Config, name: str, authorization: str | None) -> OrganizationSettings:
    """The SCIM organization ``name`` if the header carries its token; else ``ScimError`` 401."""
    org = pushed_organization(config, name)
    given = bearer_token(authorization)
    expected = None
    if org is not None:
        source = org.source
        assert isinstance(source, ScimSourceSettings)
        secret = source.token if source.token is not None else source.token_file
        expected = secret.reveal() if secret is not None else None
    # compared even when there is nothing to compare with, so that the time is the same
    matches = hmac.compare_digest(_digest(given or ""), _digest(expected or "\0unset"))
    if org is None or not given or not expected or not matches:
        raise unauthorized()
    return org
