"""Coupons as operators manage them (issue 13): create, list with their redemptions, deactivate.

How a coupon is applied and redeemed at checkout is ``app.services.coupons``; this module writes the
rows that one reads, with every rule a checkout relies on checked first (a FIXED coupon has an amount
per currency, a REPEATING one a number of periods...), so that no coupon can exist that checkout would
misread. Each change is audited with the operator key that made it, in the same transaction.

Retries: a coupon's code is its identity (unique, chosen by the operator), so ``create_coupon`` is
idempotent on it. The same code with the same terms returns the coupon that exists (``replayed``), a
concurrent twin included; the same code with other terms is ``CouponCodeTaken``. No separate key is
needed, and none could be reused by mistake for another coupon.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.auth.operator import Operator
from app.i18n import _
from app.models.catalog import AddOn
from app.models.coupons import Coupon
from app.models.enums import AddOnCategory, CouponDuration, CouponKind
from app.models.store import CouponRedemption
from app.services import cursors, operator_audit
from app.services.cursors import Page
from app.services.errors import DomainError, ErrorCode, InvalidInput, NotFound, shown

# Letters and digits of ASCII only: customers type codes, and look-alike letters (a Cyrillic A) would
# make two codes that read the same.
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{2,64}")
DESCRIPTION_MAX_LENGTH = 300  # Coupon.description
MAX_DURATION_PERIODS = 120  # ten years of monthly periods
# The currencies environments are billed in (the catalog's prices): an amount in another one is never used.
COUPON_CURRENCIES = ("BRL", "EUR")
MAX_ADD_ON_CODES = 100  # a restriction to more add-ons than a catalog holds is a mistake (or an attack)
MAX_AMOUNT_OFF = Decimal("9999999999.99")  # what an order's amounts can hold (12 digits, 2 decimals)
CENT = Decimal("0.01")
# Bidirectional overrides and isolates reorder what an operator reads ("Trojan Source"): refused.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class CouponCodeTaken(DomainError):
    code = ErrorCode.COUPON_CODE_TAKEN
    default_message = _("A coupon with this code exists with other terms.")


@dataclass(frozen=True, slots=True)
class CouponDraft:
    """What an operator asks for, as typed (validated by ``validated``)."""

    code: str
    kind: CouponKind
    duration: CouponDuration
    description: str = ""
    percent_off: Decimal | None = None
    amounts_off: Sequence[tuple[str, Decimal]] = ()  # (currency, amount)
    duration_periods: int | None = None
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    max_redemptions: int | None = None
    applies_to_add_on_codes: Sequence[str] = ()
    applies_to_categories: Sequence[AddOnCategory] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class CreatedCoupon:
    coupon: Coupon
    replayed: bool  # the coupon existed with these terms (a retry): nothing was written


@dataclass(frozen=True, slots=True)
class DeactivatedCoupon:
    coupon: Coupon
    changed: bool  # False: it was inactive already (nothing written, nothing audited)


def _field(name: str) -> str:
    return f"input.{name}"


def _validate_code(code: str) -> str:
    candidate = code.strip()
    if not CODE_PATTERN.fullmatch(candidate):
        raise InvalidInput(
            _("A coupon code is 2 to 64 letters (A-Z), digits, '-' or '_': {code} is not.", code=shown(code)),
            field=_field("code"),
        )
    return candidate.upper()


def _validate_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise InvalidInput(
            _(
                "A description is at most {description_max_length} characters.",
                description_max_length=DESCRIPTION_MAX_LENGTH,
            ),
            field=_field("description"),
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS for c in description):
        raise InvalidInput(
            _("A description may not contain control characters or direction overrides."),
            field=_field("description"),
        )
    return description


def _has_cents_at_most(value: Decimal) -> bool:
    return value.is_finite() and value == value.quantize(CENT)


def _validate_percent(draft: CouponDraft) -> Decimal:
    if draft.amounts_off:
        raise InvalidInput(_("A PERCENT coupon takes no amountsOff."), field=_field("amountsOff"))
    percent = draft.percent_off
    if percent is None:
        raise InvalidInput(_("A PERCENT coupon needs percentOff."), field=_field("percentOff"))
    if not (_has_cents_at_most(percent) and Decimal(0) < percent <= 100):
        raise InvalidInput(
            _("percentOff is above 0 and at most 100, with at most 2 decimals."), field=_field("percentOff")
        )
    return percent.quantize(CENT)


def _validate_amounts(draft: CouponDraft) -> dict[str, str]:
    if draft.percent_off is not None:
        raise InvalidInput(_("A FIXED coupon takes no percentOff."), field=_field("percentOff"))
    if not draft.amounts_off:
        raise InvalidInput(
            _("A FIXED coupon needs amountsOff: one amount per currency."), field=_field("amountsOff")
        )
    amounts: dict[str, str] = {}
    for index, (currency, amount) in enumerate(draft.amounts_off):
        where = _field(f"amountsOff[{index}]")
        if currency not in COUPON_CURRENCIES:
            raise InvalidInput(
                _(
                    "Currency {currency} is not one environments are billed in ({currencies}).",
                    currency=shown(currency),
                    currencies=", ".join(COUPON_CURRENCIES),
                ),
                field=f"{where}.currency",
            )
        if currency in amounts:
            raise InvalidInput(
                _("Two amounts in {currency}: give one.", currency=currency), field=f"{where}.currency"
            )
        if not (_has_cents_at_most(amount) and Decimal(0) < amount <= MAX_AMOUNT_OFF):
            raise InvalidInput(
                _(
                    "An amount off is above 0 and at most {max_amount_off}, with at most 2 decimals.",
                    max_amount_off=MAX_AMOUNT_OFF,
                ),
                field=f"{where}.amount",
            )
        amounts[currency] = str(amount.quantize(CENT))
    return amounts


def _validate_duration(draft: CouponDraft) -> int | None:
    periods = draft.duration_periods
    if draft.duration != CouponDuration.REPEATING:
        if periods is not None:
            raise InvalidInput(
                _(
                    "durationPeriods is for REPEATING coupons only, not {duration}.",
                    duration=draft.duration.value,
                ),
                field=_field("durationPeriods"),
            )
        return None
    if periods is None:
        raise InvalidInput(_("A REPEATING coupon needs durationPeriods."), field=_field("durationPeriods"))
    if not 1 <= periods <= MAX_DURATION_PERIODS:
        raise InvalidInput(
            _(
                "durationPeriods is between 1 and {max_duration_periods}.",
                max_duration_periods=MAX_DURATION_PERIODS,
            ),
            field=_field("durationPeriods"),
        )
    return periods


def _validate_window(draft: CouponDraft, now: dt.datetime) -> None:
    if draft.valid_until is None:
        return
    if draft.valid_from is not None and draft.valid_until <= draft.valid_from:
        raise InvalidInput(_("validUntil must come after validFrom."), field=_field("validUntil"))
    if draft.valid_until <= now:
        raise InvalidInput(
            _("validUntil is already past: the coupon would never apply."), field=_field("validUntil")
        )


def validated(draft: CouponDraft, *, now: dt.datetime) -> dict[str, Any]:
    """The ``Coupon`` row a draft stands for, or ``InvalidInput`` naming the first field at fault.

    The catalog check of ``appliesToAddOnCodes`` needs the database: ``create_coupon`` does it."""
    fields: dict[str, Any] = {
        "code": _validate_code(draft.code),
        "description": _validate_description(draft.description),
        "kind": draft.kind,
        "percent_off": None,
        "amounts_off": {},
        "duration": draft.duration,
        "duration_months": _validate_duration(draft),
    }
    if draft.kind == CouponKind.PERCENT:
        fields["percent_off"] = _validate_percent(draft)
    else:
        fields["amounts_off"] = _validate_amounts(draft)
    _validate_window(draft, now)
    if draft.max_redemptions is not None and draft.max_redemptions < 1:
        raise InvalidInput(
            _("maxRedemptions is at least 1 (leave it out for no cap)."), field=_field("maxRedemptions")
        )
    fields["valid_from"] = draft.valid_from
    fields["valid_until"] = draft.valid_until
    fields["max_redemptions"] = draft.max_redemptions
    fields["applies_to_add_on_codes"] = list(dict.fromkeys(draft.applies_to_add_on_codes))
    fields["applies_to_categories"] = [c.value for c in dict.fromkeys(draft.applies_to_categories)]
    return fields


async def _check_add_on_codes(codes: list[str]) -> None:
    """Every code names an add-on of the catalog (withdrawn ones included: a coupon may outlive a sale)."""
    if not codes:
        return
    if len(codes) > MAX_ADD_ON_CODES:
        raise InvalidInput(
            _("A coupon names at most {max_add_on_codes} add-ons.", max_add_on_codes=MAX_ADD_ON_CODES),
            field=_field("appliesToAddOnCodes"),
        )
    plausible = [code for code in codes if len(code) <= 64 and code.isprintable()]
    known: set[str] = set()
    if plausible:
        known = {str(code) for code in await AddOn.filter(code__in=plausible).values_list("code", flat=True)}
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise InvalidInput(
            _("No add-on has the code {codes}.", codes=", ".join(shown(code) for code in unknown[:5])),
            field=_field("appliesToAddOnCodes"),
        )


def terms_of(values: dict[str, Any]) -> dict[str, Any]:
    """A coupon's terms as JSON values: what a retry is compared on, and what the audit records."""

    def instant(value: dt.datetime | None) -> str | None:
        return value.astimezone(dt.UTC).isoformat() if value is not None else None

    percent = values["percent_off"]
    return {
        "kind": CouponKind(values["kind"]).value,
        "description": values["description"],
        "percent_off": str(Decimal(percent).quantize(CENT)) if percent is not None else None,
        "amounts_off": dict(sorted(values["amounts_off"].items())),
        "duration": CouponDuration(values["duration"]).value,
        "duration_months": values["duration_months"],
        "valid_from": instant(values["valid_from"]),
        "valid_until": instant(values["valid_until"]),
        "max_redemptions": values["max_redemptions"],
        "applies_to_add_on_codes": sorted(values["applies_to_add_on_codes"]),
        "applies_to_categories": sorted(values["applies_to_categories"]),
    }


