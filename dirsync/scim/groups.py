"""SCIM Group resources ↔ the directory groups the planner takes, and group PATCHes. Pure.

A group is its id (dirsync assigns it; also its ref), its ``displayName``, its ``externalId``
(the identity provider's own id, kept as ``idp_id``) and its members'
ids (users' or groups': refs are ids, so nesting works as a directory's does). Member changes
are set operations on the ids, so a PATCH that adds or removes thousands of members costs one
pass; they take RFC 7644's shapes and the ones Entra ID and Okta send:

- ``add`` / ``replace`` with path ``members`` and a list of ``{"value": id}``;
- ``remove`` with path ``members[value eq "id"]``, or (Entra ID) path ``members`` and a list
  of ``{"value": id}``, or path ``members`` alone (every member);
- no path and a value object with ``members`` and/or ``displayName`` (Okta's replace).

Any other operation (``displayName``, ``externalId``) goes through scim2-models' PatchOp on
the group without its members.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, Group, GroupMember, Meta, PatchOp, SCIMException

from dirsync.model import DirectoryGroup, GroupChange
from dirsync.scim.errors import ScimError, from_foreign, invalid_value

_MEMBER_FILTER = re.compile(
    r'^\s*members\s*\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]\s*$', re.IGNORECASE
)


def directory_group(group: Group, group_id: str) -> DirectoryGroup:
    if not group.display_name or not group.display_name.strip():
        raise invalid_value("displayName is required")
    return DirectoryGroup(
        external_id=group_id,
        ref=group_id,
        name=group.display_name.strip(),
        member_refs=frozenset(str(m.value) for m in group.members or () if m.value),
        idp_id=(group.external_id or "").strip() or None,
    )


def group_document(
    stored: DirectoryGroup,
    *,
    base_url: str,
    kinds: Mapping[str, str],
    selection: Any | None = None,
) -> dict[str, Any]:
    """The group as a response carries it; ``kinds`` says which member refs are users and
    which are groups (for each member's ``type`` and ``$ref``)."""
    members = []
    for ref in sorted(stored.member_refs):
        kind = kinds.get(ref)
        where = f"{base_url}/{kind}s/{ref}" if kind else None
        members.append(GroupMember.model_construct(value=ref, ref=where, type=kind))
    resource = Group(
        id=stored.external_id,
        external_id=stored.idp_id,
        display_name=stored.name,
        members=members or None,
        meta=Meta(resource_type="Group", location=f"{base_url}/Groups/{stored.external_id}"),
    )
    document: dict[str, Any] = resource.model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=selection
    )
    return document


@dataclass(frozen=True, slots=True)
class GroupPatch:
    """A parsed group PATCH: member changes as sets, the rest for scim2-models."""

    others: tuple[dict[str, Any], ...]
    #: the operations on members, in order: (op, ids or None for "all")
    member_ops: tuple[tuple[str, frozenset[str] | None], ...]

    @property
    def by_difference(self) -> bool:
        """Whether the PATCH only adds and removes named members: then it is what it names,
        and the group's other members need not be read (``change``). A ``replace`` of the
        members, a ``remove`` of all of them or a change of another attribute takes the
        group whole (``apply``)."""
        return not self.others and all(
            op in ("add", "remove") and ids is not None for op, ids in self.member_ops
        )

    def change(self, group: DirectoryGroup, present: frozenset[str]) -> GroupChange:
        """The PATCH as a partial change of ``group`` (read without its members), given which
        of the refs it names the group has (``present``): the refs it really adds and really
        removes, the last operation on a ref deciding, as applying them in order does."""
        added: set[str] = set()
        removed: set[str] = set()
        for op, ids in self.member_ops:
            named = ids or frozenset()
            if op == "add":
                added |= named
                removed -= named
            else:
                removed |= named
                added -= named
        return GroupChange(
            external_id=group.external_id,
            ref=group.ref,
            added_refs=frozenset(added - present),
            removed_refs=frozenset(removed & present),
        )

    @property
    def named_refs(self) -> frozenset[str]:
        """Every member ref the PATCH names."""
        return frozenset().union(*(ids or frozenset() for _, ids in self.member_ops))

    def apply(self, group: DirectoryGroup) -> DirectoryGroup:
        members = set(group.member_refs)
        for op, ids in self.member_ops:
            if op == "add":
                members |= ids or frozenset()
            elif op == "remove":
                members = set() if ids is None else members - ids
            else:  # replace
                members = set(ids or ())
        name, idp_id = group.name, group.idp_id
        if self.others:
            body = {"schemas": [PatchOp.__schema__], "Operations": list(self.others)}
            resource = Group(
                id=group.external_id, display_name=group.name, external_id=group.idp_id
            )
            try:
                patch = PatchOp[Group].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
                patch.patch(resource)
            except (SCIMException, ValidationError) as exc:
                raise from_foreign(exc) from None
            name = (resource.display_name or "").strip() or group.name
            idp_id = (resource.external_id or "").strip() or None
        return DirectoryGroup(
            external_id=group.external_id,
            ref=group.ref,
            name=name,
            member_refs=frozenset(members),
            idp_id=idp_id,
        )


def parse_group_patch(body: Any) -> GroupPatch:
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        raise ScimError(400, "a PATCH needs an Operations list", scim_type="invalidSyntax")
    others: list[dict[str, Any]] = []
    member_ops: list[tuple[str, frozenset[str] | None]] = []
    for operation in body["Operations"]:
        if not isinstance(operation, dict):
            raise ScimError(400, "an operation is not an object", scim_type="invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "remove", "replace"):
            raise ScimError(400, f"unknown op {operation.get('op')!r}", scim_type="invalidSyntax")
        path = operation.get("path")
        value = operation.get("value")
        if isinstance(path, str) and path.strip().lower() == "members":
            if op == "remove" and value is None:
                member_ops.append(("remove", None))
            else:
                member_ops.append((op, _ids(value)))
        elif isinstance(path, str) and (match := _MEMBER_FILTER.match(path)):
            if op != "remove":
                raise ScimError(400, f"{op} on {path} is not supported", scim_type="invalidPath")
            member_ops.append(("remove", frozenset({str(json.loads(match.group(1)))})))
        elif path is None and isinstance(value, dict):
            rest = {k: v for k, v in value.items() if k.lower() != "members"}
            for key, members in value.items():
                if key.lower() == "members":
                    member_ops.append((op, _ids(members)))
            if rest:
                others.append({"op": op, "value": rest})
        else:
            others.append(operation)
    return GroupPatch(others=tuple(others), member_ops=tuple(member_ops))


def _ids(value: Any) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    ids = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise invalid_value('members are given as [{"value": "<id>"}, ...]')
        ids.add(item["value"])
    return frozenset(ids)
