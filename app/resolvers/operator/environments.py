"""Provisioning on the operator API: environments, their users and API keys (``app.services.provisioning``).

Every write is an idempotent upsert by a key the SaaS owns (a slug, an external id), audited with the
operator key that made it; its payload says whether anything was created or changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import strawberry

from app.auth.operator import OPS_READ, TENANTS_WRITE, USERS_WRITE
from app.models.tenancy import ApiKey, Tenant, User
from app.resolvers.account import RoleEnum
from app.resolvers.common import (
    AFTER_HELP,
    DEFAULT_PAGE_SIZE,
    PAGE_SIZE_HELP,
    Connection,
    page_size,
)
from app.resolvers.errors import Error, InvalidInputError, NotFoundError, register_errors
from app.resolvers.ids import global_id
from app.resolvers.operator.context import OperatorInfo
from app.resolvers.operator.permissions import needs
from app.services import provisioning
from app.services.provisioning import LOCALES, Provisioning

LOCALES_HELP = f"One of {', '.join(repr(locale) for locale in LOCALES)}"


def _provisioning(info: OperatorInfo) -> Provisioning:
    services = info.context.services
    return Provisioning(
        operator=info.context.operator,
        now=info.context.clock.now(),
        broadcaster=getattr(services, "broadcaster", None),
        plan_cache=getattr(services, "plan_cache", None),
        principals=getattr(services, "principals", None),
    )


def _given(value: Any) -> Any:
    """A field left out of the input: kept as it is by the service."""
    return provisioning.UNSET if value is strawberry.UNSET else value


# --- Errors ------------------------------------------------------------------------------------


@strawberry.type(description="The plan is no longer sold: no new subscription may start on it.")
class PlanUnavailableError(Error):
    pass


@strawberry.type(description="The plan has no price in the requested currency.")
class CurrencyNotPricedError(Error):
    priced_currencies: list[str] = strawberry.field(description="The currencies the plan is priced in.")


@strawberry.type(
    description="The currency cannot change: add-ons contracted in it still count (their prices and the "
    "invoices billing them are in it). It may change once they have ended."
)
class CurrencyLockedError(Error):
    currency: str = strawberry.field(description="The environment's currency, which stays.")
    add_on_codes: list[str] = strawberry.field(description="The add-ons contracted in it that still count.")


@strawberry.type(description="Another user, of this environment or another, already has this e-mail address.")
class EmailTakenError(Error):
    pass


register_errors(
    {
        provisioning.PlanUnavailable: PlanUnavailableError,
        provisioning.CurrencyNotPriced: CurrencyNotPricedError,
        provisioning.CurrencyLocked: CurrencyLockedError,
        provisioning.EmailTaken: EmailTakenError,
    }
)


# --- Types ---------------------------------------------------------------------------------------


@strawberry.type(description="A user of an environment, as provisioned by the SaaS.")
class EnvironmentUser:
    id: strawberry.ID = strawberry.field(description="Opaque id of the user.")
    external_id: str | None = strawberry.field(
        description="The SaaS's own id of the user; null: not provisioned."
    )
    email: str = strawberry.field(description="The e-mail address, lower-cased; unique across environments.")
    name: str = strawberry.field(description="The user's name.")
    role: RoleEnum = strawberry.field(description="What the user may do.")  # type: ignore[valid-type]
    locale: str | None = strawberry.field(description="The user's language; null: the environment's.")
    active: bool = strawberry.field(description="False: the user's tokens are refused.")

    @classmethod
    def of(cls, user: User) -> EnvironmentUser:
        return cls(
            id=global_id("User", user.id),
            external_id=user.external_id,
            email=user.email,
            name=user.name,
            role=user.role,
            locale=user.locale,
            active=user.is_active,
        )


@strawberry.type(description="An API key of an environment (never its secret, nor its hash).")
class EnvironmentApiKey:
    prefix: str = strawberry.field(description="The key's public prefix (`tg_<prefix>_...`).")
    name: str = strawberry.field(description="What the key is for.")
    scopes: list[str] = strawberry.field(description='What the key may do: "usage:report", "quota:check"...')
    created_at: dt.datetime = strawberry.field(description="When the key was created.")
    revoked_at: dt.datetime | None = strawberry.field(description="When it was revoked; null: it works.")

    @classmethod
    def of(cls, key: ApiKey) -> EnvironmentApiKey:
        return cls(
            prefix=key.prefix,
            name=key.name,
            scopes=list(key.scopes),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


@strawberry.type(description="An environment (a tenant): one store or ERP installation of the SaaS.")
class Environment:
    id: strawberry.ID = strawberry.field(description="Opaque id of the environment.")
    slug: str = strawberry.field(description="The SaaS's key of the environment.")
    name: str = strawberry.field(description="Its display name.")
    currency: str = strawberry.field(description='Its ISO 4217 currency: "EUR", "BRL".')
    locale: str = strawberry.field(description='The default language of its users and e-mails: "pt-BR".')
    erp: str | None = strawberry.field(description='The ERP it runs ("bling"); null: none given.')
    created_at: dt.datetime = strawberry.field(description="Its creation date: decides store eligibility.")
    billing_anchor_day: int = strawberry.field(description="The day of the month its billing periods start.")
    active: bool = strawberry.field(description="False: deactivated, its credentials are refused.")
    tenant: strawberry.Private[Tenant]

    @strawberry.field(description="The code of its plan; null: it has no plan subscription.")
    async def plan_code(self, info: OperatorInfo) -> str | None:
        return await info.context.plan_code_of.load(self.tenant.id)

    @strawberry.field(description="Its users, by e-mail address.")
    async def users(self, info: OperatorInfo) -> list[EnvironmentUser]:
        return [EnvironmentUser.of(user) for user in await info.context.users_of.load(self.tenant.id)]

    @strawberry.field(description="Its API keys, revoked ones included, oldest first.")
    async def api_keys(self, info: OperatorInfo) -> list[EnvironmentApiKey]:
        return [EnvironmentApiKey.of(key) for key in await info.context.api_keys_of.load(self.tenant.id)]

    @classmethod
    def of(cls, tenant: Tenant) -> Environment:
        return cls(
            id=global_id("Environment", tenant.id),
            slug=tenant.slug,
            name=tenant.name,
            currency=tenant.currency,
            locale=tenant.locale,
            erp=tenant.erp,
            created_at=tenant.created_at,
            billing_anchor_day=tenant.billing_anchor_day,
            active=tenant.is_active,
            tenant=tenant,
        )


@strawberry.type(description="Environments by slug, by page.")
class EnvironmentConnection(Connection[Environment]):
    pass


# --- Inputs --------------------------------------------------------------------------------------


@strawberry.input(
    description="An environment as the SaaS knows it; left-out optional fields stay as they are."
)
class ProvisionEnvironmentInput:
    slug: str = strawberry.field(
        description="The environment's key: 2 to 64 lowercase letters, digits and hyphens, starting and "
        "ending with a letter or a digit."
    )
    name: str = strawberry.field(description="Its display name: 1 to 200 characters.")
    currency: str = strawberry.field(
        description="Its ISO 4217 currency: one its plan is priced in (EUR or BRL today). It cannot change "
        "while add-ons contracted in the current currency still count."
    )
    plan_code: str = strawberry.field(
        description="Its plan. A new subscription (a new environment, a change of plan) needs a plan that "
        "is sold, and takes its price in the environment's currency."
    )
    locale: str | None = strawberry.field(
        default=strawberry.UNSET, description=f'{LOCALES_HELP}. Left out: kept ("en" for a new one).'
    )
    erp: str | None = strawberry.field(
        default=strawberry.UNSET,
        description='The ERP it runs ("bling"): 1 to 64 lowercase letters, digits, dots, hyphens, '
        "underscores. Left out: kept; null: none.",
    )
    created_at: dt.datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="Its creation date, not in the future: decides store eligibility. Left out: kept (now "
        "for a new one).",
    )
    billing_anchor_day: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="The day of the month billing periods start, 1 to 31. Left out: kept (1 for a new one).",
    )


@strawberry.input(description="A user as the SaaS knows it, found by its external id.")
class ProvisionUserInput:
    environment_slug: str = strawberry.field(description="The slug of the user's environment.")
    external_id: str = strawberry.field(description="The SaaS's own id of the user: 1 to 255 characters.")
    email: str = strawberry.field(
        description="E-mail address (stored lower-cased), unique across environments."
    )
    name: str = strawberry.field(description="The user's name: 1 to 200 characters.")
    role: RoleEnum = strawberry.field(description="What the user may do.")  # type: ignore[valid-type]
    locale: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"{LOCALES_HELP}. Left out: kept; null: the environment's."
    )
    active: bool = strawberry.field(
        default=True, description="False deactivates the user: their tokens are refused from then on."
    )


# --- Payloads ------------------------------------------------------------------------------------

CREATED_HELP = "Whether this call created it (false: it existed)."
CHANGED_HELP = "The input fields this call changed; empty: nothing changed (a repeated call)."
STATE_CHANGED_HELP = "Whether this call changed it (false: it was already so)."


@strawberry.type(description="The environment as provisioned.")
class ProvisionEnvironmentSuccess:
    environment: Environment = strawberry.field(description="The environment, as it now stands.")
    created: bool = strawberry.field(description=CREATED_HELP)
    changed_fields: list[str] = strawberry.field(description=CHANGED_HELP)


@strawberry.type(description="The environment deactivated: its credentials are refused, its data kept.")
class DeactivateEnvironmentSuccess:
    environment: Environment = strawberry.field(description="The environment, inactive.")
    changed: bool = strawberry.field(description=STATE_CHANGED_HELP)


@strawberry.type(description="The environment reactivated: its credentials and data work again.")
class ReactivateEnvironmentSuccess:
    environment: Environment = strawberry.field(description="The environment, active.")
    changed: bool = strawberry.field(description=STATE_CHANGED_HELP)


@strawberry.type(description="The user as provisioned.")
class ProvisionUserSuccess:
    user: EnvironmentUser = strawberry.field(description="The user, as they now stand.")
    created: bool = strawberry.field(description=CREATED_HELP)
    changed_fields: list[str] = strawberry.field(description=CHANGED_HELP)


@strawberry.type(description="The user deactivated: their tokens are refused, their live sessions ended.")
class DeactivateUserSuccess:
    user: EnvironmentUser = strawberry.field(description="The user, inactive.")
    changed: bool = strawberry.field(description=STATE_CHANGED_HELP)


@strawberry.type(description="A new API key: its secret is shown here, once, and never again.")
class CreateApiKeySuccess:
    api_key: EnvironmentApiKey = strawberry.field(description="The key.")
    plaintext: str = strawberry.field(description="The whole key (`tg_...`): store it now, it is not kept.")


@strawberry.type(description="The API key revoked: refused from now on, its live sessions ended.")
class RevokeApiKeySuccess:
    api_key: EnvironmentApiKey = strawberry.field(description="The key, with its revocation date.")
    changed: bool = strawberry.field(description="Whether this call revoked it (false: it already was).")


EnvironmentResult = Annotated[
    Environment | NotFoundError | InvalidInputError,
    strawberry.union("EnvironmentResult", description="The environment, or why there is none."),
]
ProvisionEnvironmentResult = Annotated[
    ProvisionEnvironmentSuccess
    | InvalidInputError
    | NotFoundError
    | PlanUnavailableError
    | CurrencyNotPricedError
    | CurrencyLockedError,
    strawberry.union("ProvisionEnvironmentResult", description="The environment, or why nothing changed."),
]
DeactivateEnvironmentResult = Annotated[
    DeactivateEnvironmentSuccess | NotFoundError | InvalidInputError,
    strawberry.union("DeactivateEnvironmentResult", description="The environment, or why nothing changed."),
]
ReactivateEnvironmentResult = Annotated[
    ReactivateEnvironmentSuccess | NotFoundError | InvalidInputError,
    strawberry.union("ReactivateEnvironmentResult", description="The environment, or why nothing changed."),
]
ProvisionUserResult = Annotated[
    ProvisionUserSuccess | InvalidInputError | NotFoundError | EmailTakenError,
    strawberry.union("ProvisionUserResult", description="The user, or why nothing changed."),
]
DeactivateUserResult = Annotated[
    DeactivateUserSuccess | InvalidInputError | NotFoundError,
    strawberry.union("DeactivateUserResult", description="The user, or why nothing changed."),
]
CreateApiKeyResult = Annotated[
    CreateApiKeySuccess | InvalidInputError | NotFoundError,
    strawberry.union("CreateApiKeyResult", description="The new key, or why none was made."),
]
RevokeApiKeyResult = Annotated[
    RevokeApiKeySuccess | InvalidInputError | NotFoundError,
    strawberry.union("RevokeApiKeyResult", description="The revoked key, or why nothing changed."),
]

SlugArgument = Annotated[str, strawberry.argument(description="The environment's slug.")]
EnvironmentSlugArgument = Annotated[
    str, strawberry.argument(description="The slug of the key's environment.")
]


@strawberry.type
class Query:
    @strawberry.field(description="One environment by its slug.", extensions=needs(OPS_READ))
    async def environment(self, slug: SlugArgument) -> EnvironmentResult | None:
        return Environment.of(await provisioning.environment(slug))

    @strawberry.field(description="Every environment, by slug.", extensions=needs(OPS_READ))
    async def environments(
        self,
        first: Annotated[int | None, strawberry.argument(description=PAGE_SIZE_HELP)] = DEFAULT_PAGE_SIZE,
        after: Annotated[str | None, strawberry.argument(description=AFTER_HELP)] = None,
        active: Annotated[
            bool | None, strawberry.argument(description="Only the active (true) or inactive (false) ones.")
        ] = None,
    ) -> EnvironmentConnection | None:
        page = await provisioning.environments(first=page_size(first), after=after, active=active)
        return EnvironmentConnection.from_page(page, Environment.of, after=after)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Create or update an environment by its slug, idempotently: the same input twice "
        "changes nothing the second time. A change of plan is announced by webhooks (plan.changed, "
        "limits.changed).",
        extensions=needs(TENANTS_WRITE),
    )
    async def provision_environment(
        self,
        info: OperatorInfo,
        input: Annotated[
            ProvisionEnvironmentInput, strawberry.argument(description="The environment as the SaaS has it.")
        ],
    ) -> ProvisionEnvironmentResult | None:
        spec = provisioning.EnvironmentInput(
            slug=input.slug,
            name=input.name,
            currency=input.currency,
            plan_code=input.plan_code,
            locale=_given(input.locale),
            erp=_given(input.erp),
            created_at=_given(input.created_at),
            billing_anchor_day=_given(input.billing_anchor_day),
        )
        outcome = await provisioning.provision_environment(_provisioning(info), spec)
        return ProvisionEnvironmentSuccess(
            environment=Environment.of(outcome.tenant),
            created=outcome.created,
            changed_fields=outcome.changed_fields,
        )

    @strawberry.mutation(
        description="Deactivate an environment: its API keys and users are refused (TENANT_INACTIVE) and "
        "its live sessions closed at once; its data is kept.",
        extensions=needs(TENANTS_WRITE),
    )
    async def deactivate_environment(
        self, info: OperatorInfo, slug: SlugArgument
    ) -> DeactivateEnvironmentResult | None:
        tenant, changed = await provisioning.set_environment_active(_provisioning(info), slug, active=False)
        return DeactivateEnvironmentSuccess(environment=Environment.of(tenant), changed=changed)

    @strawberry.mutation(
        description="Reactivate an environment: its credentials work again, with all its data.",
        extensions=needs(TENANTS_WRITE),
    )
    async def reactivate_environment(
        self, info: OperatorInfo, slug: SlugArgument
    ) -> ReactivateEnvironmentResult | None:
        tenant, changed = await provisioning.set_environment_active(_provisioning(info), slug, active=True)
        return ReactivateEnvironmentSuccess(environment=Environment.of(tenant), changed=changed)

    @strawberry.mutation(
        description="Create, update or deactivate a user by the SaaS's external id, idempotently. A user of "
        "the environment with the same e-mail and no external id is adopted.",
        extensions=needs(USERS_WRITE),
    )
    async def provision_user(
        self,
        info: OperatorInfo,
        input: Annotated[ProvisionUserInput, strawberry.argument(description="The user as the SaaS has it.")],
    ) -> ProvisionUserResult | None:
        spec = provisioning.UserInput(
            environment_slug=input.environment_slug,
            external_id=input.external_id,
            email=input.email,
            name=input.name,
            role=input.role,
            locale=_given(input.locale),
            active=input.active,
        )
        outcome = await provisioning.provision_user(_provisioning(info), spec)
        return ProvisionUserSuccess(
            user=EnvironmentUser.of(outcome.user),
            created=outcome.created,
            changed_fields=outcome.changed_fields,
        )

    @strawberry.mutation(
        description="Deactivate a user by the SaaS's external id: their tokens are refused and their live "
        "sessions closed at once.",
        extensions=needs(USERS_WRITE),
    )
    async def deactivate_user(
        self,
        info: OperatorInfo,
        environment_slug: Annotated[
            str, strawberry.argument(description="The slug of the user's environment.")
        ],
        external_id: Annotated[str, strawberry.argument(description="The SaaS's own id of the user.")],
    ) -> DeactivateUserResult | None:
        user, changed = await provisioning.deactivate_user(_provisioning(info), environment_slug, external_id)
        return DeactivateUserSuccess(user=EnvironmentUser.of(user), changed=changed)

    @strawberry.mutation(
        description="Create an API key of an environment (its connector's, a partner's). The secret is in "
        "the answer, once.",
        extensions=needs(TENANTS_WRITE),
    )
    async def create_api_key(
        self,
        info: OperatorInfo,
        environment_slug: EnvironmentSlugArgument,
        name: Annotated[str, strawberry.argument(description="What the key is for: 1 to 200 characters.")],
        scopes: Annotated[
            list[str],
            strawberry.argument(
                description='What it may do, at least one of "usage:report", "quota:check", '
                '"process:start", "catalog:read", "tenant:read".'
            ),
        ],
    ) -> CreateApiKeyResult | None:
        key, plaintext = await provisioning.create_api_key(
            _provisioning(info), environment_slug, name=name, scopes=scopes
        )
        return CreateApiKeySuccess(api_key=EnvironmentApiKey.of(key), plaintext=plaintext)

    @strawberry.mutation(
        description="Revoke an API key of an environment: refused, and its live sessions closed, at once.",
        extensions=needs(TENANTS_WRITE),
    )
    async def revoke_api_key(
        self,
        info: OperatorInfo,
        environment_slug: EnvironmentSlugArgument,
        prefix: Annotated[str, strawberry.argument(description="The key's prefix (`tg_<prefix>_...`).")],
    ) -> RevokeApiKeyResult | None:
        key, changed = await provisioning.revoke_api_key(_provisioning(info), environment_slug, prefix)
        return RevokeApiKeySuccess(api_key=EnvironmentApiKey.of(key), changed=changed)
