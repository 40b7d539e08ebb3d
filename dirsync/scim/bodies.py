"""A request's JSON body and query parameters as scim2-models validates them, for every handler.

The body arrives read (at most ``app.MAX_BODY`` bytes) and decoded from JSON by ``app``; here
it is checked to be an object and validated as the resource or message the request carries,
in the scim2-models context of the request (creation, replacement, PATCH, search). A problem
is answered as RFC 7644 §3.12 says (``errors.from_foreign``: the first problem, never the
input it was about).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError
from scim2_models import Context, ResponseParameters, SCIMException

from dirsync.scim.errors import ScimError, from_foreign

T = TypeVar("T")


def parsed(model: type[T], body: Any, context: Context) -> T:
    """``body`` validated as ``model`` in ``context``, or a ``ScimError`` (400 and its
    ``scimType``) saying what is wrong with it."""
    if not isinstance(body, dict):
        raise ScimError(400, "the request body is not a JSON object", scim_type="invalidSyntax")
    try:
        return model.model_validate(body, scim_ctx=context)  # type: ignore[attr-defined]
    except (SCIMException, ValidationError) as exc:
        raise from_foreign(exc) from None


def selection_of(params: dict[str, Any]) -> ResponseParameters[Any] | None:
    """The ``attributes`` and ``excludedAttributes`` of a query, if it has either."""
    chosen = {k: params[k] for k in ("attributes", "excludedAttributes") if params.get(k)}
    return parsed(ResponseParameters, chosen, Context.DEFAULT) if chosen else None
