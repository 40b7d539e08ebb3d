"""Active Directory attribute values and bind diagnostics: pure functions, no I/O.

- ``objectGUID`` is 16 bytes whose first three fields are little-endian (Microsoft's GUID
  layout); its canonical text is the familiar ``{...}`` form without braces, lower-case.
- ``userAccountControl`` bit 0x2 is ACCOUNTDISABLE; ``accountExpires`` is a FILETIME (100 ns
  ticks since 1601-01-01 UTC) where 0 and 0x7FFFFFFFFFFFFFFF both mean "never".
- A refused bind carries a sub-code in its diagnostic message (``... data 52e, v4563``).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

ACCOUNTDISABLE: Final = 0x2
_NEVER: Final = (0, 0x7FFFFFFFFFFFFFFF)
_FILETIME_EPOCH: Final = datetime(1601, 1, 1, tzinfo=UTC)

#: AD's bind sub-codes (the hex after "data" in the diagnostic message) and what they mean
BIND_SUBCODES: Final = {
    "525": "the bind account does not exist",
    "52e": "the password is wrong",
    "530": "the bind account may not log on at this time",
    "531": "the bind account may not log on from this workstation",
    "532": "the bind account's password has expired",
    "533": "the bind account is disabled",
    "701": "the bind account has expired",
    "773": "the bind account must change its password",
    "775": "the bind account is locked out",
}
_SUBCODE: Final = re.compile(r"\bdata ([0-9a-f]{3,8})\b", re.IGNORECASE)
STRONGER_AUTH_REQUIRED: Final = 8
INVALID_CREDENTIALS: Final = 49


def guid_to_str(raw: bytes) -> str:
    """``objectGUID`` bytes → ``"b9c8e5a4-...."`` (mixed-endian, as AD and Windows print it)."""
    if len(raw) != 16:
        raise ValueError(f"an objectGUID is 16 bytes, not {len(raw)}")
    return str(uuid.UUID(bytes_le=bytes(raw)))


def guid_to_bytes(text: str) -> bytes:
    """The inverse of ``guid_to_str``."""
    return uuid.UUID(text.strip().strip("{}")).bytes_le


def guid_filter_value(text: str) -> str:
    """A GUID as an escaped LDAP filter value: ``(objectGUID=\\a4\\e5...)``."""
    return "".join(f"\\{byte:02x}" for byte in guid_to_bytes(text))


def account_disabled(user_account_control: int | None) -> bool:
    return bool(user_account_control is not None and user_account_control & ACCOUNTDISABLE)


def filetime_to_datetime(value: int) -> datetime | None:
    """A FILETIME as an aware UTC datetime; ``None`` for AD's two spellings of "never"."""
    if value in _NEVER or value < 0:
        return None
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:  # beyond year 9999: as good as never
        return None


def account_expired(account_expires: int | None, now: datetime) -> bool:
    """Whether ``accountExpires`` lies at or before ``now`` (absent or "never" is not expired)."""
    if account_expires is None:
        return False
    expires = filetime_to_datetime(account_expires)
    return expires is not None and expires <= now


def parse_int(value: bytes | str | None) -> int | None:
    """An integer attribute value (``b"546"``); ``None`` when absent or not a number."""
    if value is None:
        return None
    text = value.decode("ascii", errors="replace") if isinstance(value, bytes) else value
    try:
        return int(text.strip())
    except ValueError:
        return None


def bind_subcode(message: str | None) -> str | None:
    """``"52e"`` from ``"80090308: LdapErr: ..., data 52e, v1db1"``; ``None`` without one."""
    match = _SUBCODE.search(message or "")
    return match.group(1).lower() if match else None


def bind_failure_reason(code: int | None, message: str | None) -> str:
    """What a refused AD bind means, in words an administrator can act on."""
    if code == STRONGER_AUTH_REQUIRED:
        return (
            "the domain controller requires a stronger authentication (strongerAuthRequired): "
            "simple binds need an encrypted connection; use an ldaps:// URL or start_tls = true"
        )
    subcode = bind_subcode(message)
    if subcode is not None:
        meaning = BIND_SUBCODES.get(subcode, "see Microsoft's list of LDAP bind sub-codes")
        return f"{meaning} (AD sub-code {subcode})"
    if code == INVALID_CREDENTIALS:
        return "invalid credentials"
    detail = (message or "").strip().splitlines()[0][:200] if message else ""
    return f"result code {code}" + (f": {detail}" if detail else "")
