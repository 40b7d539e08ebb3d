"""Active Directory through the fault proxy: the real Samba DC whose answers trickle one byte
at a time, or are replaced by a message announcing 1 GiB. Active Directory reads through the
same LDAP transport as OpenLDAP; this checks its session keeps the deadline and the limit.
"""

from __future__ import annotations

import pytest

from dirsync.errors import SourceError
from dirsync.testing.fault_proxy import FaultProxy, Mode
from tests.integration.ad.conftest import AdOu


def _bind_response_size(ad_ou: AdOu) -> int:
    """What Samba sends for a simple bind on plain LDAP (its lengths are 4-byte long forms)."""
    with FaultProxy(389) as clean:
        connector = ad_ou.connector(url=clean.url, allow_plain_ldap=True)
        connector.connect([clean.url]).close()
        connector.close()
    assert clean.forwarded > 0
    return clean.forwarded


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("trickle", "the read passed its read_deadline of 3s"),
        ("oversized", "1,073,741,824 bytes; the limit is 268,435,456"),
    ],
)
def test_a_hostile_domain_controller_ends_the_read_with_one_line(
    ad_ou: AdOu, mode: Mode, expected: str
) -> None:
    ad_ou.users("alice", "bob")
    after = _bind_response_size(ad_ou)
    with FaultProxy(389, after=after, mode=mode, interval=0.3) as proxy:
        connector = ad_ou.connector(
            url=proxy.url, allow_plain_ldap=True, timeout="2s", read_deadline="3s"
        )
        try:
            with pytest.raises(SourceError) as caught:
                connector.read(None)
        finally:
            connector.close()
    message = str(caught.value)
    assert message.startswith(f"organization acme: the directory at 127.0.0.1:{proxy.port}")
    assert expected in message and "\n" not in message
    if mode == "trickle":
        assert 1 <= proxy.hostile_bytes <= 3 / 0.3 + 3  # stopped at the deadline, not after
    else:
        assert proxy.hostile_bytes < 64 * 1024 * 1024  # refused from the length, not read
