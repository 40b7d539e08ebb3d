"""SCIM User resources ↔ the directory users the planner takes. Pure.

What dirsync keeps of a pushed user is what the mapping uses, as a directory read does: the id
(dirsync assigns it; the member's external id and the ref groups name it by), ``userName``,
the address, one display name and ``active``. The address is the primary email (else the work
email, else the first), or ``userName`` when it is an address, as Entra's ``mail`` with its
user principal name as fallback. The name is ``displayName``, else ``name.formatted``, else
the given and family names. A user read back carries exactly these; other attributes are
accepted and not kept.
"""

from __future__ import annotations

from typing import Any

from scim2_models import Context, Email, EnterpriseUser, Meta, User

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
    """The directory user a pushed resource stands for; a user dirsync cannot make a member
    of (no user name, no address) is refused rather than stored and skipped in silence."""
    if not user.user_name or not user.user_name.strip():
        raise invalid_value("userName is required")
    email = email_of(user)
    if email is None:
        raise invalid_value(
            "the user has no email and its userName is not an address: dirsync needs an "
            "address to invite (map mail or userPrincipalName to emails or userName)"
        )
    return DirectoryUser(
        external_id=user_id,
        ref=user_id,
        username=user.user_name.strip(),
        email=email,
        name=name_of(user),
        disabled=user.active is False,
    )


def scim_user(stored: DirectoryUser, *, location: str) -> User[Any]:
    """The resource a stored user is read back as."""
    return ScimUser(
        id=stored.external_id,
        user_name=stored.username or stored.email or stored.external_id,
        display_name=stored.name,
        active=not stored.disabled,
        emails=[Email(value=stored.email, primary=True, type=Email.Type.work)]
        if stored.email
        else None,
        meta=Meta(resource_type="User", location=location),
    )


def user_document(stored: DirectoryUser, *, location: str) -> dict[str, Any]:
    document: dict[str, Any] = scim_user(stored, location=location).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    return document
