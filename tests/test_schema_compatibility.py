"""The breaking-change guard: the schema changes by addition, or CHANGELOG.md says what it breaks.

Released schemas live in ``docs/schema/<version>.graphql``. graphql-core's ``find_breaking_changes`` compares
each released schema with the next one, and the last with the current schema (``app.schema``); every breaking
change it finds must be listed, by its schema coordinate in backticks (`Query.cart`, `Limits.storageMb`,
`AddOnStatus.CANCELING`, `Mutation.cancelAddOn(addOnId:)` or `Mutation.cancelAddOn`, `AddToCartResult` for a
member it lost; an interface's field covers its implementations' field), in CHANGELOG.md under the heading
of the version that made it ("## 0.2.0 ..."), or under "## Unreleased" for the current schema. A version
whose heading is written but whose schema is not copied yet is being released: its section counts for the
current schema too. A missing section lists nothing: no breaking change is allowed.

To write the changelog, print the breaking changes and their coordinates (OLD defaults to the last released
schema, NEW to the current one; ``*`` marks a coordinate the changelog does not list yet):

    python -m tests.test_schema_compatibility [OLD.graphql [NEW.graphql]]
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from graphql import BreakingChange, BreakingChangeType, GraphQLSchema, build_schema, find_breaking_changes

ROOT = Path(__file__).resolve().parents[1]
RELEASES = ROOT / "docs" / "schema"
CHANGELOG = ROOT / "CHANGELOG.md"
UNRELEASED = "Unreleased"
CURRENT = "the current schema"

NAME = r"[_A-Za-z][_0-9A-Za-z]*"
FIELD = rf"{NAME}\.{NAME}"
ARGUMENT = rf"(?:@{NAME}|{FIELD})\({NAME}:\)"

# Each kind of breaking change, and the wording graphql-core gives it (graphql/utilities/
# find_schema_changes.py); the group "at" is the coordinate the changelog must name.
SHAPES: dict[BreakingChangeType, re.Pattern[str]] = {
    BreakingChangeType.TYPE_REMOVED: re.compile(
        rf"(?:Standard scalar )?(?P<at>{NAME}) was removed(?: because it is not referenced anymore)?\."
    ),
    BreakingChangeType.TYPE_CHANGED_KIND: re.compile(
        rf"(?P<at>{NAME}) changed from an? \w+ type to an? \w+ type\."
    ),
    BreakingChangeType.TYPE_REMOVED_FROM_UNION: re.compile(
        rf"{NAME} was removed from union type (?P<at>{NAME})\."
    ),
    BreakingChangeType.VALUE_REMOVED_FROM_ENUM: re.compile(rf"Enum value (?P<at>{FIELD}) was removed\."),
    BreakingChangeType.REQUIRED_INPUT_FIELD_ADDED: re.compile(
        rf"A required field (?P<at>{FIELD}) was added\."
    ),
    BreakingChangeType.IMPLEMENTED_INTERFACE_REMOVED: re.compile(
        rf"(?P<at>{NAME}) no longer implements interface {NAME}\."
    ),
    BreakingChangeType.FIELD_REMOVED: re.compile(rf"Field (?P<at>{FIELD}) was removed\."),
    BreakingChangeType.FIELD_CHANGED_KIND: re.compile(rf"Field (?P<at>{FIELD}) changed type from .+ to .+\."),
    BreakingChangeType.REQUIRED_ARG_ADDED: re.compile(rf"A required argument (?P<at>{ARGUMENT}) was added\."),
    BreakingChangeType.ARG_REMOVED: re.compile(rf"Argument (?P<at>{ARGUMENT}) was removed\."),
    BreakingChangeType.ARG_CHANGED_KIND: re.compile(
        rf"Argument (?P<at>{ARGUMENT}) has changed type from .+ to .+\."
    ),
    BreakingChangeType.DIRECTIVE_REMOVED: re.compile(rf"Directive (?P<at>@{NAME}) was removed\."),
    BreakingChangeType.DIRECTIVE_ARG_REMOVED: re.compile(
        rf"Argument (?P<at>@{NAME}\({NAME}:\)) was removed\."
    ),
    BreakingChangeType.REQUIRED_DIRECTIVE_ARG_ADDED: re.compile(
        rf"A required argument (?P<at>@{NAME}\({NAME}:\)) was added\."
    ),
    BreakingChangeType.DIRECTIVE_REPEATABLE_REMOVED: re.compile(
        rf"Repeatable flag was removed from (?P<at>@{NAME})\."
    ),
    BreakingChangeType.DIRECTIVE_LOCATION_REMOVED: re.compile(rf"[A-Z_]+ was removed from (?P<at>@{NAME})\."),
}

# What a backticked span of the changelog names: its leading coordinate (`Limits.storageBytes: Long!`
# names Limits.storageBytes; `reportUsage(input:)` names no coordinate of the schema).
LEADING_COORDINATE = re.compile(rf"@?{NAME}(?:\.{NAME})?(?:\({NAME}:\))?")


def coordinate(change: BreakingChange) -> str:
    """The schema coordinate a breaking change touches, read from graphql-core's description."""
    shape = SHAPES.get(change.type)
    found = shape.fullmatch(change.description) if shape else None
    if found is None:
        raise ValueError(f"unknown wording of {change.type.name}: {change.description!r}")
    return found["at"]


