"""Helpers for tests, demos and benchmarks: throwaway directory servers and sample data.

Nothing here is imported by the daemon itself; it needs the test extras (``trustme``) and the
server binaries (``slapd``, ``ldap-utils``).
"""

from __future__ import annotations

from dirsync.testing.sample import sample_company_ldif
from dirsync.testing.slapd import Slapd, SlapdError

__all__ = ["Slapd", "SlapdError", "sample_company_ldif"]
