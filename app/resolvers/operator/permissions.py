"""Operator scopes on fields: ``extensions=needs(TENANTS_WRITE)``. A key without the scope gets a top-level
``FORBIDDEN`` naming it (``extensions.requiredScopes``), as on ``/graphql``."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from app.auth.operator import OPERATOR_SCOPES
from app.i18n import _
from app.resolvers.operator.context import OperatorInfo
from app.services.errors import ErrorCode, Forbidden


class OperatorScope(BasePermission):
    error_extensions = {"code": ErrorCode.FORBIDDEN}

    def __init__(self, scope: str) -> None:
        assert scope in OPERATOR_SCOPES, f"unknown operator scope {scope}"
        self.scope = scope
        self.text = _("This field needs an operator key with the {scope} scope.", scope=repr(scope))
        self.message = str(self.text)

    async def has_permission(self, source: Any, info: OperatorInfo, **kwargs: Any) -> bool:
        if self.scope not in info.context.operator.scopes:
            raise Forbidden(self.text, requiredScopes=[self.scope])
        return True


def needs(scope: str) -> list[FieldExtension]:
    """A field's access rule in the operator API: operator keys carrying ``scope``."""
    return [PermissionExtension(permissions=[OperatorScope(scope)], use_directives=False)]


def describe_operator_access(root: type) -> None:
    """Append "Access: ..." to each root field's description, as ``/graphql`` does."""
    for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        who = "any valid operator key"
        for extension in field.extensions:
            for permission in getattr(extension, "permissions", ()):
                if isinstance(permission, OperatorScope):
                    who = f"operator keys with the `{permission.scope}` scope"
        if "\n\nAccess: " not in (field.description or ""):
            field.description = f"{field.description or ''}\n\nAccess: {who}.".lstrip()