def _stored_terms(coupon: Coupon) -> dict[str, Any]:
    return terms_of({name: getattr(coupon, name) for name in _TERM_FIELDS})


_TERM_FIELDS = (
    "kind",
    "description",
    "percent_off",
    "amounts_off",
    "duration",
    "duration_months",
    "valid_from",
    "valid_until",
    "max_redemptions",
    "applies_to_add_on_codes",
    "applies_to_categories",
)


def _replay_or_taken(existing: Coupon, fields: dict[str, Any]) -> CreatedCoupon:
    if _stored_terms(existing) != terms_of(fields):
        raise CouponCodeTaken(
            _("Coupon {code} exists with other terms: choose another code.", code=existing.code),
            field=_field("code"),
        )
    return CreatedCoupon(existing, replayed=True)


async def create_coupon(operator: Operator, draft: CouponDraft, *, now: dt.datetime) -> CreatedCoupon:
    """A new coupon, audited (``coupon.create``); its existing twin on a retry (see the module's doc)."""
    fields = validated(draft, now=now)
    await _check_add_on_codes(fields["applies_to_add_on_codes"])
    existing = await Coupon.get_or_none(code=fields["code"])
    if existing is not None:
        return _replay_or_taken(existing, fields)
    try:
        async with in_transaction():
            coupon = await Coupon.create(**fields)
            await operator_audit.record(
                operator, "coupon.create", now=now, subject_id=coupon.code, **terms_of(fields)
            )
    except IntegrityError:
        # A concurrent create of the same code committed first: a twin is this request's answer.
        return _replay_or_taken(await Coupon.get(code=fields["code"]), fields)
    return CreatedCoupon(coupon, replayed=False)


