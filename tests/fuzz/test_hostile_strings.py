"""Hostile strings in every ``String``, ``ID`` and ``JSON`` argument of the schema (issue 11).

The arguments are found by introspection over HTTP, at every depth: root fields, fields of the types they
return (``price(currency:)``), and the text fields of input objects;
a new argument is covered the day it is added. Each gets each hostile value (NUL, 10,000 characters,
control characters, non-ASCII digits, SQL and HTML fragments, a lone surrogate...) as anonymous, member,
admin and the connector's key, the other arguments holding plausible values. No answer may be a 5xx, a
masked ``INTERNAL_SERVER_ERROR``, or a message echoing more than 100 characters of the value.

It uses the ``gql`` fixture, so it runs on SQLite and, in the PostgreSQL pass, on PostgreSQL, which
refuses NUL in text.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_client_schema,
    get_introspection_query,
    get_named_type,
)

from app.clock import FrozenClock
from app.models.billing import AddOnSubscription
from app.resolvers.ids import global_id
from app.seed import SeedResult
from tests.conftest import GraphQLClient

HOSTILE_TEXT = [
    "\u0000",
    "a\u0000b",
    "x" * 10_000,
    "\x01\x02\x1b[31m\x7f\t\r\n",
    "\u0662\u0660\u0662\u0666-\u0661\u0661",  # Arabic-Indic digits: "2026-11"
    "\uff12\uff10\uff12\uff16-\uff11\uff11",  # full-width digits
    "' OR 1=1 --",
    "'; DROP TABLE tenant; --",
    '<script>alert("x")</script>',
    "\ud800",  # a lone surrogate: valid JSON text, no valid UTF-8
    "\u202e\ufeff",  # right-to-left override, byte order mark
    "",
    " ",
]
HOSTILE_JSON: list[Any] = [
    *HOSTILE_TEXT[:4],
    dict.fromkeys(HOSTILE_TEXT, 1),
    {"url": "\u0000", "shop_url": "x" * 10_000, "api_token": "\u0000"},
    {"shop_url": "https://user:pw@127.0.0.1/", "api_token": "' OR 1=1 --"},
    [HOSTILE_TEXT],
    {"a": {"b": {"c": ["\u0000"] * 3}}},
]
TEXT_TYPES = {"String", "ID"}
CALLERS = ("anonymous", "member", "admin", "connector")


@dataclass(frozen=True)
class Slot:
    """Where a hostile value goes: a field reached by ``path`` from a root, one of its arguments, and the
    input-object fields inside it (``inner``)."""

    root: str
    path: tuple[tuple[str, str | None], ...]  # (field name, type condition for a union member or None)
    argument: str
    inner: tuple[str, ...]
    kind: str  # String, ID or JSON

    @property
    def label(self) -> str:
        return (
            ".".join([self.root, *(name for name, _ in self.path)])
            + f"({'.'.join((self.argument, *self.inner))})"
        )


async def client_schema(gql: GraphQLClient) -> GraphQLSchema:
    body = await gql.post(get_introspection_query())
    return build_client_schema(body["data"])


def named(type_: Any) -> GraphQLNamedType:
    return get_named_type(type_)  # type: ignore[no-any-return]


def inner_slots(
    type_: GraphQLInputType, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    """The text and JSON positions inside an argument's type: itself, or its input object's fields."""
    base = named(type_)
    if isinstance(base, GraphQLScalarType) and (base.name in TEXT_TYPES or base.name == "JSON"):
        yield prefix, base.name
    elif isinstance(base, GraphQLInputObjectType) and len(prefix) < 3:
        for name, field in base.fields.items():
            yield from inner_slots(field.type, (*prefix, name))


def paths_to_types(
    schema: GraphQLSchema, root: GraphQLObjectType
) -> dict[str, tuple[tuple[str, str | None], ...]]:
    """The shortest path of fields from ``root`` to every object type it can reach (breadth first)."""
    paths: dict[str, tuple[tuple[str, str | None], ...]] = {root.name: ()}
    queue = deque([root])
    while queue:
        current = queue.popleft()
        for name, field in current.fields.items():
            target = named(field.type)
            members = target.types if isinstance(target, GraphQLUnionType) else [target]
            for member in members:
                if isinstance(member, GraphQLObjectType) and member.name not in paths:
                    condition = member.name if isinstance(target, GraphQLUnionType) else None
                    paths[member.name] = (*paths[current.name], (name, condition))
                    queue.append(member)
    return paths


def slots_of(schema: GraphQLSchema) -> list[Slot]:
    slots = []
    for root_name in ("Query", "Mutation"):
        root = schema.get_type(root_name)
        assert isinstance(root, GraphQLObjectType)
        reachable = paths_to_types(schema, root) if root_name == "Query" else {root.name: ()}
        for type_name, path in reachable.items():
            owner = schema.get_type(type_name)
            assert isinstance(owner, GraphQLObjectType)
            for field_name, field in owner.fields.items():
                for argument, spec in field.args.items():
                    for inner, kind in inner_slots(spec.type):
                        slots.append(Slot(root_name, (*path, (field_name, None)), argument, inner, kind))
    return slots


class Filler:
    """Plausible values for the arguments that do not hold the hostile value."""

    def __init__(self, add_on_id: str, now: str) -> None:
        self.add_on_id, self.now = add_on_id, now

    def value(self, type_: Any) -> Any:
        if isinstance(type_, GraphQLNonNull):
            return self.value(type_.of_type)
        if isinstance(type_, GraphQLList):
            return [self.value(type_.of_type)]
        if isinstance(type_, GraphQLEnumType):
            return next(iter(type_.values))
        if isinstance(type_, GraphQLInputObjectType):
            return {
                name: self.value(field.type)
                for name, field in type_.fields.items()
                if is_required(field.type)
            }
        return {
            "ID": self.add_on_id,
            "String": "fuzz-1",
            "Int": 1,
            "Long": 1,
            "Float": 1.0,
            "Boolean": False,
            "JSON": {},
            "DateTime": self.now,
            "Date": self.now[:10],
            "Decimal": "1",
        }.get(named(type_).name, "x")


def is_required(type_: Any) -> bool:
    return isinstance(type_, GraphQLNonNull)


def document_for(schema: GraphQLSchema, slot: Slot, filler: Filler) -> tuple[str, dict[str, Any]]:
    """An operation reaching the slot's field, every argument on the way a variable (the hostile one
    holding a plausible value until ``hostile_variables`` replaces it)."""
    variables: dict[str, Any] = {}
    definitions: list[str] = []
    steps: list[tuple[str, str, str | None, bool]] = []  # field, its arguments, union member, composite
    owner: Any = schema.get_type(slot.root)
    for depth, (field_name, condition) in enumerate(slot.path):
        field = owner.fields[field_name]
        arguments = []
        for name, spec in field.args.items():
            hostile = depth == len(slot.path) - 1 and name == slot.argument
            if not hostile and not is_required(spec.type):
                continue
            variable = f"v{depth}_{name}"
            definitions.append(f"${variable}: {spec.type}")
            arguments.append(f"{name}: ${variable}")
            variables[variable] = filler.value(spec.type)
        target = named(field.type)
        composite = isinstance(target, GraphQLObjectType | GraphQLUnionType)
        steps.append((field_name, f"({', '.join(arguments)})" if arguments else "", condition, composite))
        owner = schema.get_type(condition) if condition else target
    name, arguments, _, composite = steps[-1]
    selection = f"{name}{arguments}" + (" { __typename }" if composite else "")
    for name, arguments, condition, _ in reversed(steps[:-1]):
        inner = f"... on {condition} {{ {selection} }}" if condition else selection
        selection = f"{name}{arguments} {{ __typename {inner} }}"
    operation = "query" if slot.root == "Query" else "mutation"
    header = f"({', '.join(definitions)})" if definitions else ""
    return f"{operation} Fuzz{header} {{ {selection} }}", variables


def hostile_variables(slot: Slot, variables: dict[str, Any], value: Any) -> dict[str, Any]:
    depth = len(slot.path) - 1
    variable = f"v{depth}_{slot.argument}"
    if not slot.inner:
        return {**variables, variable: value}
    holder = json.loads(json.dumps(variables.get(variable) or {}))
    target = holder
    for name in slot.inner[:-1]:
        target = target.setdefault(name, {})
    target[slot.inner[-1]] = value
    return {**variables, variable: holder}


def values_for(slot: Slot) -> list[Any]:
    return HOSTILE_JSON if slot.kind == "JSON" else HOSTILE_TEXT


async def headers_of(caller: str, gql: GraphQLClient, demo: SeedResult) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "connector":
        return {"Authorization": f"Bearer {demo.connector_keys['nova']}"}
    return {"Authorization": f"Bearer {await gql.token_for(f'{caller}@nova.test')}"}


async def test_hostile_strings_in_every_text_and_json_argument_never_crash(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    schema = await client_schema(gql)
    slots = slots_of(schema)
    subscription = await AddOnSubscription.get(add_on__code="integration-mercado-livre", tenant__slug="nova")
    filler = Filler(global_id("ActiveAddOn", subscription.id), clock.now().isoformat())
    headers = {caller: await headers_of(caller, gql, demo) for caller in CALLERS}
    crashes: list[str] = []
    calls = 0
    for slot in slots:
        document, variables = document_for(schema, slot, filler)
        for value in values_for(slot):
            payload = json.dumps({"query": document, "variables": hostile_variables(slot, variables, value)})
            for caller in CALLERS:
                response = await gql.http.post(
                    "/graphql",
                    content=payload,
                    headers={**headers[caller], "content-type": "application/json"},
                )
                calls += 1
                problem = problem_of(response.status_code, response.text, value)
                if problem:
                    crashes.append(f"{slot.label} as {caller} with {json.dumps(value)[:60]}: {problem}")

    labels = sorted({slot.label for slot in slots})
    print(f"\nhostile strings: {calls} calls, {len(slots)} argument positions: {labels}")
    assert not crashes, "\n".join(crashes[:30])
    # The introspection found the arguments this test is about (a guard against finding nothing).
    assert {"Query.addOn(code)", "Mutation.checkout(idempotencyKey)", "Query.alerts(after)"} <= set(labels)
    assert {"Mutation.reportUsage(idempotencyKey)", "Mutation.cancelAddOn(activeAddOnId)"} <= set(labels)
    assert any(label.endswith(".price(currency)") for label in labels)


def problem_of(status: int, text: str, value: Any) -> str | None:
    if status >= 500:
        return f"HTTP {status}"
    if status != 200:  # refused at the edge (a lone surrogate is no UTF-8): a clear 4xx is a fine answer
        return None if value_not_echoed(text, value) else "the answer echoes the value"
    body = json.loads(text)
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code == "INTERNAL_SERVER_ERROR" or error.get("message") == "Unexpected error.":
            return f"{code}: {error.get('message')}"
        if isinstance(value, str) and len(value) > 100 and value[:101] in error.get("message", ""):
            return "the message echoes more than 100 characters of the value"
    if not value_not_echoed(text, value):
        return "the answer echoes more than 100 characters of the value"
    return None


def value_not_echoed(text: str, value: Any) -> bool:
    return not (isinstance(value, str) and len(value) > 100 and value[:101] in text)
