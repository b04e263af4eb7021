"""Hostile values never crash a read or break a write (issue 11).

Each answer is a typed error or a GraphQL error with ``extensions.code``: never a 500, never
``INTERNAL_SERVER_ERROR``, never Python's internals in a message, never more than 100 characters of what
the caller sent. Run on SQLite and on PostgreSQL (which refuses NUL in text).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import jwt
import pytest

from app.auth.tokens import ALGORITHM, ISSUER
from app.models.metering import LimitAlert
from app.models.tenancy import User
from app.resolvers.ids import global_id
from app.seed import SeedResult
from tests.conftest import GraphQLClient

LONG = "x" * 10_000
INTERNALS = re.compile(
    r"invalid literal|Traceback|Error\(|Exception|object has no attribute|NoneType|int\(\)"
)


def assert_clean(body: dict[str, Any], sent: Any) -> None:
    """No crash, no Python internals, no long echo of ``sent``."""
    text = json.dumps(body, ensure_ascii=False)
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code, error
        assert code != "INTERNAL_SERVER_ERROR", error
        assert not INTERNALS.search(error["message"]), error["message"]
        assert len(error["message"]) < 400, error["message"]
    for value in sent if isinstance(sent, list) else [sent]:
        if isinstance(value, str) and len(value) > 100:
            assert value[:101] not in text, "more than 100 characters of the caller's input came back"


def outcome(body: dict[str, Any], field: str) -> str:
    """The typed error's code, the GraphQL error's code, the success type's name, or "null"."""
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    result = body["data"][field]
    if result is None:
        return "null"
    return str(result.get("code") or result.get("__typename"))


# --- Strings longer than their column, or holding NUL -----------------------------------------------------

ADD_ON = "query($code: String!) { addOn(code: $code) { code } }"


@pytest.mark.parametrize("code", ["x" * 65, LONG, "a\u0000b", "\u0000", "storage\u0000-10gb", "x\x1b[31m"])
async def test_an_add_on_code_that_cannot_exist_is_null(
    gql: GraphQLClient, demo: SeedResult, code: str
) -> None:
    body = await gql.post(ADD_ON, {"code": code})

    assert body == {"data": {"addOn": None}}


HOSTILE = [
    "x" * 65,
    "x" * 129,
    LONG,
    "\u0000",
    "a\u0000b",
    "\u0662\u0660\u0662\u0666-\u0661\u0661",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
]
MUTATIONS = {
    "addToCart": (
        "mutation($v: String!) { r: addToCart(addOnCode: $v) { __typename ... on Error { code } } }",
        "admin",
    ),
    "updateCartItem": (
        "mutation($v: String!) { r: updateCartItem(addOnCode: $v, quantity: 2) "
        "{ __typename ... on Error { code } } }",
        "admin",
    ),
    "removeFromCart": (
        "mutation($v: String!) { r: removeFromCart(addOnCode: $v) { __typename ... on Error { code } } }",
        "admin",
    ),
    "applyCoupon": (
        "mutation($v: String!) { r: applyCoupon(code: $v) { __typename ... on Error { code } } }",
        "admin",
    ),
    "checkout": (
        "mutation($v: String!) { r: checkout(idempotencyKey: $v) { __typename ... on Error { code } } }",
        "admin",
    ),
    "cancelAddOn": (
        "mutation($v: ID!) { r: cancelAddOn(activeAddOnId: $v) { __typename ... on Error { code } } }",
        "admin",
    ),
    "undoCancellation": (
        "mutation($v: ID!) { r: undoCancellation(activeAddOnId: $v) { __typename ... on Error { code } } }",
        "admin",
    ),
    "cancellationPreview": (
        "query($v: ID!) { r: cancellationPreview(activeAddOnId: $v) { __typename ... on Error { code } } }",
        "admin",
    ),
    "configureIntegration": (
        "mutation($v: ID!) { r: configureIntegration(activeAddOnId: $v, settings: {}) "
        "{ __typename ... on Error { code } } }",
        "admin",
    ),
    "startProcess": (
        "mutation($v: String!) { r: startProcess(process: PRODUCT_SYNC, idempotencyKey: $v) "
        "{ __typename ... on Error { code } } }",
        "connector",
    ),
    "invoicePreview": (
        "query($v: String) { r: invoicePreview(period: $v) { __typename ... on Error { code } } }",
        "admin",
    ),
    "alerts": ("query($v: String) { r: alerts(first: 5, after: $v) { edges { cursor } } }", "admin"),
    "price": (
        'query($v: String) { r: addOn(code: "start-pack") { price(currency: $v) { amount } } }',
        "anonymous",
    ),
}


