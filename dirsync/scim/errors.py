"""SCIM's error responses (RFC 7644 §3.12): a status, an optional ``scimType`` and a detail."""

from __future__ import annotations

from typing import Any

from scim2_models import Error

from dirsync.errors import DirsyncError

#: the media type of every SCIM response (RFC 7644 §8.1)
SCIM_MEDIA_TYPE = "application/scim+json"


class ScimError(DirsyncError):
    """A request the endpoint answers with an error; ``detail`` never holds a secret."""

    def __init__(self, status: int, detail: str, *, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def to_json(self) -> dict[str, Any]:
        error = Error(status=self.status, detail=self.detail, scim_type=self.scim_type)
        document: dict[str, Any] = error.model_dump()
        return document


def not_found(kind: str, resource_id: str) -> ScimError:
    return ScimError(404, f"no {kind} with id {resource_id!r}")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidValue")


def unauthorized() -> ScimError:
    # the same words for a wrong token and an unknown organization: no oracle for either
    return ScimError(401, "the bearer token is not valid for this organization")


def from_foreign(exc: Exception) -> ScimError:
    """A scim2-models or pydantic error about a request, as the endpoint answers it (the
    first problem only, and never the input it was about)."""
    from pydantic import ValidationError
    from scim2_models import SCIMException

    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False)
        error = Error.from_validation_error(errors[0]) if errors else Error(status=400)
        status = int(error.status or 400)
        return ScimError(status, error.detail or "invalid request", scim_type=error.scim_type)
    if isinstance(exc, SCIMException):
        return ScimError(exc.status, exc.detail, scim_type=exc.scim_type or None)
    raise exc