def listed_coordinates(section: str) -> set[str]:
    """The coordinates a changelog section names in backticks."""
    spans = re.findall(r"`([^`]+)`", section)  # a code span may wrap onto the next line
    return {found[0] for span in spans if (found := LEADING_COORDINATE.match(span.strip()))}


def covering(at: str, old: GraphQLSchema) -> set[str]:
    """The coordinates whose listing covers a change at ``at``: itself; an argument's field
    (`Mutation.cancelAddOn` covers `Mutation.cancelAddOn(addOnId:)`); the field of an interface the type
    implements (`Error.code` covers `NotFoundError.code`: an implementation follows its interface)."""
    field = at.split("(")[0]
    type_name, _, field_name = field.partition(".")
    interfaces = getattr(old.get_type(type_name), "interfaces", [])
    inherited = {
        f"{interface.name}.{field_name}" for interface in interfaces if field_name in interface.fields
    }
    return {at, field, *inherited}


def section(changelog: str, heading: str) -> str:
    """The text under the level-2 heading starting with ``heading`` ("0.2.0", "Unreleased"); "" if absent."""
    found = re.search(
        rf"^## {re.escape(heading)}(?=[ \t]|$).*?$(?P<body>.*?)(?=^## |\Z)", changelog, re.M | re.S
    )
    return found["body"] if found else ""


def unlisted(old_sdl: str, new_sdl: str, changelog_section: str) -> list[tuple[str, BreakingChange]]:
    """The breaking changes from ``old_sdl`` to ``new_sdl`` that the section does not list, by coordinate."""
    listed = listed_coordinates(changelog_section)
    old = build_schema(old_sdl)
    found = [(coordinate(change), change) for change in find_breaking_changes(old, build_schema(new_sdl))]
    return [(at, change) for at, change in found if not covering(at, old) & listed]


def breaking_changes(old_sdl: str, new_sdl: str) -> list[BreakingChange]:
    return find_breaking_changes(build_schema(old_sdl), build_schema(new_sdl))


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def releases() -> list[str]:
    """The released versions, oldest first."""
    return sorted((path.stem for path in RELEASES.glob("*.graphql")), key=version_key)


def released_sdl(version: str) -> str:
    return (RELEASES / f"{version}.graphql").read_text()


def current_sdl() -> str:
    from app.schema import schema  # imported late: the module's own helpers need no app

    return schema.as_str()


@dataclass(frozen=True)
class Step:
    """One comparison: from a released schema to the next one, or to the current schema."""

    old: str
    new: str  # a version, or CURRENT
    headings: tuple[str, ...]  # the changelog sections that may list its breaking changes

    def new_sdl(self) -> str:
        return current_sdl() if self.new == CURRENT else released_sdl(self.new)

    def changelog_section(self, changelog: str) -> str:
        return "\n".join(section(changelog, heading) for heading in self.headings)