SUCCESSES = (
    "AddToCartSuccess",
    "UpdateCartItemSuccess",
    "RemoveFromCartSuccess",
    "ApplyCouponSuccess",
    "CheckoutSuccess",
    "CancelAddOnSuccess",
    "UndoCancellationSuccess",
    "CancellationPreview",
    "ConfigureIntegrationSuccess",
)


@pytest.mark.parametrize(
    "value", HOSTILE, ids=["65", "129", "10k", "nul", "a-nul-b", "arabic", "sql", "html"]
)
@pytest.mark.parametrize("field", list(MUTATIONS))
async def test_every_string_argument_that_reaches_the_database_answers_a_typed_error(
    gql: GraphQLClient, demo: SeedResult, field: str, value: str
) -> None:
    document, caller = MUTATIONS[field]
    credentials: dict[str, Any] = (
        {"as_": "admin@nova.test"}
        if caller == "admin"
        else {"key": demo.connector_keys["nova"]}
        if caller == "connector"
        else {}
    )

    body = await gql.post(document, {"v": value}, **credentials)

    assert_clean(body, value)
    # 65 or 129 characters, SQL or HTML: each is refused, or (an idempotency key of printable ASCII up to 128
    # characters) taken for what it is.
    assert outcome(body, "r") not in SUCCESSES, body


ACTIVE_ADD_ON_FIELDS = [field for field in MUTATIONS if "activeAddOnId" in MUTATIONS[field][0]]


@pytest.mark.parametrize("key", HOSTILE, ids=["65", "129", "10k", "nul", "a-nul-b", "arabic", "sql", "html"])
@pytest.mark.parametrize("field", ACTIVE_ADD_ON_FIELDS)
async def test_an_active_add_on_id_with_a_hostile_key_is_not_found(
    gql: GraphQLClient, demo: SeedResult, field: str, key: str
) -> None:
    """Well-formed ids of the right type whose key is hostile reach the database lookup: still NOT_FOUND."""
    active_add_on_id = global_id("ActiveAddOn", key)
    body = await gql.post(MUTATIONS[field][0], {"v": active_add_on_id}, as_="admin@nova.test")

    assert outcome(body, "r") == "NOT_FOUND", body
    assert_clean(body, key)
    assert_clean(body, active_add_on_id)


# --- Cursors ----------------------------------------------------------------------------------------------

ALERTS = "query($first: Int, $after: String) { alerts(first: $first, after: $after) { edges { cursor } } }"


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "after",
    [
        "garbage!!",
        cursor("\xff\xfe"),
        cursor("alert:" + "9" * 30),  # beyond 64 bits: the database refuses the comparison
        cursor("alert:9223372036854775808"),
        cursor("alert:-5"),
        cursor("alert:0"),
        cursor("alert:1_000"),
        cursor("alert:\u0663"),  # Arabic-Indic digit: int() takes it
        cursor("alert: 7"),
        cursor("order:7"),
        "\u0000",
        LONG,
        cursor("alert:" + "1" * 10_000),
    ],
)
async def test_a_malformed_or_out_of_range_cursor_is_bad_user_input(
    gql: GraphQLClient, demo: SeedResult, after: str
) -> None:
    body = await gql.post(ALERTS, {"first": 5, "after": after}, as_="admin@acme.test")

    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}, body
    assert_clean(body, after)


@pytest.mark.parametrize("first", [-1, 0, 101, 2**31 - 1, -(2**31)])
async def test_first_out_of_range_is_bad_user_input(gql: GraphQLClient, demo: SeedResult, first: int) -> None:
    body = await gql.post(ALERTS, {"first": first}, as_="admin@acme.test")
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}


@pytest.mark.parametrize("first", [2**31, 2**64, 1.5, "10"])
async def test_first_beyond_int_is_bad_user_input(gql: GraphQLClient, demo: SeedResult, first: Any) -> None:
    body = await gql.post(ALERTS, {"first": first}, as_="admin@acme.test")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert_clean(body, first)


