"""The API reference (``docs/reference.md``) written from the schema itself: every query, mutation and
subscription with its arguments, result and description, then every type they reach.

``tollgate export-schema --markdown`` prints it; ``tests/test_reference_doc.py`` fails when the committed page
is not what this gives, so the reference changes with the schema in the same commit."""

from __future__ import annotations

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    GraphQLUnionType,
    get_named_type,
    is_specified_scalar_type,
    print_ast,
)
from graphql.utilities import ast_from_value

HEADER = """# API reference

Every operation of `POST /graphql` (and of its WebSocket, for subscriptions) and every type they use,
written from the schema by `tollgate export-schema --markdown`: do not edit this page by hand. How to call
the API is in the [clients' guide](clients.md), the conventions it follows (result unions, errors, ids,
pagination, idempotency keys) in [API conventions](api-conventions.md), and the schema itself is
[`schema.graphql`](../schema.graphql). A `!` marks a value that is never null (an argument that is required).
"""

ROOTS = (("Queries", "query"), ("Mutations", "mutation"), ("Subscriptions", "subscription"))
KINDS = (
    ("Objects", GraphQLObjectType),
    ("Interfaces", GraphQLInterfaceType),
    ("Unions", GraphQLUnionType),
    ("Input objects", GraphQLInputObjectType),
    ("Enums", GraphQLEnumType),
    ("Scalars", GraphQLScalarType),
)


def reference_markdown(schema: GraphQLSchema) -> str:
    """The reference page of ``schema`` (a graphql-core schema: ``strawberry.Schema._schema``)."""
    lines = [HEADER]
    roots = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }
    for title, operation in ROOTS:
        root = roots[operation]
        if root is None:
            continue
        lines += [f"## {title}", ""]
        for name, field in sorted(root.fields.items()):
            lines += _operation(name, field)
    reachable = _reachable(schema)
    for title, kind in KINDS:
        found = [named for named in reachable if isinstance(named, kind)]
        if not found:
            continue
        lines += [f"## {title}", ""]
        for named in found:
            lines += _type(named)
    return "\n".join(lines).rstrip() + "\n"


def _operation(name: str, field: GraphQLField) -> list[str]:
    lines = [f"### `{name}`", "", f"Returns {_ref(field.type)}.", ""]
    lines += _paragraph(field.description, field.deprecation_reason)
    if field.args:
        lines += ["| Argument | Type | Description |", "| --- | --- | --- |"]
        for arg_name, arg in field.args.items():
            described = _cell(arg.description, arg.deprecation_reason)
            lines.append(f"| `{arg_name}` | {_ref(arg.type)}{_default(arg)} | {described} |")
        lines.append("")
    return lines


def _type(named: GraphQLNamedType) -> list[str]:
    lines = [f"### {named.name}", ""]
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType) and named.interfaces:
        lines += ["Implements " + ", ".join(_ref(interface) for interface in named.interfaces) + ".", ""]
    lines += _paragraph(named.description, None)
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        lines += [_field_line(name, field) for name, field in named.fields.items()]
    elif isinstance(named, GraphQLInputObjectType):
        for name, field in named.fields.items():
            described = _dash(field.description, field.deprecation_reason)
            lines.append(f"- `{name}`: {_ref(field.type)}{_default(field)}{described}")
    elif isinstance(named, GraphQLUnionType):
        lines.append("One of " + ", ".join(_ref(member) for member in named.types) + ".")
    elif isinstance(named, GraphQLEnumType):
        lines += [
            f"- `{name}`{_dash(value.description, value.deprecation_reason)}"
            for name, value in named.values.items()
        ]
    if lines[-1] != "":
        lines.append("")
    return lines


def _field_line(name: str, field: GraphQLField) -> str:
    arguments = ""
    if field.args:
        arguments = (
            "(" + ", ".join(f"{arg_name}: {_plain(arg.type)}" for arg_name, arg in field.args.items()) + ")"
        )
    return f"- `{name}{arguments}`: {_ref(field.type)}{_dash(field.description, field.deprecation_reason)}"


def _reachable(schema: GraphQLSchema) -> list[GraphQLNamedType]:
    """The named types the root operations reach (through fields, arguments, interfaces and union members),
    by name; the specified scalars and introspection types left out."""
    seen: dict[str, GraphQLNamedType] = {}
    pending: list[GraphQLNamedType] = [
        root
        for root in (schema.query_type, schema.mutation_type, schema.subscription_type)
        if root is not None
    ]
    roots = {root.name for root in pending}
    while pending:
        named = pending.pop()
        if named.name in seen:
            continue
        seen[named.name] = named
        following: list[GraphQLType] = []
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            following += named.interfaces
            for field in named.fields.values():
                following += [field.type, *(arg.type for arg in field.args.values())]
            if isinstance(named, GraphQLInterfaceType):
                following += schema.get_possible_types(named)
        elif isinstance(named, GraphQLUnionType):
            following += named.types
        elif isinstance(named, GraphQLInputObjectType):
            following += [field.type for field in named.fields.values()]
        pending += [get_named_type(type_) for type_ in following]
    return sorted(
        (
            named
            for name, named in seen.items()
            if name not in roots
            and not name.startswith("__")
            and not (isinstance(named, GraphQLScalarType) and is_specified_scalar_type(named))
        ),
        key=lambda named: named.name,
    )


def _ref(type_: GraphQLType) -> str:
    """``[Type](#type)!`` with the list and non-null wrappers of ``type_``."""
    if isinstance(type_, GraphQLNonNull):
        return _ref(type_.of_type) + "!"
    if isinstance(type_, GraphQLList):
        return "[" + _ref(type_.of_type) + "]"
    named = get_named_type(type_)
    assert named is not None
    if isinstance(named, GraphQLScalarType) and is_specified_scalar_type(named):
        return f"`{named.name}`"
    return f"[`{named.name}`](#{named.name.lower()})"


def _plain(type_: GraphQLType) -> str:
    return str(type_)


def _default(value: GraphQLArgument | GraphQLInputField) -> str:
    if value.default_value is None or value.ast_node is None or value.ast_node.default_value is None:
        literal = ast_from_value(value.default_value, value.type) if value.default_value is not None else None
        return f" = `{print_ast(literal)}`" if literal is not None else ""
    return f" = `{print_ast(value.ast_node.default_value)}`"


def _paragraph(description: str | None, deprecation: str | None) -> list[str]:
    lines = []
    if description:
        lines += [description.strip(), ""]
    if deprecation:
        lines += [f"**Deprecated:** {deprecation}", ""]
    return lines


def _dash(description: str | None, deprecation: str | None) -> str:
    text = " ".join((description or "").split())
    if deprecation:
        text = f"{text} **Deprecated:** {deprecation}".strip()
    return f" — {text}" if text else ""


def _cell(description: str | None, deprecation: str | None) -> str:
    return _dash(description, deprecation).removeprefix(" — ").replace("|", "\\|")
