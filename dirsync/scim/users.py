"""SCIM User resources ↔ the directory users the planner takes. Pure.

What dirsync keeps of a pushed user is what the mapping uses, as a directory read does: the id
(dirsync assigns it; the member's external id and the ref groups name it by), ``userName``,
the address, one display name, ``active`` and ``externalId`` (the identity provider's own
id, kept as ``idp_id``). The address is the primary email (else the work
email, else the first), or ``userName`` when it is an address, as Entra's ``mail`` with its
user principal name as fallback. The name is ``displayName``, else ``name.formatted``, else
the given and family names. A user read back carries exactly these; other attributes are
accepted and not kept. A user without an address is kept and not invited (a warning says so),
as a directory user without one is.
"""

from __future__ import annotations

from typing import Any

from scim2_models import Context, Email, EnterpriseUser, Meta, ResponseParameters, User

from dirsync.model import DirectoryUser
from dirsync.scim.errors import invalid_value

#: the User resource as identity providers send it: Entra ID always names the enterprise
#: extension's schema (department, manager, ...), which is accepted and not kept
ScimUser = User[EnterpriseUser]


def email_of(user: User[Any]) -> str | None:
    """The member's address: the primary email, a work email, any email, or the user name."""
    emails = [e for e in user.emails or () if e.value]
    chosen = (
        next((e for e in emails if e.primary), None)
        or next((e for e in emails if str(e.type or "").lower() == "work"), None)
        or (emails[0] if emails else None)
    )
    if chosen is not None and chosen.value:
        return str(chosen.value).strip()
    if user.user_name and "@" in user.user_name:
        return user.user_name.strip()
    return None


def name_of(user: User[Any]) -> str | None:
    if user.display_name and user.display_name.strip():
        return user.display_name.strip()
    name = user.name
    if name is None:
        return None
    if name.formatted and name.formatted.strip():
        return name.formatted.strip()
    parts = [p.strip() for p in (name.given_name, name.family_name) if p and p.strip()]
    return " ".join(parts) or None


def directory_user(user: User[Any], user_id: str) -> DirectoryUser:
    """The directory user a pushed resource stands for. One without an address is kept, as a
    directory read keeps it, and the planner leaves it out with a warning until it has one."""
    if not user.user_name or not user.user_name.strip():
        raise invalid_value("userName is required")
    return DirectoryUser(
        external_id=user_id,
        ref=user_id,
        username=user.user_name.strip(),
        email=email_of(user),
        name=name_of(user),
        disabled=user.active is False,
        idp_id=_idp_id(user.external_id),
    )


def _idp_id(external_id: str | None) -> str | None:
    """The identity provider's id as kept: an empty one is none."""
    return external_id.strip() or None if external_id else None


def scim_user(stored: DirectoryUser, *, location: str, for_patch: bool = False) -> User[Any]:
    """The resource a stored user is read back as. ``for_patch``: the one a PATCH applies to,
    whose address is the primary work email, so that the paths Entra ID sends
    (``emails[type eq "work"].value``) find it."""
    email = _email(stored.email, for_patch=for_patch)
    return ScimUser(
        id=stored.external_id,
        external_id=stored.idp_id,
        user_name=stored.username or stored.email or stored.external_id,
        display_name=stored.name,
        active=not stored.disabled,
        emails=[email] if email is not None else None,
        meta=Meta(resource_type="User", location=location),
    )


def _email(address: str | None, *, for_patch: bool) -> Email | None:
    if address is None:
        return None
    # the address as it was pushed (validated then), or a user name that was one
    if for_patch:
        return Email.model_construct(value=address, type=Email.Type.work, primary=True)
    return Email.model_construct(value=address)


def user_document(
    stored: DirectoryUser,
    *,
    location: str,
    selection: ResponseParameters[Any] | None = None,
) -> dict[str, Any]:
    """The resource as a response carries it; ``selection``: the client's ``attributes`` or
    ``excludedAttributes``."""
    document: dict[str, Any] = scim_user(stored, location=location).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=selection
    )
    return document
