"""``[organization.source]`` with ``type = "active_directory"``: the LDAP settings with AD's
defaults, a list of domain controllers, encrypted binds and AD's own incremental modes.

Like the LDAP settings, importable without the transport: the config validates with this
class alone.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, field_validator

from dirsync.connectors.ldap.settings import LdapSourceSettings


def _url_list(value: object) -> object:
    """``url = ["ldaps://dc1", "ldaps://dc2"]`` → ``"ldaps://dc1, ldaps://dc2"``."""
    if isinstance(value, list | tuple):
        return ", ".join(str(item).strip() for item in value)
    return value


class ActiveDirectorySourceSettings(LdapSourceSettings):
    type: Literal["active_directory"]  # type: ignore[assignment]  # narrows the parent's tag
    #: one URL or a list of domain controllers, tried in order (failover on connection failure)
    url: Annotated[str, BeforeValidator(_url_list)]
    user_object_class: str = "user"
    group_object_class: str = "group"
    username_attribute: str = "sAMAccountName"
    external_id_attribute: str = "objectGUID"
    #: the email when email_attribute (mail) is empty
    email_fallback_attribute: str = "userPrincipalName"
    #: users whose accountExpires has passed count as disabled
    expired_is_disabled: bool = True
    #: "auto": DirSync when the account may replicate changes, else uSNChanged polling.
    #: AD's mechanisms differ from OpenLDAP's (syncrepl, modifyTimestamp), so the choices do too.
    incremental: Literal["auto", "dirsync", "usn", "off"] = "auto"  # type: ignore[assignment]
    #: also ask the DC for each group's transitive members (LDAP_MATCHING_RULE_IN_CHAIN)
    nested_groups_in_chain: bool = False

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:  # overrides the parent's: a list is allowed
        urls = [u.strip() for u in value.split(",") if u.strip()]
        if not urls:
            raise ValueError("name at least one domain controller URL")
        for url in urls:
            if not re.match(r"^ldaps?://[^/\s]+/?$", url, re.IGNORECASE):
                raise ValueError(
                    f"{url!r} is not an LDAP URL; use ldap://host[:port] or ldaps://host[:port]"
                )
        return ", ".join(urls)

    @property
    def urls(self) -> tuple[str, ...]:  # "ldaps://dc1, ldaps://dc2": each domain controller
        return tuple(u.strip() for u in self.url.split(",") if u.strip())

    def for_url(self, url: str) -> ActiveDirectorySourceSettings:
        """These settings for one domain controller."""
        return self.model_copy(update={"url": url})