def steps(changelog: str, versions: list[str]) -> list[Step]:
    """The comparisons to make, given the released ``versions`` (oldest first)."""
    between = [Step(old, new, (new,)) for old, new in itertools.pairwise(versions)]
    headings = re.findall(r"^## (\d+(?:\.\d+)*)\b", changelog, re.M)
    if not versions:
        return between
    being_released = [v for v in headings if version_key(v) > version_key(versions[-1])]
    return [*between, Step(versions[-1], CURRENT, (UNRELEASED, *being_released))]


# --- the guard ------------------------------------------------------------------------------------------


def test_a_released_schema_is_there() -> None:
    assert "0.1.0" in releases()
    for version in releases():
        build_schema(released_sdl(version))  # each one is a valid schema


@pytest.mark.parametrize(
    "step", steps(CHANGELOG.read_text(), releases()), ids=lambda step: f"{step.old}->{step.new}"
)
def test_every_breaking_change_is_in_the_changelog(step: Step) -> None:
    missing = unlisted(released_sdl(step.old), step.new_sdl(), step.changelog_section(CHANGELOG.read_text()))

    assert not missing, (
        f"breaking changes from {step.old} to {step.new} that CHANGELOG.md does not list under "
        f"{' or '.join(step.headings)} (by coordinate, in backticks):\n"
        + "\n".join(f"  `{at}`: {change.description}" for at, change in missing)
    )


# --- the guard's own parts ------------------------------------------------------------------------------

BEFORE = """
directive @audit(level: Int, note: String) repeatable on FIELD_DEFINITION | OBJECT
directive @gone on FIELD_DEFINITION
interface Node { id: ID! }
type Query { cart(id: ID!, currency: String): Cart, status: Status, item: Item, kept: Kept }
type Cart implements Node { id: ID!, total: Int!, note: String }
type Kept { a: Int }
type Gone { a: Int }
type Other { a: Int }
union Item = Cart | Other
enum Status { ACTIVE CANCELING }
input Report { count: Int! }
type Mutation { report(input: Report!): Int }
"""

# (what changes in BEFORE, as (old text, new text) replacements; the coordinate; the kind of change)
SHAPE_CASES = [
    (("type Gone { a: Int }", ""), "Gone", BreakingChangeType.TYPE_REMOVED),
    (("type Kept { a: Int }", "union Kept = Other"), "Kept", BreakingChangeType.TYPE_CHANGED_KIND),
    (("union Item = Cart | Other", "union Item = Cart"), "Item", BreakingChangeType.TYPE_REMOVED_FROM_UNION),
    (
        ("ACTIVE CANCELING", "ACTIVE CANCELLING"),
        "Status.CANCELING",
        BreakingChangeType.VALUE_REMOVED_FROM_ENUM,
    ),
    (
        ("input Report { count: Int! }", "input Report { count: Int!, key: String! }"),
        "Report.key",
        BreakingChangeType.REQUIRED_INPUT_FIELD_ADDED,
    ),
    (
        ("type Cart implements Node", "type Cart"),
        "Cart",
        BreakingChangeType.IMPLEMENTED_INTERFACE_REMOVED,
    ),
    ((", note: String }", " }"), "Cart.note", BreakingChangeType.FIELD_REMOVED),
    (
        ("input Report { count: Int! }", "input Report { total: Int }"),
        "Report.count",
        BreakingChangeType.FIELD_REMOVED,
    ),
    (("total: Int!", "total: String!"), "Cart.total", BreakingChangeType.FIELD_CHANGED_KIND),
    (("input Report { count: Int! }", "input Report { count: String! }"), "Report.count", "input field type"),
    (
        ("status: Status,", "status(at: Int!): Status,"),
        "Query.status(at:)",
        BreakingChangeType.REQUIRED_ARG_ADDED,
    ),
    (
        ("cart(id: ID!, currency: String)", "cart(id: ID!)"),
        "Query.cart(currency:)",
        BreakingChangeType.ARG_REMOVED,
    ),
    (("cart(id: ID!,", "cart(id: Int!,"), "Query.cart(id:)", BreakingChangeType.ARG_CHANGED_KIND),
    (("@audit(level: Int,", "@audit(level: String,"), "@audit(level:)", "directive argument type"),
    (("directive @gone on FIELD_DEFINITION", ""), "@gone", BreakingChangeType.DIRECTIVE_REMOVED),
    (("note: String) repeatable", ") repeatable"), "@audit(note:)", BreakingChangeType.DIRECTIVE_ARG_REMOVED),
    (
        ("note: String) repeatable", "note: String, by: ID!) repeatable"),
        "@audit(by:)",
        BreakingChangeType.REQUIRED_DIRECTIVE_ARG_ADDED,
    ),
    (("repeatable on", "on"), "@audit", BreakingChangeType.DIRECTIVE_REPEATABLE_REMOVED),
    (
        ("FIELD_DEFINITION | OBJECT", "FIELD_DEFINITION"),
        "@audit",
        BreakingChangeType.DIRECTIVE_LOCATION_REMOVED,
    ),
]


