"""The catalog file (issue 13, "catalog as data"): plans and add-ons written in YAML, read and validated.

The file is the catalog's source of truth: ``tollgate catalog apply FILE`` makes the database say what it
says (``app.services.catalog_apply``). Reading it never stops at the first problem: every error is
reported at once, each with the line of the offending key or value, sorted by line, so that an operator
fixes a file in one pass. ``docs/catalog.md`` documents every key.

Validation runs in three steps. The YAML parser (ruamel.yaml, which remembers the line of every key);
pydantic models per plan and per add-on (unknown keys with the closest known one suggested, missing keys,
types, amounts, enum values, bounds); then the rules that span items (currencies declared and complete,
locales, duplicate codes, references to plans and add-ons, requirement cycles, free add-ons).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from app import money
from app.models.enums import AddOnCategory, Cadence, StoragePolicy
from app.services.integrations import SettingKind

DEFAULT_LOCALE = "en"
MAX_NAME_LENGTH = 200  # Plan.name, AddOn.name
MAX_DESCRIPTION_LENGTH = 2000
MAX_ITEMS = 1000
MAX_NODES = 200_000  # values in the file, aliases expanded
MAX_BYTES = 5_000_000
_CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # as app.services.catalog.plausible_code
_FEATURE = r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,99}$"
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SETTING_NAME = r"^[a-z][a-z0-9_]{0,63}$"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ERP = r"^[a-z0-9-]{1,64}$"  # an ERP's name in erp_prices: a lowercase slug ("bling", "sap-b1")

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True, order=True)
class CatalogError:
    """One problem of the file: its line (1-based; 0 when the file has none), where and what."""

    line: int
    path: str
    message: str

    def render(self, filename: str) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{filename}:{self.line}: {where}{self.message}"


class InvalidCatalog(Exception):
    """The file is not a valid catalog; ``errors`` holds every problem, sorted by line."""

    def __init__(self, filename: str, errors: Sequence[CatalogError]) -> None:
        self.filename = filename
        self.errors = sorted(errors)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [error.render(self.filename) for error in self.errors]


def _amount(value: Any) -> str:
    """A price: a decimal string or number, at least zero. The currency's minor unit is checked later
    (it is known only with the currency)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PydanticCustomError("amount", 'not a decimal amount (write it as a string, "39.90")')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PydanticCustomError(
            "amount", "not a decimal amount: {value}", {"value": _shown(value)}
        ) from None
    if not amount.is_finite():
        raise PydanticCustomError("amount", "not a decimal amount: {value}", {"value": _shown(value)})
    if amount < 0:
        raise PydanticCustomError("amount", "a price cannot be negative: {value}", {"value": _shown(value)})
    if amount.as_tuple().exponent < -2 or amount >= Decimal("1e10"):  # type: ignore[operator]
        raise PydanticCustomError(
            "amount", "not a decimal amount with at most 2 decimals: {value}", {"value": _shown(value)}
        )
    return str(value).strip()


def _no_control(value: Any) -> Any:
    if isinstance(value, str) and _CONTROL.search(value):
        raise PydanticCustomError("text", "control characters are not allowed in text")
    return value