async def test_a_cursor_issued_by_the_list_still_pages(gql: GraphQLClient, demo: SeedResult) -> None:
    from app.models.tenancy import Tenant

    acme = await Tenant.get(slug="acme")
    for threshold in (80, 90, 100):
        await LimitAlert.create(
            tenant=acme,
            kind="CREDITS",
            threshold=threshold,
            state="TRIGGERED",
            used=1,
            limit=1,
            created_at=gql.clock.now(),
        )
    first = await gql.post(ALERTS, {"first": 2}, as_="admin@acme.test")
    after = first["data"]["alerts"]["edges"][-1]["cursor"]
    rest = await gql.post(ALERTS, {"first": 2, "after": after}, as_="admin@acme.test")

    assert len(first["data"]["alerts"]["edges"]) == 2
    assert len(rest["data"]["alerts"]["edges"]) == 1


# --- Tokens whose expiry is not a date --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exp", "reason"),
    [
        ("soon", "TOKEN_INVALID"),
        ("1e3", "TOKEN_INVALID"),
        (1e300, "TOKEN_INVALID"),
        (10**30, "TOKEN_INVALID"),
        (2**63, "TOKEN_INVALID"),
        (True, "TOKEN_INVALID"),
        (None, "TOKEN_INVALID"),
        ([1], "TOKEN_INVALID"),
        ({"at": 1}, "TOKEN_INVALID"),
        (-1, "TOKEN_EXPIRED"),
        (0, "TOKEN_EXPIRED"),
    ],
)
async def test_a_signed_token_whose_expiry_is_not_a_date_is_unauthenticated(
    gql: GraphQLClient, demo: SeedResult, exp: Any, reason: str
) -> None:
    user = await User.get(email="admin@acme.test")
    claims = {"iss": ISSUER, "sub": str(user.id), "tid": str(user.tenant_id), "iat": 1, "exp": exp}
    token = jwt.encode(claims, gql.settings.jwt_secret, algorithm=ALGORITHM)

    body = await gql.post("{ viewer { kind } }", key=token)

    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": reason}
    assert_clean(body, exp)