def changed(replacement: tuple[str, str]) -> str:
    old, new = replacement
    assert old in BEFORE
    return BEFORE.replace(old, new, 1)


@pytest.mark.parametrize(("replacement", "expected", "kind"), SHAPE_CASES, ids=lambda case: str(case))
def test_each_wording_of_a_breaking_change_maps_to_its_coordinate(
    replacement: tuple[str, str], expected: str, kind: BreakingChangeType | str
) -> None:
    changes = breaking_changes(BEFORE, changed(replacement))

    assert expected in [coordinate(change) for change in changes], [c.description for c in changes]
    if isinstance(kind, BreakingChangeType):
        assert kind in {change.type for change in changes}


def test_the_cases_cover_every_kind_of_breaking_change() -> None:
    # A graphql-core that finds a new kind of breaking change needs its wording here (and a case).
    covered = {kind for _, _, kind in SHAPE_CASES}

    assert set(SHAPES) == set(BreakingChangeType)
    assert set(BreakingChangeType) <= covered


def test_a_standard_scalar_no_longer_referenced_is_its_type() -> None:
    change = breaking_changes("type Query { a: Float }", "type Query { a: Int }")

    assert "Float" in [coordinate(c) for c in change if c.type is BreakingChangeType.TYPE_REMOVED]


def test_an_unknown_wording_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="unknown wording"):
        coordinate(BreakingChange(BreakingChangeType.FIELD_REMOVED, "Query.cart went away."))


def test_the_changelog_lists_the_leading_coordinate_of_each_backticked_span() -> None:
    text = (
        "- `Limits.storageMb` is replaced by `Limits.storageBytes: Long!`; `AddOnStatus.CANCELLING`.\n"
        "- `cancelAddOn(addOnId:)`, `Mutation.undoCancellation(addOnId:)`, `@deprecated`.\n"
        "- `CartPayload` is gone; `ReportUsageSuccess { report,\n  creditUsage }` (was `UsageReported`).\n"
    )

    assert listed_coordinates(text) == {
        "Limits.storageMb",
        "Limits.storageBytes",
        "AddOnStatus.CANCELLING",
        "cancelAddOn(addOnId:)",
        "Mutation.undoCancellation(addOnId:)",
        "@deprecated",
        "CartPayload",
        "ReportUsageSuccess",
        "UsageReported",
    }


def test_a_change_is_covered_by_itself_its_field_or_its_interface_field() -> None:
    old = build_schema(BEFORE)

    assert covering("Query.cart(id:)", old) == {"Query.cart(id:)", "Query.cart"}
    assert covering("Cart.id", old) == {"Cart.id", "Node.id"}
    assert covering("Cart.total", old) == {"Cart.total"}  # Node has no total
    assert covering("Status.CANCELING", old) == {"Status.CANCELING"}
    assert covering("@audit(level:)", old) == {"@audit(level:)", "@audit"}


