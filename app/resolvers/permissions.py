"""Permission classes declared on fields. Authentication failures carry ``extensions.code``."""

from __future__ import annotations

from typing import Any

from babel.lists import format_list
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from app.auth.scopes import ALL_SCOPES
from app.i18n import DEFAULT_LOCALE, Locale, Text, _, babel_locale
from app.resolvers.context import Info
from app.services.errors import ErrorCode, Forbidden


class IsAuthenticated(BasePermission):
    """Any valid user token or API key. Missing or bad credentials raise ``UNAUTHENTICATED``."""

    message = "This field needs credentials."  # never shown: a caller without any gets UNAUTHENTICATED
    error_extensions = {"code": ErrorCode.UNAUTHENTICATED}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.require_principal()
        return True


class RequireScope(BasePermission):
    """Who may use a field: users of the back office (when ``users``), and API keys carrying one of
    ``scopes``. Anyone else with valid credentials gets ``FORBIDDEN`` (naming the scopes that would
    do); without credentials, ``UNAUTHENTICATED``. What a user's role allows is the service's rule
    (``NOT_ADMIN``). The table of scopes and fields is in docs/security.md, "Who may read what"."""

    error_extensions = {"code": ErrorCode.FORBIDDEN}

    def __init__(self, *scopes: str, users: bool = True) -> None:
        unknown = set(scopes) - ALL_SCOPES
        assert not unknown, f"unknown scopes: {unknown}"
        self.scopes = scopes
        self.users = users
        self.message = str(self.refusal(DEFAULT_LOCALE))

    def refusal(self, locale: Locale) -> Text:
        """Why the caller may not use the field, naming the scopes that would do, in ``locale``."""
        if not self.scopes:
            return _("This field is for users of the back office, not API keys.")
        needed = format_list([repr(scope) for scope in self.scopes], style="or", locale=babel_locale(locale))
        if self.users:
            return _("This field needs a user or an API key with the {scopes} scope.", scopes=needed)
        return _("This field needs an API key with the {scopes} scope.", scopes=needed)

    @property
    def who(self) -> str:
        """Who may call, for the field's description (a partner reads it in GraphiQL)."""
        keys = " or ".join(f"`{scope}`" for scope in self.scopes)
        if not self.scopes:
            return "signed-in users of the back office (not API keys)"
        if not self.users:
            return f"API keys with the {keys} scope (not users)"
        return f"signed-in users of the back office, and API keys with the {keys} scope"

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = await info.context.require_principal()
        if principal.is_user:
            allowed = self.users
        else:
            allowed = any(principal.has_scope(scope) for scope in self.scopes)
        if not allowed:
            # camelCase like every other key of ``extensions`` (retryAfter, maxBytes, requestId).
            raise Forbidden(self.refusal(info.context.current_locale()), requiredScopes=list(self.scopes))
        return True


def allow(*scopes: str, users: bool = True) -> list[FieldExtension]:
    """A field's access rule: ``extensions=allow(TENANT_READ)`` (users and keys with tenant:read),
    ``allow(QUOTA_CHECK, users=False)`` (keys with quota:check only), ``allow()`` (users only)."""
    return [PermissionExtension(permissions=[RequireScope(*scopes, users=users)], use_directives=False)]


def describe_access(root: type) -> None:
    """Append to each field of a root type who may call it: introspection then tells a partner what
    ``allow(...)`` enforces (issue 12). Called once per root type, before the schema is built."""
    for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        who = "public, no credentials needed"
        for extension in field.extensions:
            for permission in getattr(extension, "permissions", ()):
                if isinstance(permission, RequireScope):
                    who = permission.who
                elif isinstance(permission, IsAuthenticated):
                    who = "any valid credentials, a user token or an API key"
        if "\n\nAccess: " not in (field.description or ""):
            field.description = f"{field.description or ''}\n\nAccess: {who}.".lstrip()
