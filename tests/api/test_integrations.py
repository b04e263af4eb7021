"""configureIntegration over GraphQL: declared settings, validation, secrets encrypted at rest and
never returned, PENDING -> CONFIGURED, isolation between tenants.

nova (BRL) has the Mercado Livre integration waiting for configuration in the demo data; its
declared settings are ``api_token`` (SECRET, required) and ``shop_url`` (URL, required).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.audit import AuditEntry
from app.models.billing import AddOnSubscription
from app.models.catalog import AddOn
from app.models.enums import AddOnCategory, ConfigurationStatus
from app.models.tenancy import Tenant
from app.resolvers.ids import global_id, key_of
from app.seed import DEMO_CATALOG, SeedResult
from app.services.catalog_apply import add_on_row
from app.services.catalog_file import load_path
from app.services.integrations import SECRET_MASK, SettingKind, SettingSpec, reveal_secret
from app.services.secrets import box_from_settings
from app.settings import Settings
from tests.conftest import GraphQLClient

NOVA = "admin@nova.test"
TOKEN = "APP_USR-8832-sup3r-s3cret-t0ken"
ACTIVE_ADD_ON = """
  id status configurationStatus addOn { code }
  configuration { name label kind secret required isSet value }
"""
CONFIGURE = f"""
mutation($id: ID!, $settings: JSON!) {{
  configureIntegration(activeAddOnId: $id, settings: $settings) {{
    __typename
    ... on Error {{ code message field }}
    ... on AddOnEndedError {{ endedAt }}
    ... on InvalidSettingsError {{ problems {{ field code message }} }}
    ... on ConfigureIntegrationSuccess {{ activeAddOn {{ {ACTIVE_ADD_ON} }} }}
  }}
}}
"""
MY_PLAN = f"{{ myPlan {{ ... on MyPlan {{ activeAddOns {{ {ACTIVE_ADD_ON} }} }} }} }}"


async def subscription_id(code: str, tenant: str = "nova") -> str:
    """The ``ActiveAddOn.id`` of the tenant's subscription to ``code``, as My plan shows it."""
    subscription = await AddOnSubscription.get(add_on__code=code, tenant__slug=tenant)
    return global_id("ActiveAddOn", subscription.id)


def key(active_add_on_id: str) -> str:
    """The subscription an ``ActiveAddOn.id`` names, to check the database."""
    return key_of(active_add_on_id, "ActiveAddOn", field="id")


async def stored_add_on(active_add_on_id: str) -> AddOnSubscription:
    return await AddOnSubscription.get(id=key(active_add_on_id))