def test_an_interface_listed_covers_its_implementations() -> None:
    new = changed(("interface Node { id: ID! }", "interface Node { id: Int! }")).replace(
        "Cart implements Node { id: ID!", "Cart implements Node { id: Int!"
    )

    assert {at for at, _ in unlisted(BEFORE, new, "")} == {"Node.id", "Cart.id"}
    assert unlisted(BEFORE, new, "- `Node.id` is an `Int`.\n") == []
    assert [at for at, _ in unlisted(BEFORE, new, "- `Cart.id` is an `Int`.\n")] == ["Node.id"]


def test_an_unlisted_breaking_change_fails_the_check() -> None:
    new = changed(("ACTIVE CANCELING", "ACTIVE CANCELLING"))

    missing = unlisted(BEFORE, new, "- `Status.CANCELLING` is new.\n")

    assert [at for at, _ in missing] == ["Status.CANCELING"]
    assert unlisted(BEFORE, new, "- `Status.CANCELING` is now `Status.CANCELLING`.\n") == []
    assert [at for at, _ in unlisted(BEFORE, new, "")] == ["Status.CANCELING"]  # no section: nothing allowed
    assert unlisted(BEFORE, BEFORE + "type Added { a: Int }", "") == []  # additions need no entry


def test_a_section_ends_at_the_next_version() -> None:
    changelog = (
        "# Changelog\n\n## Unreleased\n\n- `Query.a`\n\n"
        "## 0.2.0 (2026-11-30): title\n\n### Cart\n- `Query.b`\n\n"
        "## 0.1.0\n\n- `Query.c`\n"
    )

    assert listed_coordinates(section(changelog, UNRELEASED)) == {"Query.a"}
    assert listed_coordinates(section(changelog, "0.2.0")) == {"Query.b"}
    assert listed_coordinates(section(changelog, "0.1.0")) == {"Query.c"}
    assert section(changelog, "0.3.0") == ""
    assert section(changelog, "0.2") == ""  # 0.2 is not 0.2.0


def test_the_steps_go_from_release_to_release_then_to_the_current_schema() -> None:
    versions = ["0.1.0", "0.2.0"]

    assert steps("## Unreleased\n## 0.2.0\n## 0.1.0\n", versions) == [
        Step("0.1.0", "0.2.0", ("0.2.0",)),
        Step("0.2.0", CURRENT, (UNRELEASED,)),
    ]
    # 0.3.0's heading is written but its schema not copied yet: the current schema is being released as it.
    assert steps("## 0.3.0\n## 0.2.0\n", versions)[-1] == Step("0.2.0", CURRENT, (UNRELEASED, "0.3.0"))


def test_the_command_prints_each_breaking_change_with_its_coordinate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.graphql", tmp_path / "new.graphql"
    old.write_text(BEFORE)
    new.write_text(changed((", note: String }", " }")))

    main([str(old), str(new)])

    out = capsys.readouterr().out
    assert "`Cart.note`" in out
    assert "Field Cart.note was removed." in out


# --- the command ----------------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    """Prints the breaking changes from OLD (default: the last release) to NEW (default: the current one)."""
    versions = releases()
    old = Path(argv[0]) if argv else RELEASES / f"{versions[-1]}.graphql"
    new, new_sdl = (argv[1], Path(argv[1]).read_text()) if len(argv) > 1 else (CURRENT, current_sdl())
    found = [(coordinate(change), change) for change in breaking_changes(old.read_text(), new_sdl)]
    not_yet: set[str] = set()
    if new == CURRENT:  # mark what the current schema's changelog sections do not list yet
        changelog = CHANGELOG.read_text()
        section_now = steps(changelog, versions)[-1].changelog_section(changelog)
        not_yet = {at for at, _ in unlisted(old.read_text(), new_sdl, section_now)}
    print(f"{len(found)} breaking change(s) from {old} to {new}")
    for at, change in sorted(found, key=lambda item: (item[0], item[1].description)):
        print(f"{'*' if at in not_yet else ' '} `{at}`: {change.description}")


if __name__ == "__main__":
    main(sys.argv[1:])