Amount = Annotated[str, BeforeValidator(_amount)]
Prices = dict[str, Amount]
Code = Annotated[str, Field(pattern=_CODE)]
Feature = Annotated[str, Field(pattern=_FEATURE)]
Name = Annotated[str, BeforeValidator(_no_control), Field(min_length=1, max_length=MAX_NAME_LENGTH)]
Description = Annotated[
    str, BeforeValidator(_no_control), Field(min_length=1, max_length=MAX_DESCRIPTION_LENGTH)
]
Count = Annotated[int, Field(ge=0, le=2_000_000_000)]
Erp = Annotated[str, Field(pattern=_ERP)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PlanLimits(_Spec):
    users: Count
    integrations: Count
    credits: Count
    storage_gb: Annotated[int, Field(ge=0, le=1_000_000)] = 10


class PlanSpec(_Spec):
    code: Code
    name: dict[str, Name]
    description: dict[str, Description] = Field(default_factory=dict)
    prices: Prices
    features: list[Feature] = Field(default_factory=list)
    limits: PlanLimits
    storage_policy: Annotated[StoragePolicy, Field(strict=False)] = StoragePolicy.HARD_CAP
    overage_per_gb: Prices = Field(default_factory=dict)
    process_buffer_percent: Annotated[int, Field(ge=0, le=1000)] = 33
    change_fee: Prices = Field(default_factory=dict)  # once, on changing to this plan; none: free


class Increments(_Spec):
    storage_mb: Count = 0
    users: Count = 0
    integrations: Count = 0
    credits: Count = 0


class ConfigurationFieldSpec(_Spec):
    name: Annotated[str, Field(pattern=_SETTING_NAME)]
    label: Name
    kind: Annotated[SettingKind, Field(strict=False)] = SettingKind.STRING
    secret: bool | None = None  # default: whether kind is SECRET
    required: bool = True

    @property
    def is_secret(self) -> bool:
        return self.kind == SettingKind.SECRET if self.secret is None else self.secret


class AddOnSpec(_Spec):
    code: Code
    name: dict[str, Name]
    description: dict[str, Description] = Field(default_factory=dict)
    # The conditions in the catalog's own words, per locale; none: composed from the rules below.
    conditions: dict[str, Description] = Field(default_factory=dict)
    category: Annotated[AddOnCategory, Field(strict=False)]
    cadence: Annotated[Cadence, Field(strict=False)] = Cadence.MONTHLY
    prices: Prices
    free: bool = False
    increments: Increments = Field(default_factory=Increments)
    features: list[Feature] = Field(default_factory=list)
    eligible_plans: list[Code] = Field(default_factory=list)
    requires: list[Code] = Field(default_factory=list)
    max_quantity: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    configuration: list[ConfigurationFieldSpec] = Field(default_factory=list)
    # Sold only for these ERPs, each at its own prices; none: sold for every ERP at ``prices``.
    erp_prices: dict[Erp, Prices] = Field(default_factory=dict)


class _Document(_Spec):
    currencies: list[str]
    locales: list[str] = Field(default_factory=lambda: [DEFAULT_LOCALE])
    plans: Annotated[list[Any], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)
    add_ons: Annotated[list[Any], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Catalog:
    """A valid catalog: items in file order (their ``sort_order``)."""

    currencies: tuple[str, ...]
    locales: tuple[str, ...]
    plans: tuple[PlanSpec, ...]
    add_ons: tuple[AddOnSpec, ...]


def load_path(path: Path | str) -> Catalog:
    """Read and validate the file at ``path`` (errors name it as given)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidCatalog(str(path), [CatalogError(0, "", f"cannot read the file: {error}")]) from None
    return parse(text, filename=str(path))


def parse(text: str, *, filename: str = "catalog.yaml") -> Catalog:
    """Validate ``text``; raise ``InvalidCatalog`` with every error found, sorted by line."""
    if len(text) > MAX_BYTES:
        raise InvalidCatalog(
            filename, [CatalogError(0, "", f"the file is larger than {MAX_BYTES} characters")]
        )
    try:
        tree = YAML(typ="rt").load(text)
    except YAMLError as error:
        mark = error.problem_mark if isinstance(error, MarkedYAMLError) else None
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InvalidCatalog(filename, [CatalogError(line, "", f"YAML syntax error: {problem}")]) from None
    reader = _Reader(tree)
    catalog = reader.read()
    if reader.errors:
        raise InvalidCatalog(filename, reader.errors)
    assert catalog is not None
    return catalog


class _Reader:
    def __init__(self, tree: Any) -> None:
        self.tree = tree
        self.errors: list[CatalogError] = []

    def error(self, path: Path_, message: str, *, key_line: bool = False) -> None:
        self.errors.append(CatalogError(_line_of(self.tree, path, key_line=key_line), _dotted(path), message))

    def read(self) -> Catalog | None:
        if not isinstance(self.tree, CommentedMap):
            self.error((), "the catalog must be a mapping with currencies, locales, plans and add_ons")
            return None
        try:
            plain = _plain(self.tree)
        except _TooLarge:
            self.error((), f"the catalog is too large: more than {MAX_NODES} values (aliases count expanded)")
            return None
        document = self.validate(_Document, plain, ())
        if document is None:
            return None
        currencies = self.check_currencies(document.currencies)
        locales = self.check_locales(document.locales)
        plans = [
            (index, spec)
            for index, raw in enumerate(document.plans)
            if (spec := self.validate(PlanSpec, raw, ("plans", index))) is not None
        ]
        add_ons = [
            (index, add_on)
            for index, raw in enumerate(document.add_ons)
            if (add_on := self.validate(AddOnSpec, raw, ("add_ons", index))) is not None
        ]
        for index, plan in plans:
            self.check_item(("plans", index), plan.name, {"description": plan.description}, locales)
            self.check_prices(("plans", index, "prices"), plan.prices, currencies)
            if plan.storage_policy == StoragePolicy.OVERAGE:
                self.check_prices(("plans", index, "overage_per_gb"), plan.overage_per_gb, currencies)
            elif plan.overage_per_gb:
                self.error(
                    ("plans", index, "overage_per_gb"),
                    "only a plan with storage_policy OVERAGE has overage prices",
                    key_line=True,
                )
            if plan.change_fee:
                self.check_prices(("plans", index, "change_fee"), plan.change_fee, currencies)
        for index, add_on in add_ons:
            texts = {"description": add_on.description, "conditions": add_on.conditions}
            self.check_item(("add_ons", index), add_on.name, texts, locales)
            self.check_prices(("add_ons", index, "prices"), add_on.prices, currencies)
            if add_on.free:
                for currency, amount in add_on.prices.items():
                    if Decimal(amount) != 0:
                        self.error(
                            ("add_ons", index, "prices", currency),
                            f"a free add-on costs nothing: {amount} is not 0",
                        )
            self.check_unique_names(("add_ons", index, "configuration"), add_on.configuration)
            if add_on.free and add_on.erp_prices:
                self.error(
                    ("add_ons", index, "erp_prices"),
                    "a free add-on is free for every ERP: remove erp_prices",
                    key_line=True,
                )
            for erp, prices in add_on.erp_prices.items():
                self.check_prices(("add_ons", index, "erp_prices", erp), prices, currencies)
        self.check_unique_codes("plans", plans)
        self.check_unique_codes("add_ons", add_ons)
        self.check_references(plans, add_ons, _codes(document.plans), _codes(document.add_ons))
        if self.errors:
            return None
        return Catalog(
            currencies=tuple(document.currencies),
            locales=tuple(document.locales),
            plans=tuple(spec for _, spec in plans),
            add_ons=tuple(spec for _, spec in add_ons),
        )

    def validate(self, model: type[M], raw: Any, path: Path_) -> M | None:
        try:
            return model.model_validate(raw)
        except ValidationError as invalid:
            for problem in invalid.errors():
                self.report(model, path, problem)
            return None

    def report(self, model: type[BaseModel], path: Path_, problem: Any) -> None:
        where = path + tuple(problem["loc"])
        kind = problem["type"]
        if where and where[-1] == "[key]":  # a mapping's key (an ERP's name): its own line
            if kind == "string_pattern_mismatch" and "erp_prices" in where:
                message = "not an ERP name (lowercase letters, digits and hyphens, at most 64): " + _shown(
                    where[-2]
                )
            else:
                message = _message(problem)
            self.error(where[:-1], message, key_line=True)
        elif kind == "missing":
            self.error(where[:-1], f"missing required key {where[-1]!r}")
        elif kind == "extra_forbidden":
            self.error(
                where, _unknown_key(str(where[-1]), _known_keys(model, problem["loc"][:-1])), key_line=True
            )
        elif kind in {"too_short", "too_long"} and isinstance(problem.get("input"), str):
            # A text (name, description, conditions) checked after its own validator: said in characters.
            context = problem.get("ctx") or {}
            if kind == "too_short":
                self.error(where, "must not be empty")
            else:
                self.error(
                    where, f"at most {context.get('max_length')} characters (got {len(problem['input'])})"
                )
        elif kind in {"amount", "text", "enum", "string_pattern_mismatch"} or kind.endswith(
            ("_than", "_equal", "_too_long", "_too_short")
        ):
            self.error(where, _message(problem))
        else:
            self.error(where, f"wrong type: {_message(problem)} (got {_shown(problem.get('input'))})")

    def check_currencies(self, currencies: list[str]) -> set[str]:
        known: set[str] = set()
        if not currencies:
            self.error(("currencies",), "declare at least one currency", key_line=True)
        for index, currency in enumerate(currencies):
            if not _CURRENCY.match(currency) or currency not in money.MINOR_UNITS:
                self.error(
                    ("currencies", index),
                    f"unknown currency code {_shown(currency)}: an ISO 4217 code Tollgate sells in "
                    f"({', '.join(sorted(money.MINOR_UNITS))})",
                )
            elif currency in known:
                self.error(("currencies", index), f"currency {currency} is declared twice")
            else:
                known.add(currency)
        return known

    def check_locales(self, locales: list[str]) -> set[str]:
        for index, locale in enumerate(locales):
            if not _LOCALE.match(locale):
                self.error(("locales", index), f"not a locale tag such as en, pt-BR or es: {_shown(locale)}")
        if DEFAULT_LOCALE not in locales:
            self.error(
                ("locales",), f"the locales must include the default {DEFAULT_LOCALE!r}", key_line=True
            )
        return set(locales)

    def check_item(
        self,
        path: Path_,
        name: Mapping[str, str],
        optional: Mapping[str, Mapping[str, str]],
        locales: set[str],
    ) -> None:
        """Texts per locale: every locale declared; the name in the default locale, and the optional texts
        (description, conditions) too when any locale is given."""
        for key, texts in (("name", name), *optional.items()):
            for locale in texts:
                if locale not in locales:
                    self.error(
                        (*path, key, locale),
                        f"locale {_shown(locale)} is not declared in locales",
                        key_line=True,
                    )
        if DEFAULT_LOCALE not in name:
            self.error(
                (*path, "name"),
                f"the name in the default locale {DEFAULT_LOCALE!r} is missing",
                key_line=True,
            )
        for key, texts in optional.items():
            if texts and DEFAULT_LOCALE not in texts:
                self.error(
                    (*path, key),
                    f"the {key} in the default locale {DEFAULT_LOCALE!r} is missing",
                    key_line=True,
                )

    def check_prices(self, path: Path_, prices: Mapping[str, str], currencies: set[str]) -> None:
        for currency, amount in prices.items():
            if currency not in currencies:
                self.error(
                    (*path, currency),
                    f"unknown currency code {_shown(currency)}: not in currencies",
                    key_line=True,
                )
            elif Decimal(amount) != money.round_amount(Decimal(amount), currency):
                self.error((*path, currency), f"{currency} has no fraction this small: {amount}")
        for currency in sorted(currencies - set(prices)):
            self.error(
                path, f"missing the price in {currency} (every declared currency needs one)", key_line=True
            )

    def check_unique_names(self, path: Path_, fields: Sequence[ConfigurationFieldSpec]) -> None:
        seen: set[str] = set()
        for index, field in enumerate(fields):
            if field.kind == SettingKind.SECRET and field.secret is False:
                self.error((*path, index, "secret"), "a SECRET field is always secret: remove secret: false")
            if field.name in seen:
                self.error((*path, index, "name"), f"duplicate configuration field {field.name!r}")
            seen.add(field.name)

    def check_unique_codes(self, key: str, items: Sequence[tuple[int, PlanSpec | AddOnSpec]]) -> None:
        first: dict[str, int] = {}
        for index, item in items:
            if item.code in first:
                line = _line_of(self.tree, (key, first[item.code], "code"))
                self.error((key, index, "code"), f"duplicate code {item.code!r} (first at line {line})")
            else:
                first[item.code] = index

    def check_references(
        self,
        plans: Sequence[tuple[int, PlanSpec]],
        add_ons: Sequence[tuple[int, AddOnSpec]],
        plan_codes: set[str],
        add_on_codes: set[str],
    ) -> None:
        # Codes of every item, invalid ones included: their own errors are reported, not their mentions.
        plan_codes = plan_codes | {plan.code for _, plan in plans}
        add_on_codes = add_on_codes | {add_on.code for _, add_on in add_ons}
        for index, add_on in add_ons:
            for position, code in enumerate(add_on.eligible_plans):
                if code not in plan_codes:
                    self.error(
                        ("add_ons", index, "eligible_plans", position),
                        f"unknown plan {code!r}" + _suggestion(code, plan_codes),
                    )
            for position, code in enumerate(add_on.requires):
                if code not in add_on_codes:
                    self.error(
                        ("add_ons", index, "requires", position),
                        f"unknown add-on {code!r}" + _suggestion(code, add_on_codes),
                    )
                elif code == add_on.code:
                    self.error(("add_ons", index, "requires", position), "an add-on cannot require itself")
        requires = {add_on.code: [c for c in add_on.requires if c != add_on.code] for _, add_on in add_ons}
        reported: set[frozenset[str]] = set()
        for index, add_on in add_ons:
            cycle = _cycle_from(add_on.code, requires)
            if cycle and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                self.error(
                    ("add_ons", index, "requires"),
                    "requirement cycle: " + " -> ".join([*cycle, cycle[0]]),
                    key_line=True,
                )


def _codes(items: Sequence[Any]) -> set[str]:
    return {item["code"] for item in items if isinstance(item, dict) and isinstance(item.get("code"), str)}


def _cycle_from(start: str, requires: Mapping[str, list[str]]) -> list[str] | None:
    """The requirement cycle through ``start``, if any (depth-first search along ``requires``)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        code, trail = stack.pop()
        for needed in requires.get(code, []):
            if needed == start:
                return trail
            if needed not in seen and needed in requires:
                seen.add(needed)
                stack.append((needed, [*trail, needed]))
    return None


class _TooLarge(Exception):
    pass


def _plain(node: Any, budget: list[int] | None = None) -> Any:
    """The parsed tree as plain dicts, lists and scalars (ruamel's own types are subclasses that the
    strict models would judge by their class). Aliases expand here: past ``MAX_NODES`` values (a
    "billion laughs" file) the expansion stops with ``_TooLarge``."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge()
    if isinstance(node, Mapping):
        return {
            key if isinstance(key, int | float | bool) else str(key): _plain(v, budget)
            for key, v in node.items()
        }
    if isinstance(node, list):
        return [_plain(item, budget) for item in node]
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def _line_of(tree: Any, path: Path_, *, key_line: bool = False) -> int:
    """The 1-based line of the node at ``path``: a scalar's value, else the line of its key (or of its
    list item); for a path that goes missing, the line of the closest enclosing node that exists."""
    node = tree
    line = 0
    for step in path:
        if isinstance(node, CommentedMap) and step in node:
            value = node[step]
            container = isinstance(value, CommentedMap | CommentedSeq)
            line = node.lc.key(step)[0] if key_line or container else node.lc.value(step)[0]
        elif isinstance(node, CommentedSeq) and isinstance(step, int) and 0 <= step < len(node):
            value = node[step]
            line = node.lc.item(step)[0]
        else:
            break
        node = value
    return line + 1


def _dotted(path: Path_) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _known_keys(model: type[BaseModel], loc: Iterable[Any]) -> list[str]:
    """The keys allowed where an unknown key was met (``loc`` inside ``model``)."""
    current: Any = model
    for step in loc:
        if isinstance(step, int) or current is None:
            continue
        field = current.model_fields.get(step) if isinstance(current, type) else None  # type: ignore[attr-defined]
        current = _model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _unknown_key(key: str, known: list[str]) -> str:
    return (
        f"unknown key {_shown(key)}"
        + _suggestion(key, known)
        + (
            f"; allowed: {', '.join(known)}"
            if known and not difflib.get_close_matches(key, known, n=1)
            else ""
        )
    )


def _suggestion(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _message(problem: Any) -> str:
    message = str(problem["msg"])
    return message[0].lower() + message[1:] if message else message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
