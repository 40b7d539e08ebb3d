"""LDAP result codes (RFC 4511 Appendix A, RFC 4533, RFC 3909) by number, for messages."""

from __future__ import annotations

from typing import Final

SUCCESS: Final = 0
OPERATIONS_ERROR: Final = 1
PROTOCOL_ERROR: Final = 2
TIME_LIMIT_EXCEEDED: Final = 3
SIZE_LIMIT_EXCEEDED: Final = 4
STRONGER_AUTH_REQUIRED: Final = 8
REFERRAL: Final = 10
ADMIN_LIMIT_EXCEEDED: Final = 11
UNAVAILABLE_CRITICAL_EXTENSION: Final = 12
CONFIDENTIALITY_REQUIRED: Final = 13
NO_SUCH_OBJECT: Final = 32
INVALID_CREDENTIALS: Final = 49
INSUFFICIENT_ACCESS_RIGHTS: Final = 50
BUSY: Final = 51
UNAVAILABLE: Final = 52
UNWILLING_TO_PERFORM: Final = 53
#: RFC 4533: the server cannot serve this cookie incrementally
E_SYNC_REFRESH_REQUIRED: Final = 4096

NAMES: Final = {
    0: "success",
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    4: "sizeLimitExceeded",
    5: "compareFalse",
    6: "compareTrue",
    7: "authMethodNotSupported",
    8: "strongerAuthRequired",
    10: "referral",
    11: "adminLimitExceeded",
    12: "unavailableCriticalExtension",
    13: "confidentialityRequired",
    14: "saslBindInProgress",
    16: "noSuchAttribute",
    17: "undefinedAttributeType",
    18: "inappropriateMatching",
    19: "constraintViolation",
    20: "attributeOrValueExists",
    21: "invalidAttributeSyntax",
    32: "noSuchObject",
    33: "aliasProblem",
    34: "invalidDNSyntax",
    36: "aliasDereferencingProblem",
    48: "inappropriateAuthentication",
    49: "invalidCredentials",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    54: "loopDetect",
    64: "namingViolation",
    65: "objectClassViolation",
    66: "notAllowedOnNonLeaf",
    67: "notAllowedOnRDN",
    68: "entryAlreadyExists",
    69: "objectClassModsProhibited",
    71: "affectsMultipleDSAs",
    80: "other",
    118: "canceled",
    119: "noSuchOperation",
    120: "tooLate",
    121: "cannotCancel",
    122: "assertionFailed",
    123: "authorizationDenied",
    4096: "e-syncRefreshRequired",
}


def describe(code: int | None) -> str:
    """``sizeLimitExceeded`` for 4; ``unknown`` for a code outside the table."""
    return NAMES.get(code, "unknown") if code is not None else "no result"
