"""What the endpoint says about itself: ``/ServiceProviderConfig``, ``/ResourceTypes``,
``/Schemas`` (RFC 7644 §4), built from scim2-models' own descriptions of its resources."""

from __future__ import annotations

from typing import Any

from scim2_models import (
    Attribute,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    Group,
    Meta,
    Patch,
    ResourceType,
    ServiceProviderConfig,
    Sort,
)

from dirsync.scim.listing import MAX_RESULTS
from dirsync.scim.users import ScimUser

#: the resources served, by the name of their endpoint
RESOURCES: dict[str, Any] = {"Users": ScimUser, "Groups": Group}
#: what dirsync keeps of each resource, attribute → the sub-attributes kept (None: all); the
#: schemas published list these only, so that a client knows what reads back (the rest of a
#: request, the enterprise extension Entra ID sends included, is accepted and not kept)
KEPT: dict[str, dict[str, tuple[str, ...] | None]] = {
    "Users": {
        "userName": None,
        "displayName": None,
        "active": None,
        "emails": ("value",),  # one address: the member's
    },
    "Groups": {"displayName": None, "members": ("value", "$ref", "type")},
}


def service_provider_config(base_url: str) -> dict[str, Any]:
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="The organization's token (token_file in its source section)",
                primary=True,
            )
        ],
        meta=Meta(
            resource_type="ServiceProviderConfig", location=f"{base_url}/ServiceProviderConfig"
        ),
    )
    document: dict[str, Any] = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return document


def resource_types(base_url: str) -> list[dict[str, Any]]:
    documents = []
    for endpoint, model in RESOURCES.items():
        described = ResourceType.from_resource(model)
        described.schema_extensions = None  # accepted, not kept (see KEPT)
        described.meta = Meta(
            resource_type="ResourceType", location=f"{base_url}/ResourceTypes/{described.id}"
        )
        assert described.endpoint == f"/{endpoint}"
        documents.append(described.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return documents


def schemas(base_url: str) -> list[dict[str, Any]]:
    documents = []
    for endpoint, model in RESOURCES.items():
        schema = model.to_schema()
        kept = KEPT[endpoint]
        schema.attributes = [
            _kept_attribute(a, kept[a.name]) for a in schema.attributes or () if a.name in kept
        ]
        schema.meta = Meta(resource_type="Schema", location=f"{base_url}/Schemas/{schema.id}")
        documents.append(schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return documents


def _kept_attribute(attribute: Attribute, sub_attributes: tuple[str, ...] | None) -> Attribute:
    if sub_attributes is None or not attribute.sub_attributes:
        return attribute
    kept = [a for a in attribute.sub_attributes if a.name in sub_attributes]
    return attribute.model_copy(update={"sub_attributes": kept})
