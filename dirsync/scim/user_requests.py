"""The ``/Users`` requests: each read answered from the stored mirror, each change pushed.

A create assigns the id; a replace, PATCH or delete first reads the user it changes (under the
organization's lock, so two PATCHes of one user never lose either's change), then pushes the
result as one delta (``push.py``). ``userName`` is unique per organization, in any case, as
RFC 7643 makes it: a create or replace that would repeat one is answered 409 ``uniqueness``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, PatchOp, ResponseParameters, SCIMException, SearchRequest

from dirsync.config.settings import OrganizationSettings
from dirsync.model import DirectoryDelta, DirectoryUser
from dirsync.scim import listing
from dirsync.scim.bodies import parsed, selection_of
from dirsync.scim.errors import ScimError, from_foreign, not_found
from dirsync.scim.push import Pusher
from dirsync.scim.users import ScimUser, directory_user, scim_user, user_document
from dirsync.state.sql_store import SqlStore

#: the attributes a list of users may be filtered on
FILTERABLE = ("userName", "externalId")


@dataclass(frozen=True, slots=True)
class UserRequests:
    """The requests on one organization's users; ``base_url`` ends in ``/scim/v2/<org>``."""

    store: SqlStore
    pusher: Pusher
    organization: OrganizationSettings
    base_url: str

    @property
    def name(self) -> str:
        return self.organization.name

    def location(self, user_id: str) -> str:
        return f"{self.base_url}/Users/{user_id}"

    def document(
        self, user: DirectoryUser, selection: ResponseParameters[Any] | None = None
    ) -> dict[str, Any]:
        return user_document(user, location=self.location(user.external_id), selection=selection)

    # -- reads -------------------------------------------------------------------------------

    def get(self, user_id: str, params: dict[str, Any]) -> dict[str, Any]:
        selection = selection_of(params)
        return self.document(self._stored(user_id), selection)

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /Users``: a page, filtered or not."""
        selection = selection_of(params)
        query = listing.parse_list_query(params, FILTERABLE)
        by_id = query.attribute == "externalid"
        total, users = self.store.mirror_users(
            self.name,
            username=None if by_id else query.value,
            idp_id=query.value if by_id else None,
            offset=query.offset,
            limit=query.count,
        )
        documents = [self.document(u, selection) for u in users]
        return listing.list_response(total, query, documents)

    def search(self, body: Any) -> dict[str, Any]:
        """``POST /Users/.search``: the same list, asked in a body (RFC 7644 §3.4.3)."""
        request = parsed(SearchRequest, body, Context.SEARCH_REQUEST)
        params: dict[str, Any] = {
            "filter": str(request.filter) if request.filter is not None else None,
            "startIndex": request.start_index,
            "count": request.count,
        }
        if request.attributes:
            params["attributes"] = ",".join(str(a) for a in request.attributes)
        if request.excluded_attributes:
            params["excludedAttributes"] = ",".join(str(a) for a in request.excluded_attributes)
        return self.list({k: v for k, v in params.items() if v is not None})

    # -- changes -----------------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        resource = parsed(ScimUser, body, Context.RESOURCE_CREATION_REQUEST)
        user = directory_user(resource, uuid.uuid4().hex)
        with self.pusher.lock(self.name):
            self._unique(user)
            self._push(DirectoryDelta(users=(user,)), approvable=False)
        return self.document(user)

    def replace(self, user_id: str, body: Any) -> dict[str, Any]:
        resource = parsed(ScimUser, body, Context.RESOURCE_REPLACEMENT_REQUEST)
        user = directory_user(resource, user_id)
        with self.pusher.lock(self.name):
            self._stored(user_id)
            self._unique(user)
            self._push(DirectoryDelta(users=(user,)))
        return self.document(user)

    def patch(self, user_id: str, body: Any) -> dict[str, Any]:
        patch = parsed(PatchOp[ScimUser], body, Context.RESOURCE_PATCH_REQUEST)
        with self.pusher.lock(self.name):
            stored = self._stored(user_id)
            resource = scim_user(stored, location=self.location(user_id), for_patch=True)
            try:
                patch.patch(resource)
            except (SCIMException, ValidationError) as exc:
                raise from_foreign(exc) from None
            user = directory_user(resource, user_id)
            if user != stored:
                self._unique(user)
                self._push(DirectoryDelta(users=(user,)))
        return self.document(user)

    def delete(self, user_id: str) -> None:
        """An explicit deletion: the member is deprovisioned (``deprovision``), as a
        directory's tombstone does."""
        with self.pusher.lock(self.name):
            self._stored(user_id)
            self._push(DirectoryDelta(deleted_user_ids=frozenset({user_id})))

    # -- helpers -----------------------------------------------------------------------------

    def _stored(self, user_id: str) -> DirectoryUser:
        user = self.store.mirror_user(self.name, user_id)
        if user is None:
            raise not_found("User", user_id)
        return user

    def _unique(self, user: DirectoryUser) -> None:
        assert user.username is not None
        _, same = self.store.mirror_users(self.name, username=user.username, limit=2)
        if any(other.external_id != user.external_id for other in same):
            raise ScimError(
                409, f"a user with userName {user.username!r} exists", scim_type="uniqueness"
            )

    def _push(self, delta: DirectoryDelta, *, approvable: bool = True) -> None:
        self.pusher.push(self.name, self.organization.rules(), delta, approvable=approvable)
