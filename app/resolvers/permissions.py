"""Permission classes declared on fields. Authentication failures carry ``extensions.code``."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from app.resolvers.context import Info
from app.services.errors import Forbidden


class IsAuthenticated(BasePermission):
    """Any valid user token or API key. Missing or bad credentials raise ``UNAUTHENTICATED``."""

    message = "This field needs credentials."
    error_extensions = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.require_principal()
        return True


class IsUser(BasePermission):
    """A user (SPA) token: machine keys may not use this field."""

    message = "This field is for users of the back office, not API keys."

    def on_unauthorized(self) -> None:
        raise Forbidden(self.message)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return (await info.context.require_principal()).is_user


class HasScope(BasePermission):
    """An API key carrying ``scope`` (the connector's and partners' fields)."""

    error_extensions = {"code": "FORBIDDEN"}

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.message = f"This field needs an API key with the {scope!r} scope."

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = await info.context.require_principal()
        if not principal.has_scope(self.scope):
            raise Forbidden(self.message, required_scope=self.scope)
        return True
