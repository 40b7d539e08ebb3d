"""LDAP entries as users and groups: a one-pass path for well-formed entries, and a general
path that warns about what is wrong with the others.

Every entry of every read passes through here, so the one-pass path is hand-tuned: no call
and no attribute lookup per entry that it can avoid (``bench/RESULTS.md``). It knows only the
generic hooks below; a subclass that overrides them declares ``generic_entries = False`` and
every entry takes the general path. Both paths give the same users, groups and warnings
(``tests/unit/connectors/ldap/test_ldap_convert_fast_path.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from dirsync.connectors.ldap.dn import normalize_dn, strip_optional_uid
from dirsync.connectors.ldap.reader import LdapReader
from dirsync.connectors.ldap.session import RawEntry
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.connectors.ldap.wire import Attributes
from dirsync.model import DirectoryGroup, DirectoryUser, username_ref


class EntryConversion:
    """Raw entries → ``DirectoryUser`` and ``DirectoryGroup``; ``LdapConnector`` is one."""

    settings: LdapSourceSettings
    #: ``users_from``/``groups_from`` may take their one-pass path, which reads an external id
    #: as UTF-8 text and disables no user by its own attributes: what ``decode_external_id``
    #: and ``user_disabled`` do here. A subclass that overrides either declares False.
    generic_entries: ClassVar[bool] = True

    # -- extension points (Active Directory overrides these) --------------------------------

    def decode_external_id(self, value: bytes | str) -> str | None:
        """The external id as text; ``None`` if it is binary (e.g. objectGUID: use AD)."""
        if isinstance(value, str):
            return value.strip() or None
        try:
            return value.decode("utf-8").strip() or None
        except UnicodeDecodeError:
            return None

    def user_disabled(self, entry: RawEntry) -> bool:
        """Whether an entry is disabled by its own attributes (``disabled_filter`` aside)."""
        return False

    # -- conversion -------------------------------------------------------------------------

    def users_from(
        self, reader: LdapReader, entries: Iterable[RawEntry], disabled_ids: set[str]
    ) -> list[DirectoryUser]:
        s = self.settings
        suffix = s.email_suffix.strip()
        if suffix and not suffix.startswith("@"):
            suffix = "@" + suffix
        names = (s.external_id_attribute, s.username_attribute, s.email_attribute,
                 s.name_attribute, "cn")  # fmt: skip
        lowered = tuple(name.lower() for name in names)
        quick = self.generic_entries
        refs = reader.refs
        users: list[DirectoryUser] = []
        append = users.append
        for entry in entries:
            if quick:
                # one pass without warnings over a well-formed entry: every value strict
                # UTF-8 bytes, the DN parses; anything else (which may warn) takes the general
                # path from the start, so warnings come out as it orders them
                raw = entry["raw_attributes"]
                kind = type(raw)
                get, keys = (_dict_get, lowered) if kind is Attributes else (kind.get, names)
                raw_dn: Any = entry.get("raw_dn")
                ids, usernames, emails = get(raw, keys[0]), get(raw, keys[1]), get(raw, keys[2])
                try:
                    external_id = ids[0].decode("utf-8").strip()
                    ref = refs.get(raw_dn)
                    if ref is None:
                        ref = _new_ref(refs, raw_dn)
                    username = usernames[0].decode("utf-8").strip() or None if usernames else None
                    email = emails[0].decode("utf-8").strip() or None if emails else None
                    values = get(raw, keys[3])
                    name = values[0].decode("utf-8").strip() or None if values else None
                    if name is None:
                        values = get(raw, keys[4])
                        name = values[0].decode("utf-8").strip() or None if values else None
                except (TypeError, IndexError, AttributeError, UnicodeDecodeError, ValueError):
                    pass  # not bytes, missing, not UTF-8, not a DN: the general path says which
                else:
                    if external_id:
                        if email is None and suffix and username:
                            email = username + suffix
                        append(
                            DirectoryUser(
                                external_id=external_id,
                                ref=ref,
                                username=username,
                                email=email,
                                name=name,
                                disabled=external_id in disabled_ids,
                            )
                        )
                        continue
            user = self._user(reader, entry, suffix, disabled_ids)
            if user is not None:
                append(user)
        return users

    def _user(
        self, reader: LdapReader, entry: RawEntry, suffix: str, disabled_ids: set[str]
    ) -> DirectoryUser | None:
        """One entry as a user, warning about what is wrong with it (the general path)."""
        s = self.settings
        external_id = reader.external_id(entry, "user")
        ref = reader.ref(entry) if external_id else None
        if external_id is None or ref is None:
            return None
        username = reader.text(entry, s.username_attribute)
        email = reader.text(entry, s.email_attribute)
        if email is None and suffix and username:
            email = username + suffix
        name = reader.text(entry, s.name_attribute) or reader.text(entry, "cn")
        disabled = external_id in disabled_ids or self.user_disabled(entry)
        return DirectoryUser(
            external_id=external_id,
            ref=ref,
            username=username,
            email=email,
            name=name,
            disabled=disabled,
        )

    def groups_from(self, reader: LdapReader, entries: Iterable[RawEntry]) -> list[DirectoryGroup]:
        s = self.settings
        member_attribute = s.member_attribute
        # posixGroup's memberUid names members by user name, not by DN
        by_username = member_attribute.lower() == "memberuid"
        names = (s.external_id_attribute, s.group_name_attribute, "cn", member_attribute)
        lowered = tuple(name.lower() for name in names)
        quick = not by_username and self.generic_entries
        refs = reader.refs
        members_of = refs.__getitem__
        groups: list[DirectoryGroup] = []
        append = groups.append
        for entry in entries:
            if quick:
                # as in users_from: a well-formed entry whose member values were all seen
                # before (as DNs of entries or of other groups' members) needs no parsing
                raw = entry["raw_attributes"]
                kind = type(raw)
                get, keys = (_dict_get, lowered) if kind is Attributes else (kind.get, names)
                raw_dn: Any = entry.get("raw_dn")
                ids = get(raw, keys[0])
                try:
                    external_id = ids[0].decode("utf-8").strip()
                    ref = refs.get(raw_dn)
                    if ref is None:
                        ref = _new_ref(refs, raw_dn)
                    values = get(raw, keys[1])
                    name = values[0].decode("utf-8").strip() or None if values else None
                    if name is None:
                        values = get(raw, keys[2])
                        name = values[0].decode("utf-8").strip() or None if values else None
                    members = frozenset(map(members_of, get(raw, keys[3]) or ()))
                except (
                    TypeError, IndexError, AttributeError, UnicodeDecodeError, ValueError, KeyError
                ):  # fmt: skip
                    pass  # the general path warns about what it is, and learns new member DNs
                else:
                    if external_id and name is not None:
                        append(
                            DirectoryGroup(
                                external_id=external_id, ref=ref, name=name, member_refs=members
                            )
                        )
                        continue
            group = self._group(reader, entry)
            if group is not None:
                append(group)
        return groups

    def _group(self, reader: LdapReader, entry: RawEntry) -> DirectoryGroup | None:
        """One entry as a group, warning about what is wrong with it (the general path)."""
        s = self.settings
        member_attribute = s.member_attribute
        unique_member = member_attribute.lower() == "uniquemember"
        by_username = member_attribute.lower() == "memberuid"
        external_id = reader.external_id(entry, "group")
        ref = reader.ref(entry) if external_id else None
        if external_id is None or ref is None:
            return None
        name = reader.text(entry, s.group_name_attribute) or reader.text(entry, "cn")
        if name is None:
            reader.warnings.append(
                f"group {reader.dn(entry)} skipped: it has no {s.group_name_attribute}"
            )
            return None
        members = set()
        if by_username:
            for value in reader.values(entry, member_attribute):
                if value.strip():
                    members.add(_member_uid_ref(reader, value.strip()))
            return DirectoryGroup(
                external_id=external_id, ref=ref, name=name, member_refs=frozenset(members)
            )
        refs = reader.refs
        # every value decoded first, as ``values`` does, so the warnings keep their order
        decoded = []
        for raw_value in entry["raw_attributes"].get(member_attribute) or ():
            if isinstance(raw_value, bytes):
                known = refs.get(raw_value)
                if known is not None:  # UTF-8 and a DN: no warning to keep in order
                    members.add(known)
                    continue
                try:
                    value = raw_value.decode("utf-8")
                except UnicodeDecodeError:
                    reader.warnings.append(
                        f"{reader.dn(entry)}: a {member_attribute} value is not valid UTF-8; "
                        "skipped"
                    )
                    continue
            else:
                value = str(raw_value)
            decoded.append((raw_value, value))
        for raw_value, value in decoded:
            member = strip_optional_uid(value) if unique_member else value
            try:
                member_ref = reader.normalize(member)
            except ValueError:
                reader.warnings.append(f"group {name}: member value {value!r} is not a DN; skipped")
                continue
            members.add(member_ref)
            if isinstance(raw_value, bytes) and not value.endswith("'B"):
                refs[raw_value] = member_ref  # as _new_ref would: the next group finds it
        return DirectoryGroup(
            external_id=external_id, ref=ref, name=name, member_refs=frozenset(members)
        )


def _member_uid_ref(reader: LdapReader, value: str) -> str:
    """A posixGroup ``memberUid`` value names a user by user name, but some directories hold
    the member's DN there (and Bitwarden's Directory Connector accepts it): a value that
    parses as a DN is taken as one. A user name never holds ``=``."""
    if "=" in value:
        try:
            return reader.normalize(value)
        except ValueError:
            pass  # not a DN after all: a user name
    return username_ref(value)


#: ``dict.get`` itself: ``Attributes.get`` lower-cases its argument, ours already are
_dict_get: Callable[[Any, str], Any] = dict.get


def _new_ref(refs: dict[bytes, str], raw_dn: bytes) -> str:
    """The normalized DN of a DN read as bytes (strict UTF-8), remembered in ``refs`` unless it
    could end in a ``uniqueMember`` optional uid. Raises ``ValueError`` if it is not a DN."""
    text = raw_dn.decode("utf-8")
    ref = normalize_dn(text)
    if not text.endswith("'B"):
        refs[raw_dn] = ref
    return ref