async def find_coupon(code: str) -> Coupon:
    """The coupon of ``code`` (case-insensitive, active or not), or ``NotFound``."""
    normalised = code.strip().upper()
    coupon = None
    if CODE_PATTERN.fullmatch(normalised):
        coupon = await Coupon.get_or_none(code=normalised)
    if coupon is None:
        raise NotFound(_("There is no coupon {code}.", code=shown(code)), field="code")
    return coupon


async def deactivate_coupon(operator: Operator, code: str, *, now: dt.datetime) -> DeactivatedCoupon:
    """Stop new applications and checkouts with the coupon (``app.services.coupons`` refuses an inactive
    one at both); its redemptions and the orders that used it keep their terms. Audited once."""
    coupon = await find_coupon(code)
    async with in_transaction():
        changed = await Coupon.filter(id=coupon.id, is_active=True).update(is_active=False) > 0
        if changed:
            await operator_audit.record(operator, "coupon.deactivate", now=now, subject_id=coupon.code)
    coupon.is_active = False
    return DeactivatedCoupon(coupon, changed)


# --- Listing -----------------------------------------------------------------------------------------


async def page(*, first: int, after: str | None, active: bool | None) -> Page[Coupon]:
    """Coupons by code, ``first`` at a time after the coupon of ``after``; only active or inactive ones
    when ``active`` says so."""
    coupons = Coupon.all() if active is None else Coupon.filter(is_active=active)
    return await cursors.by_key(coupons, "coupon", "code", first=first, after=after)


async def redemptions_of(coupon_ids: Sequence[str], first: int) -> list[list[CouponRedemption]]:
    """The latest ``first`` redemptions of each coupon (newest first) with their environment and order,
    for a page of coupons in one query."""
    rows = (
        await CouponRedemption.filter(coupon_id__in=list(coupon_ids))
        .select_related("tenant", "order")
        .order_by("-redeemed_at", "-id")
    )
    by_coupon: dict[str, list[CouponRedemption]] = defaultdict(list)
    for row in rows:
        by_coupon[str(row.coupon_id)].append(row)
    return [by_coupon[str(coupon_id)][:first] for coupon_id in coupon_ids]