async def test_a_signed_token_with_a_fractional_expiry_in_the_future_is_accepted(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    user = await User.get(email="admin@acme.test")
    exp = gql.clock.now().timestamp() + 3600.5
    claims = {"iss": ISSUER, "sub": str(user.id), "tid": str(user.tenant_id), "iat": 1, "exp": exp}
    token = jwt.encode(claims, gql.settings.jwt_secret, algorithm=ALGORITHM)

    assert (await gql.post("{ viewer { kind } }", key=token))["data"] == {"viewer": {"kind": "USER"}}


# --- Long: JSON integers within 64 bits only ---------------------------------------------------------------

REPORT = """
mutation($storage: Long!, $at: DateTime!) {
  reportUsage(input: {variants: 1, customers: 1, contacts: 1, salesReps: 1, adminUsers: 1,
                      storageBytes: $storage, measuredAt: $at}) {
    __typename ... on Error { code message }
  }
}
"""


@pytest.mark.parametrize(
    "storage", ["12", 1.5, 1e3, True, False, 2**63, -(2**63) - 1, 2**64, "abc", LONG, [1], {"a": 1}, None]
)
async def test_long_takes_json_integers_in_range_only(
    gql: GraphQLClient, demo: SeedResult, storage: Any
) -> None:
    at = gql.clock.now().isoformat()
    body = await gql.post(REPORT, {"storage": storage, "at": at}, key=demo.connector_keys["acme"])

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert_clean(body, storage)


@pytest.mark.parametrize("storage", [0, 12, 2**63 - 1, 22 * 1024**3])
async def test_long_takes_integers_up_to_64_bits(gql: GraphQLClient, demo: SeedResult, storage: int) -> None:
    at = gql.clock.now().isoformat()
    body = await gql.post(REPORT, {"storage": storage, "at": at}, key=demo.connector_keys["acme"])
    assert "errors" not in body, body
    literal = await gql.post(
        REPORT.replace("$storage: Long!, ", "").replace("$storage", str(storage)),
        {"at": at},
        key=demo.connector_keys["acme"],
    )
    assert "errors" not in literal, literal


@pytest.mark.parametrize("literal", ['"12"', "1.5", "1e3", "true", str(2**63)])
async def test_long_literals_are_integers_in_range_too(
    gql: GraphQLClient, demo: SeedResult, literal: str
) -> None:
    document = REPORT.replace("$storage: Long!, ", "").replace("$storage", literal)
    body = await gql.post(document, {"at": gql.clock.now().isoformat()}, key=demo.connector_keys["acme"])
    assert body["data"] is None, body
    assert body["errors"], body
    assert "Long is a whole number" in body["errors"][0]["message"]
    assert_clean(body, literal)


@pytest.mark.parametrize(
    "literal",
    [
        '"soon"',
        '"\u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0663T11:00:00Z"',
        '"0001-01-01T00:00:00+01:00"',
        "12",
    ],
)
async def test_date_time_literals_are_instants_too(
    gql: GraphQLClient, demo: SeedResult, literal: str
) -> None:
    document = REPORT.replace(", $at: DateTime!", "").replace("$at", literal)
    body = await gql.post(document, {"storage": 1}, key=demo.connector_keys["acme"])
    assert body["data"] is None, body
    assert body["errors"], body
    assert_clean(body, literal)


# --- Dates and periods: ASCII digits, instants a datetime can hold -----------------------------------------


@pytest.mark.parametrize(
    "measured_at",
    [
        "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0663T11:00:00Z",  # Arabic-Indic digits
        "\uff12\uff10\uff12\uff16-11-23T11:00:00Z",  # full-width digits
        "2026-11-23T11:00:00\u0000",
        "0001-01-01T00:00:00+01:00",  # overflows when converted to UTC
        "9999-12-31T23:59:59-01:00",
        "1969-12-31T23:59:59Z",
        "soon",
        LONG,
    ],
)
async def test_a_measured_at_that_is_not_an_instant_is_bad_user_input(
    gql: GraphQLClient, demo: SeedResult, measured_at: str
) -> None:
    body = await gql.post(REPORT, {"storage": 1, "at": measured_at}, key=demo.connector_keys["acme"])

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert_clean(body, measured_at)


@pytest.mark.parametrize(
    "period",
    [
        "\u0662\u0660\u0662\u0666-\u0661\u0661",
        "\u0662\u0660\u0662\u0666-11",
        "\uff12\uff10\uff12\uff16-11",
        "2026-\uff11\uff11",
        "2026-11\u0000",
        LONG,
        "' OR 1=1 --",
    ],
)
async def test_a_period_with_non_ascii_digits_is_invalid(
    gql: GraphQLClient, demo: SeedResult, period: str
) -> None:
    body = await gql.post(
        "query($p: String) { invoicePreview(period: $p) { __typename ... on Error { code field } } }",
        {"p": period},
        as_="admin@acme.test",
    )

    assert body["data"]["invoicePreview"] == {
        "__typename": "InvalidPeriodError",
        "code": "INVALID_PERIOD",
        "field": "period",
    }
    assert_clean(body, period)


async def test_an_unsupported_currency_is_a_null_price(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(
        'query($c: String) { addOn(code: "start-pack") { price(currency: $c) { amount } } }', {"c": LONG}
    )
    assert body == {"data": {"addOn": {"price": None}}}
    assert_clean(body, LONG)
    assert_clean(body, LONG.upper())


async def test_unknown_integration_settings_are_not_echoed_whole(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    from app.models.billing import AddOnSubscription

    subscription = await AddOnSubscription.get(add_on__code="integration-mercado-livre", tenant__slug="nova")
    settings = {LONG: 1, **{f"k{n}": n for n in range(50)}}
    body = await gql.post(
        "mutation($id: ID!, $s: JSON!) { configureIntegration(activeAddOnId: $id, settings: $s) { "
        "__typename ... on InvalidSettingsError { message problems { field code } } } }",
        {"id": global_id("ActiveAddOn", subscription.id), "s": settings},
        as_="admin@nova.test",
    )

    result = body["data"]["configureIntegration"]
    assert result["__typename"] == "InvalidSettingsError"
    assert len([p for p in result["problems"] if p["code"] == "UNKNOWN_SETTING"]) == 10
    assert_clean(body, LONG)
