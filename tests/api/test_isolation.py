"""Tenant isolation, proven structurally and by trying (issue 6).

1. Every root field declares a permission, apart from an explicit public list; every tenant field states
   which scopes may use it (issue 11: the matrix of fields x callers is tests/api/test_access_matrix.py).
2. Every field taking an ``ID`` is called as tenant A with tenant B's ids: the answer is the one an unknown id
   gets, nothing of B comes back, and nothing of B changes.
"""

from __future__ import annotations

import uuid
from typing import Any

from strawberry.permission import PermissionExtension
from strawberry.types.base import StrawberryList, StrawberryOptional

from app.models.billing import AddOnSubscription
from app.models.tenancy import Tenant
from app.resolvers.ids import global_id
from app.resolvers.permissions import RequireScope
from app.schema import schema
from app.seed import SeedResult
from tests.conftest import GraphQLClient

PUBLIC = {"Query.plans", "Query.addOns", "Query.addOn", "Query.planRecommendation"}
ROOTS = ("Query", "Mutation", "Subscription")


def root_fields() -> list[tuple[str, Any]]:
    found = []
    for root in ROOTS:
        definition = schema.get_type_by_name(root)
        if definition is not None:
            found += [
                (
                    f"{root}.{field.graphql_name or schema.config.name_converter.get_graphql_name(field)}",
                    field,
                )
                for field in definition.fields
            ]
    return found


def declared_permissions(field: Any) -> list[Any]:
    return [
        permission
        for extension in field.extensions
        if isinstance(extension, PermissionExtension)
        for permission in extension.permissions
    ]


def test_every_root_field_declares_a_permission_unless_public() -> None:
    fields = root_fields()
    unguarded = sorted(
        name for name, field in fields if not declared_permissions(field) and name not in PUBLIC
    )

    assert not unguarded, f"fields without a permission: {unguarded}"
    assert {name for name, _ in fields} >= PUBLIC
    print(f"\nisolation: {len(fields)} root fields checked, {len(PUBLIC)} public by design")


# Fields any valid credential may use: who is calling (API.md's viewer), no tenant data beyond its name.
ANY_CREDENTIAL = {"Query.viewer"}


def test_every_tenant_field_states_which_scopes_may_use_it() -> None:
    vague = sorted(
        name
        for name, field in root_fields()
        if name not in PUBLIC | ANY_CREDENTIAL
        and not any(isinstance(permission, RequireScope) for permission in declared_permissions(field))
    )
    assert not vague, f"fields open to any credential, whatever its scopes: {vague}"


def id_fields() -> list[tuple[str, str, Any]]:
    """(root, field name, field) of every Query/Mutation field with an ID argument."""
    return [
        (name.split(".")[0], name.split(".")[1], field)
        for name, field in root_fields()
        if name.split(".")[0] != "Subscription" and any(argument_type(a) == "ID" for a in field.arguments)
    ]


def argument_type(argument: Any) -> str:
    annotation = argument.type
    while isinstance(annotation, StrawberryOptional | StrawberryList):
        annotation = annotation.of_type
    return getattr(annotation, "__name__", None) or getattr(annotation, "name", None) or str(annotation)


def document_for(root: str, name: str, field: Any) -> tuple[str, list[str]]:
    """The operation calling ``name`` with every argument as a variable; returns it and the ID arguments."""
    graphql_type = schema._schema.get_type(root).fields[name]  # type: ignore[union-attr]
    variables = ", ".join(f"${arg}: {spec.type}" for arg, spec in graphql_type.args.items())
    arguments = ", ".join(f"{arg}: ${arg}" for arg in graphql_type.args)
    ids = [arg for arg, spec in graphql_type.args.items() if str(spec.type).rstrip("!") == "ID"]
    operation = "query" if root == "Query" else "mutation"
    selection = "{ __typename ... on Error { code message field } }"
    return f"{operation} Probe({variables}) {{ probe: {name}({arguments}) {selection} }}", ids


def echoed(answer: dict[str, Any], sent: str) -> str:
    """The answer with the id sent replaced by a placeholder: error messages may quote what was sent."""
    return str(answer).replace(sent, "<the id sent>")


def filler(graphql_type: str) -> Any:
    return {"JSON": {}, "String": "x", "Int": 1, "Boolean": False}.get(graphql_type.rstrip("!"))


async def test_no_field_answers_anything_about_another_tenants_ids(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    nova = await Tenant.get(slug="nova")
    # The fields taking an id take an active add-on's (ActiveAddOn.id): nova's, as myPlan shows them.
    nova_ids = [global_id("ActiveAddOn", row.id) for row in await AddOnSubscription.filter(tenant_id=nova.id)]
    unknown_id = global_id("ActiveAddOn", 10**9)  # well formed, of the right type, naming nothing
    before = [
        (row.id, row.status, row.ends_at, row.configuration)
        for row in await AddOnSubscription.filter(tenant_id=nova.id).order_by("id")
    ]
    probed = []
    for root, name, field in id_fields():
        document, ids = document_for(root, name, field)
        others = {
            arg: filler(str(spec.type))
            for arg, spec in schema._schema.get_type(root).fields[name].args.items()
            if arg not in ids
        }  # type: ignore[union-attr]
        unknown = await gql.post(
            document, {**others, **dict.fromkeys(ids, unknown_id)}, as_="admin@acme.test"
        )
        garbage = await gql.post(
            document, {**others, **dict.fromkeys(ids, str(uuid.uuid4()))}, as_="admin@acme.test"
        )
        assert unknown["data"]["probe"]["__typename"] == garbage["data"]["probe"]["__typename"], name
        for nova_id in nova_ids:
            answer = await gql.post(
                document, {**others, **dict.fromkeys(ids, nova_id)}, as_="admin@acme.test"
            )
            # The answer may quote the id sent back, and nothing else differs.
            assert echoed(answer, nova_id) == echoed(unknown, unknown_id), (
                f"{name} answers differently for another tenant's id"
            )
        assert unknown["data"]["probe"]["__typename"].endswith("Error") or unknown.get("errors"), unknown
        probed.append(name)

    after = [
        (row.id, row.status, row.ends_at, row.configuration)
        for row in await AddOnSubscription.filter(tenant_id=nova.id).order_by("id")
    ]
    assert after == before
    assert probed, "no field takes an ID: nothing was probed"
    print(f"\nisolation: {len(probed)} ID fields probed with {len(nova_ids)} ids of another tenant: {probed}")
