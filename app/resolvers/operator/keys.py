"""Who is calling the operator API, and the audit of what operators did."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from app.auth.operator import OPS_READ
from app.models.operators import OperatorAuditEntry
from app.resolvers.common import (
    AFTER_HELP,
    DEFAULT_PAGE_SIZE,
    PAGE_SIZE_HELP,
    Connection,
    page_size,
)
from app.resolvers.ids import global_id
from app.resolvers.operator.context import OperatorInfo
from app.resolvers.operator.permissions import needs
from app.services import operator_audit


@strawberry.type(description="An operator key: the credential of one of the vendor's staff or systems.")
class OperatorKey:
    name: str = strawberry.field(description="What the key is for, as given at its creation.")
    prefix: str = strawberry.field(description="The key's public prefix (`tgo_<prefix>_...`), as audited.")
    scopes: list[str] = strawberry.field(description='What the key may do: "tenants:write", "ops:read"...')
    created_at: dt.datetime = strawberry.field(description="When the key was created.")


@strawberry.type(description="One operator action, with the key that did it.")
class OperatorAuditEntryType:
    id: strawberry.ID = strawberry.field(description="Opaque id of the entry.")
    operator_key_prefix: str = strawberry.field(description="The prefix of the operator key that acted.")
    action: str = strawberry.field(description='What was done: "tenant.create", "coupon.deactivate"...')
    tenant_slug: str | None = strawberry.field(description="The environment concerned, if any.")
    subject_id: str | None = strawberry.field(description="The thing changed: a slug, a code, an id.")
    details: JSON = strawberry.field(description="What changed, as recorded (never a secret).")
    created_at: dt.datetime = strawberry.field(description="When it was done.")

    @classmethod
    def of(cls, entry: OperatorAuditEntry) -> OperatorAuditEntryType:
        return cls(
            id=global_id("OperatorAuditEntry", entry.id),
            operator_key_prefix=entry.operator_key.prefix,
            action=entry.action,
            tenant_slug=entry.tenant.slug if entry.tenant is not None else None,
            subject_id=entry.subject_id,
            details=cast(JSON, entry.details),
            created_at=entry.created_at,
        )


OperatorAuditEntryType.__strawberry_definition__.name = "OperatorAuditEntry"  # type: ignore[attr-defined]


@strawberry.type(description="Operator actions, newest first, by page.")
class OperatorAuditConnection(Connection[OperatorAuditEntryType]):
    pass


@strawberry.type
class Query:
    @strawberry.field(description="The operator key of this request: its name, prefix and scopes.")
    async def operator_key(self, info: OperatorInfo) -> OperatorKey:
        key = info.context.operator.key
        return OperatorKey(
            name=key.name, prefix=key.prefix, scopes=list(key.scopes), created_at=key.created_at
        )

    @strawberry.field(description="Every operator action, newest first.", extensions=needs(OPS_READ))
    async def audit_log(
        self,
        info: OperatorInfo,
        first: Annotated[int | None, strawberry.argument(description=PAGE_SIZE_HELP)] = DEFAULT_PAGE_SIZE,
        after: Annotated[str | None, strawberry.argument(description=AFTER_HELP)] = None,
        tenant_slug: Annotated[
            str | None, strawberry.argument(description="Only the actions on this environment.")
        ] = None,
    ) -> OperatorAuditConnection | None:
        page = await operator_audit.page(first=page_size(first), after=after, tenant_slug=tenant_slug)
        return OperatorAuditConnection.from_page(page, OperatorAuditEntryType.of, after=after)
