"""What a connector reads from a directory: users, groups, snapshots, deltas, cursors.

Values only, no I/O. ``ref`` is how other entries point at an entry: the normalized DN for
LDAP and Active Directory, the object id for Graph. Group members are refs, so a group can
point at users and at other groups (nesting), and a ref that resolves to nothing is a warning.
A group may also name a user by user name (``username_ref``), as posixGroup's memberUid does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: refs of the form ``username:<name>`` point at a user by user name (posixGroup memberUid)
USERNAME_REF_PREFIX = "username:"


def username_ref(username: str) -> str:
    """The ref a group uses to name a member by user name rather than by DN."""
    return USERNAME_REF_PREFIX + username.strip().lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryUser:
    external_id: str
    ref: str
    username: str | None = None
    email: str | None = None
    name: str | None = None
    disabled: bool = False
    #: the identity provider's own id for a pushed user (SCIM ``externalId``); directories
    #: have none
    idp_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryGroup:
    external_id: str
    ref: str
    name: str
    member_refs: frozenset[str] = frozenset()
    #: the identity provider's own id for a pushed group (SCIM ``externalId``)
    idp_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor:
    """Where the next delta read starts. ``kind`` names the mechanism, ``value`` is opaque."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectorySnapshot:
    """A complete read: everything the filters select. Absence here means absence."""

    users: tuple[DirectoryUser, ...]
    groups: tuple[DirectoryGroup, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupChange:
    """A group as an incremental source reports it (Graph ``members@delta``).

    Only what changed: the name when given, and member refs added and removed. Applied to the
    mirror's group of the same external id; a group the mirror lacks starts empty.
    """

    external_id: str
    ref: str
    name: str | None = None
    added_refs: frozenset[str] = frozenset()
    removed_refs: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryDelta:
    """Changes since a cursor: changed entries in full, plus explicit deletions (tombstones).

    ``group_changes`` are partial group updates, applied after ``groups``.
    """

    users: tuple[DirectoryUser, ...] = ()
    groups: tuple[DirectoryGroup, ...] = ()
    deleted_user_ids: frozenset[str] = frozenset()
    deleted_group_ids: frozenset[str] = frozenset()
    group_changes: tuple[GroupChange, ...] = ()
    #: every user / group id the source holds now (an id-only scan), or None: with both, the
    #: patched mirror keeps only these and counts as a complete read (absence means absence)
    present_user_ids: frozenset[str] | None = None
    present_group_ids: frozenset[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """The outcome of ``Connector.read``: exactly one of ``snapshot`` and ``delta``."""

    snapshot: DirectorySnapshot | None = None
    delta: DirectoryDelta | None = None
    cursor: Cursor | None = None
    entries_read: int = 0
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if (self.snapshot is None) == (self.delta is None):
            raise ValueError("a Reading holds exactly one of snapshot and delta")

    @property
    def is_full(self) -> bool:
        return self.snapshot is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceInfo:
    """What ``Connector.probe`` learned about the server it reached."""

    url: str
    vendor: str | None = None
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Mirror:
    """The last complete picture of the directory, keyed by external id.

    Kept in the store so that a delta read still plans from a complete picture.
    """

    users: dict[str, DirectoryUser] = field(default_factory=dict)
    groups: dict[str, DirectoryGroup] = field(default_factory=dict)