async def configure(gql: GraphQLClient, add_on_id: str, settings: Any, *, as_: str = NOVA) -> dict[str, Any]:
    body = await gql.post(CONFIGURE, {"id": add_on_id, "settings": settings}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["configureIntegration"]
    return result


def setting(add_on: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in add_on["configuration"] if item["name"] == name)


def test_every_add_on_of_the_catalog_that_needs_configuration_declares_valid_settings() -> None:
    rows = [{"code": s.code, **add_on_row(s, i)} for i, s in enumerate(load_path(DEMO_CATALOG).add_ons)]
    needing = [spec for spec in rows if spec.get("requires_configuration")]
    assert {spec["code"] for spec in needing} >= {"integration-mercado-livre", "integration-webhooks"}
    for spec in needing:
        declared = [SettingSpec.of(declaration) for declaration in spec["configuration_fields"]]
        assert declared, spec["code"]
        assert len({item.name for item in declared}) == len(declared)
        assert any(item.secret for item in declared)  # each carries a credential to keep encrypted
        assert all(item.kind != SettingKind.SECRET or item.secret for item in declared)


async def test_admin_configures_a_pending_integration_and_it_becomes_configured(
    gql: GraphQLClient, demo: SeedResult, settings: Settings
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    before = await stored_add_on(add_on_id)
    assert before.configuration_status == ConfigurationStatus.PENDING

    result = await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": "https://loja.nova.example/ml"})

    assert result["__typename"] == "ConfigureIntegrationSuccess"
    add_on = result["activeAddOn"]
    assert (add_on["id"], add_on["configurationStatus"]) == (add_on_id, "CONFIGURED")
    assert setting(add_on, "shop_url") == {
        "name": "shop_url", "label": "Store URL", "kind": "URL", "secret": False, "required": True,
        "isSet": True, "value": "https://loja.nova.example/ml",
    }  # fmt: skip
    assert setting(add_on, "api_token") == {
        "name": "api_token", "label": "API token", "kind": "SECRET", "secret": True, "required": True,
        "isSet": True, "value": SECRET_MASK,
    }  # fmt: skip
    # At rest: a Fernet token, opened only by the configured key.
    stored = await stored_add_on(add_on_id)
    assert stored.configuration_status == ConfigurationStatus.CONFIGURED
    assert TOKEN not in json.dumps(stored.configuration)
    assert set(stored.configuration["api_token"]) == {"fernet"}
    assert reveal_secret(stored, "api_token", box_from_settings(settings)) == TOKEN


async def test_secrets_are_never_returned_by_any_read(gql: GraphQLClient, demo: SeedResult) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": "https://loja.nova.example"})

    body = await gql.post(MY_PLAN, as_=NOVA)

    assert TOKEN not in json.dumps(body)
    mercado_livre = next(a for a in body["data"]["myPlan"]["activeAddOns"] if a["id"] == add_on_id)
    assert setting(mercado_livre, "api_token")["value"] == SECRET_MASK
    assert mercado_livre["configurationStatus"] == "CONFIGURED"
    # Nor in the audit log, which records the names of the settings only.
    entry = await AuditEntry.get(action="add_on.configure")
    assert TOKEN not in json.dumps(entry.details)
    assert entry.details["settings"] == ["api_token", "shop_url"]
    assert (entry.actor, entry.subject_id) == (NOVA, key(add_on_id))


async def test_a_pending_integration_shows_its_declared_settings_unset(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await gql.post(MY_PLAN, as_=NOVA)
    add_on_id = await subscription_id("integration-mercado-livre")
    pending = next(a for a in body["data"]["myPlan"]["activeAddOns"] if a["id"] == add_on_id)
    assert pending["configurationStatus"] == "PENDING"
    assert [(s["name"], s["isSet"], s["value"]) for s in pending["configuration"]] == [
        ("api_token", False, None),
        ("shop_url", False, None),
    ]
    users = next(a for a in body["data"]["myPlan"]["activeAddOns"] if a["addOn"]["code"] == "users-5")
    assert (users["configurationStatus"], users["configuration"]) == ("NOT_REQUIRED", [])


async def test_a_missing_required_setting_is_a_typed_error_and_writes_nothing(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")

    result = await configure(gql, add_on_id, {"shop_url": "https://loja.nova.example"})

    assert result["__typename"] == "InvalidSettingsError"
    assert (result["code"], result["field"]) == ("INVALID_SETTINGS", "settings")
    assert [(p["field"], p["code"]) for p in result["problems"]] == [("settings.api_token", "REQUIRED")]
    stored = await stored_add_on(add_on_id)
    assert (stored.configuration_status, stored.configuration) == (ConfigurationStatus.PENDING, {})
    assert not await AuditEntry.filter(action="add_on.configure").exists()


async def test_unknown_keys_wrong_types_and_bad_urls_are_reported_at_once(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")

    result = await configure(
        gql, add_on_id, {"api_token": 12345, "shop_url": "ftp://x.example", "colour": "red"}
    )

    assert result["__typename"] == "InvalidSettingsError"
    assert sorted((p["field"], p["code"]) for p in result["problems"]) == [
        ("settings.api_token", "WRONG_TYPE"),
        ("settings.colour", "UNKNOWN_SETTING"),
        ("settings.shop_url", "INVALID_URL"),
    ]
    assert "colour" in result["message"]


async def test_a_problem_code_is_an_enum_a_typed_client_can_switch_on(gql: GraphQLClient) -> None:
    body = await gql.post(
        '{ problem: __type(name: "SettingProblem") { fields { name type { kind ofType { kind name } } } } '
        'codes: __type(name: "SettingProblemCode") { enumValues { name description } } }'
    )

    code = next(f for f in body["data"]["problem"]["fields"] if f["name"] == "code")
    assert code["type"] == {"kind": "NON_NULL", "ofType": {"kind": "ENUM", "name": "SettingProblemCode"}}
    values = body["data"]["codes"]["enumValues"]
    assert {value["name"] for value in values} == {
        "REQUIRED", "UNKNOWN_SETTING", "WRONG_TYPE", "INVALID_URL", "URL_HAS_CREDENTIALS", "PRIVATE_HOST",
        "TOO_LONG", "NOT_AN_OBJECT",
    }  # fmt: skip
    assert all(value["description"] for value in values)


@pytest.mark.parametrize(
    "url",
    [
        "loja.nova.example",
        "http://loja.nova.example",
        "https://",
        "https://loja nova.example",
        "javascript:alert(1)",
        "https://loja.nova.example:99999/",
        "   ",
        "https://" + "a" * 2000 + ".example",
    ],
)
async def test_a_shop_url_must_be_an_absolute_https_url(
    gql: GraphQLClient, demo: SeedResult, url: str
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    result = await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": url})
    assert result["__typename"] == "InvalidSettingsError"
    assert [p["field"] for p in result["problems"]] == ["settings.shop_url"]


@pytest.mark.parametrize("value", [["api_token"], "api_token=x", 42, None])
async def test_settings_must_be_a_json_object(gql: GraphQLClient, demo: SeedResult, value: Any) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    body = await gql.post(CONFIGURE, {"id": add_on_id, "settings": value}, as_=NOVA)
    if value is None:  # JSON! refuses null before anything runs
        assert body["errors"]
        return
    result = body["data"]["configureIntegration"]
    assert result["__typename"] == "InvalidSettingsError"
    assert [(p["field"], p["code"]) for p in result["problems"]] == [("settings", "NOT_AN_OBJECT")]


async def test_another_tenants_add_on_answers_exactly_like_an_unknown_id(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    novas = await subscription_id("integration-mercado-livre")
    settings = {"api_token": TOKEN, "shop_url": "https://evil.example"}

    other_tenant = await configure(gql, novas, settings, as_="admin@acme.test")
    unknown = await configure(gql, global_id("ActiveAddOn", uuid.uuid4()), settings, as_="admin@acme.test")
    malformed = await configure(gql, "not-an-id", settings, as_="admin@acme.test")

    assert other_tenant == unknown
    for answer in (other_tenant, malformed):
        assert (answer["__typename"], answer["code"], answer["field"]) == (
            "NotFoundError",
            "NOT_FOUND",
            "activeAddOnId",
        )
    stored = await stored_add_on(novas)
    assert (stored.configuration_status, stored.configuration) == (ConfigurationStatus.PENDING, {})


async def test_an_add_on_without_settings_is_not_configurable(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await configure(gql, await subscription_id("users-5"), {"api_token": TOKEN})
    assert (result["__typename"], result["code"]) == ("NotConfigurableError", "NOT_CONFIGURABLE")


async def test_reconfiguring_keeps_a_secret_left_out_and_replaces_the_rest(
    gql: GraphQLClient, demo: SeedResult, settings: Settings
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": "https://old.example"})

    result = await configure(gql, add_on_id, {"shop_url": "https://new.example"})

    assert result["__typename"] == "ConfigureIntegrationSuccess"
    assert setting(result["activeAddOn"], "shop_url")["value"] == "https://new.example"
    assert setting(result["activeAddOn"], "api_token")["isSet"] is True
    stored = await stored_add_on(add_on_id)
    assert reveal_secret(stored, "api_token", box_from_settings(settings)) == TOKEN
    # Sent explicitly as null, a required secret is missing, not kept.
    cleared = await configure(gql, add_on_id, {"api_token": None, "shop_url": "https://new.example"})
    assert [(p["field"], p["code"]) for p in cleared["problems"]] == [("settings.api_token", "REQUIRED")]


async def test_a_new_secret_replaces_the_stored_one(
    gql: GraphQLClient, demo: SeedResult, settings: Settings
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": "https://loja.example"})
    await configure(gql, add_on_id, {"api_token": "rotated-token", "shop_url": "https://loja.example"})
    stored = await stored_add_on(add_on_id)
    assert reveal_secret(stored, "api_token", box_from_settings(settings)) == "rotated-token"


async def test_settings_of_each_declared_kind_are_type_checked(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    erp = await AddOn.create(
        code="integration-erp-x", name="ERP X", category=AddOnCategory.INTEGRATIONS, prices={"BRL": "10.00"},
        increment_integrations=1, requires_configuration=True,
        configuration_fields=[
            {"name": "company_id", "label": "Company", "kind": "INTEGER", "required": True},
            {"name": "sandbox", "label": "Sandbox", "kind": "BOOLEAN", "required": False},
            {"name": "branch", "label": "Branch", "kind": "STRING", "required": False, "max_length": 5},
        ],
    )  # fmt: skip
    subscription = await AddOnSubscription.create(
        tenant=await Tenant.get(slug="nova"), add_on=erp, unit_price=Decimal("10.00"), currency="BRL",
        contracted_at=clock.now(), configuration_status=ConfigurationStatus.PENDING,
    )  # fmt: skip
    add_on_id = global_id("ActiveAddOn", subscription.id)

    wrong = await configure(gql, add_on_id, {"company_id": "42", "sandbox": "true", "branch": "toolong"})
    assert sorted((p["field"], p["code"]) for p in wrong["problems"]) == [
        ("settings.branch", "TOO_LONG"),
        ("settings.company_id", "WRONG_TYPE"),
        ("settings.sandbox", "WRONG_TYPE"),
    ]
    assert (await configure(gql, add_on_id, {"company_id": True}))["problems"][0]["code"] == "WRONG_TYPE"

    ok = await configure(gql, add_on_id, {"company_id": 42, "sandbox": False})
    assert ok["__typename"] == "ConfigureIntegrationSuccess"
    values = {item["name"]: (item["isSet"], item["value"]) for item in ok["activeAddOn"]["configuration"]}
    assert values == {"company_id": (True, 42), "sandbox": (True, False), "branch": (False, None)}


async def test_an_integration_bought_at_checkout_waits_for_configuration(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    added = await gql.post(
        'mutation { addToCart(addOnCode: "integration-shopify") { __typename } }', as_="admin@acme.test"
    )
    assert added["data"]["addToCart"]["__typename"] == "AddToCartSuccess"
    bought = await gql.post(
        'mutation { checkout(idempotencyKey: "buy-shopify") { __typename '
        "... on CheckoutSuccess { order { id } activeAddOns { id configurationStatus } } } }",
        as_="admin@acme.test",
    )
    checkout = bought["data"]["checkout"]
    [activated] = checkout["activeAddOns"]
    assert activated["configurationStatus"] == "PENDING"
    shopify = {"api_token": "shpat_1", "shop_url": "https://acme.myshopify.com"}
    # The order's id is not the add-on's: it configures nothing.
    by_order = await configure(gql, checkout["order"]["id"], shopify, as_="admin@acme.test")
    assert (by_order["__typename"], by_order["field"]) == ("NotFoundError", "activeAddOnId")

    result = await configure(gql, activated["id"], shopify, as_="admin@acme.test")

    assert result["activeAddOn"]["configurationStatus"] == "CONFIGURED"


async def test_an_id_of_another_type_configures_nothing(gql: GraphQLClient, demo: SeedResult) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    catalog = await gql.post('{ addOn(code: "integration-mercado-livre") { id } }')
    settings = {"api_token": TOKEN, "shop_url": "https://loja.nova.example"}

    for other in (catalog["data"]["addOn"]["id"], global_id("AddOn", key(add_on_id)), key(add_on_id), ""):
        answer = await configure(gql, other, settings)
        assert (answer["__typename"], answer["field"]) == ("NotFoundError", "activeAddOnId"), other

    stored = await stored_add_on(add_on_id)
    assert (stored.configuration_status, stored.configuration) == (ConfigurationStatus.PENDING, {})


async def test_an_ended_integration_cannot_be_configured(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    await AddOnSubscription.filter(id=key(add_on_id)).update(ends_at=clock.now() - dt.timedelta(days=1))
    result = await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": "https://loja.example"})
    assert (result["__typename"], result["code"], result["endedAt"]) == (
        "AddOnEndedError",
        "ADD_ON_ENDED",
        (clock.now() - dt.timedelta(days=1)).isoformat(),
    )


@pytest.mark.parametrize(
    ("caller", "typename"), [("member@nova.test", "NotAdminError"), ("admin@legacy.test", "NotEligibleError")]
)
async def test_only_admins_of_eligible_environments_configure(
    gql: GraphQLClient, demo: SeedResult, caller: str, typename: str
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    result = await configure(gql, add_on_id, {"api_token": TOKEN}, as_=caller)
    assert result["__typename"] == typename


async def test_configuring_needs_credentials(gql: GraphQLClient, demo: SeedResult) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    body = await gql.post(CONFIGURE, {"id": add_on_id, "settings": {}})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    key_body = await gql.post(CONFIGURE, {"id": add_on_id, "settings": {}}, key=demo.connector_keys["nova"])
    # No API key scope opens the store's writes (issue 11, tests/api/test_access_matrix.py).
    assert key_body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# --- URL settings name a public host, without credentials (issue 11) ------------------------------------

PRIVATE_URLS = [
    "https://127.0.0.1/hook",
    "https://10.1.2.3/",
    "https://172.16.0.1/",
    "https://192.168.0.10:8443/",
    "https://100.64.0.1/",  # shared address space (carrier-grade NAT)
    "https://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
    "https://0.0.0.0/",
    "https://224.0.0.1/",  # multicast
    "https://240.0.0.1/",  # reserved
    "https://[::1]/",
    "https://[::]/",
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "https://[::ffff:a9fe:a9fe]/",
    "https://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "https://2130706433/",  # 127.0.0.1 as one decimal number
    "https://0x7f000001/",
    "https://0177.0.0.1/",  # octal
    "https://127.1/",
    "https://0/",
    "https://localhost/",
    "https://LOCALHOST./",
    "https://shop.localhost/",
    "https://erp.local/",
    "https://metadata.google.internal/",
    "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",  # full-width: IDNA maps it
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_a_url_setting_may_not_name_a_private_or_local_host(
    gql: GraphQLClient, demo: SeedResult, url: str
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    result = await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": url})

    assert result["__typename"] == "InvalidSettingsError"
    assert [(p["field"], p["code"]) for p in result["problems"]] == [("settings.shop_url", "PRIVATE_HOST")]
    stored = await stored_add_on(add_on_id)
    assert stored.configuration_status == ConfigurationStatus.PENDING


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@loja.nova.example/",
        "https://token@loja.nova.example/",
        "https://:@loja.nova.example/",
        "https://user:hunter2@127.0.0.1/",
    ],
)
async def test_a_url_setting_may_not_carry_credentials(
    gql: GraphQLClient, demo: SeedResult, url: str
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    result = await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": url})

    assert result["__typename"] == "InvalidSettingsError"
    assert [(p["field"], p["code"]) for p in result["problems"]] == [
        ("settings.shop_url", "URL_HAS_CREDENTIALS")
    ]
    assert "hunter2" not in json.dumps(result)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://loja.nova.example/",
        "file:///etc/passwd",
        "https://loja.example\\@127.0.0.1/",
        "https://1.2.3.999/",
    ],
)
async def test_a_url_setting_is_https_with_a_host_name(
    gql: GraphQLClient, demo: SeedResult, url: str
) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    result = await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": url})
    assert [(p["field"], p["code"]) for p in result["problems"]] == [("settings.shop_url", "INVALID_URL")]


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/",
        "https://[2001:4860:4860::8888]/",
        "https://bücher.example/",
        "https://x.example:8443/",
    ],
)
async def test_public_hosts_are_accepted(gql: GraphQLClient, demo: SeedResult, url: str) -> None:
    add_on_id = await subscription_id("integration-mercado-livre")
    result = await configure(gql, add_on_id, {"api_token": TOKEN, "shop_url": url})
    assert result["__typename"] == "ConfigureIntegrationSuccess", result


async def test_private_hosts_are_accepted_when_the_setting_allows_them(
    demo: SeedResult, settings: Settings, clock: FrozenClock
) -> None:
    from tests.conftest import client_for

    add_on_id = await subscription_id("integration-mercado-livre")
    async with client_for(settings, clock, integration_allow_private_hosts=True) as http:
        gql = GraphQLClient(http, settings, clock)
        on_premises = await configure(
            gql, add_on_id, {"api_token": TOKEN, "shop_url": "https://10.0.0.5:8443/"}
        )
        credentials = await configure(
            gql, add_on_id, {"api_token": TOKEN, "shop_url": "https://u:p@10.0.0.5/"}
        )

    assert on_premises["__typename"] == "ConfigureIntegrationSuccess", on_premises
    assert [p["code"] for p in credentials["problems"]] == ["URL_HAS_CREDENTIALS"]  # never allowed
