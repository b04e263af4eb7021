"""Discount coupons (seed 000: "Caso tenha um cupom de desconto... o valor total deverá ser atualizado").

Codes are case-insensitive and surrounding whitespace is ignored: "welcome10 " typed or pasted by an
admin is WELCOME10 (codes are stored upper-case). Whitespace inside a code is not removed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from app.i18n import _
from app.models.coupons import Coupon
from app.models.enums import CouponDuration, CouponKind
from app.models.store import CouponRedemption
from app.services.errors import DomainError, ErrorCode, InvalidInput
from app.services.pricing import CouponTerms

MAX_CODE_LENGTH = 64


class CouponNotFound(DomainError):
    code = ErrorCode.COUPON_NOT_FOUND
    default_message = _("There is no coupon with this code.")


class CouponNotYetValid(DomainError):
    code = ErrorCode.COUPON_NOT_YET_VALID
    default_message = _("This coupon is not valid yet.")


class CouponExpired(DomainError):
    code = ErrorCode.COUPON_EXPIRED
    default_message = _("This coupon has expired.")


class CouponExhausted(DomainError):
    code = ErrorCode.COUPON_EXHAUSTED
    default_message = _("This coupon has been used as many times as it may be.")


class CouponAlreadyUsed(DomainError):
    code = ErrorCode.COUPON_ALREADY_USED
    default_message = _("This environment has already used this coupon.")


class CouponChanged(DomainError):
    code = ErrorCode.COUPON_CHANGED
    default_message = _("The coupon's terms changed since it was applied: review the cart and confirm again.")


class CouponNotApplicable(DomainError):
    code = ErrorCode.COUPON_NOT_APPLICABLE
    default_message = _("This coupon applies to nothing in the cart.")


def normalise_code(code: str) -> str:
    normalised = code.strip().upper()
    if not normalised:
        raise InvalidInput(_("Type a coupon code."), field="code")
    return normalised


async def find_coupon(code: str) -> Coupon:
    normalised = normalise_code(code)
    coupon = None
    # Over-long codes or control characters (PostgreSQL refuses NUL in text) cannot be a coupon.
    if len(normalised) <= MAX_CODE_LENGTH and normalised.isprintable():
        coupon = await Coupon.get_or_none(code=normalised, is_active=True)
    if coupon is None:
        raise CouponNotFound(
            _("There is no coupon {code}.", code=repr(normalised[:MAX_CODE_LENGTH])), field="code"
        )
    return coupon


async def check_usable(coupon: Coupon, *, tenant_id: uuid.UUID | str, now: dt.datetime) -> None:
    """Validity window, total redemption cap, once per tenant."""
    if not coupon.is_active:
        raise CouponNotFound(_("There is no coupon {code}.", code=repr(coupon.code)), field="code")
    if coupon.valid_from is not None and now < coupon.valid_from:
        raise CouponNotYetValid(
            _(
                "Coupon {code} is valid from {valid_from}.",
                code=coupon.code,
                valid_from=coupon.valid_from.date().isoformat(),
            ),
            field="code",
            valid_from=coupon.valid_from,
        )
    if coupon.valid_until is not None and now >= coupon.valid_until:
        raise CouponExpired(
            _(
                "Coupon {code} expired on {valid_until}.",
                code=coupon.code,
                valid_until=coupon.valid_until.date().isoformat(),
            ),
            field="code",
            expired_at=coupon.valid_until,
        )
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponExhausted(
            _("Coupon {code} has no redemptions left.", code=coupon.code),
            field="code",
            max_redemptions=coupon.max_redemptions,
        )
    if await CouponRedemption.exists(coupon_id=coupon.id, tenant_id=tenant_id):
        raise CouponAlreadyUsed(
            _("This environment has already used coupon {code}.", code=coupon.code), field="code"
        )


def terms_of(coupon: Coupon, currency: str) -> CouponTerms:
    amount_off: Decimal | None = None
    if coupon.kind == CouponKind.FIXED:
        if currency not in coupon.amounts_off:
            raise CouponNotApplicable(
                _("Coupon {code} has no amount in {currency}.", code=coupon.code, currency=currency),
                field="code",
            )
        amount_off = Decimal(coupon.amounts_off[currency])
    return CouponTerms(
        code=coupon.code,
        kind=coupon.kind,
        duration=coupon.duration,
        percent_off=coupon.percent_off,
        amount_off=amount_off,
        duration_months=coupon.duration_months,
        categories=frozenset(coupon.applies_to_categories),
        add_on_codes=frozenset(coupon.applies_to_add_on_codes),
    )


def terms_snapshot(terms: CouponTerms) -> dict[str, Any]:
    """The terms as stored on the order, for the invoices of later periods."""
    return {
        "code": terms.code,
        "kind": terms.kind.value,
        "duration": terms.duration.value,
        "percent_off": str(terms.percent_off) if terms.percent_off is not None else None,
        "amount_off": str(terms.amount_off) if terms.amount_off is not None else None,
        "duration_months": terms.duration_months,
        "categories": sorted(terms.categories),
        "add_on_codes": sorted(terms.add_on_codes),
    }


def terms_changed(applied: dict[str, Any] | None, current: CouponTerms | None) -> bool:
    """Whether a coupon's terms differ from those shown when it was applied (or it stopped being sold)."""
    if current is None:
        return True
    return applied is not None and terms_from_snapshot(applied) != current


def terms_from_snapshot(snapshot: dict[str, object]) -> CouponTerms:
    def decimal_or_none(value: object) -> Decimal | None:
        return Decimal(str(value)) if value is not None else None

    months = snapshot.get("duration_months")
    return CouponTerms(
        code=str(snapshot["code"]),
        kind=CouponKind(str(snapshot["kind"])),
        duration=CouponDuration(str(snapshot["duration"])),
        percent_off=decimal_or_none(snapshot.get("percent_off")),
        amount_off=decimal_or_none(snapshot.get("amount_off")),
        duration_months=int(str(months)) if months is not None else None,
        categories=frozenset(str(c) for c in _as_list(snapshot.get("categories"))),
        add_on_codes=frozenset(str(c) for c in _as_list(snapshot.get("add_on_codes"))),
    )


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


async def redeem(
    coupon: Coupon, *, tenant_id: uuid.UUID | str, order_id: uuid.UUID | str, now: dt.datetime
) -> None:
    """Count one redemption. Call inside the checkout transaction.

    The cap holds under concurrency because the counter only moves through one conditional UPDATE
    (PostgreSQL re-checks the condition after a concurrent writer commits; SQLite serialises
    writers); once per tenant holds through the unique (coupon, tenant) pair.
    """
    query = Coupon.filter(id=coupon.id, is_active=True)
    if coupon.max_redemptions is not None:
        query = query.filter(times_redeemed__lt=coupon.max_redemptions)
    if not await query.update(times_redeemed=F("times_redeemed") + 1):
        raise CouponExhausted(
            _("Coupon {code} has no redemptions left.", code=coupon.code),
            field="code",
            max_redemptions=coupon.max_redemptions,
        )
    try:
        await CouponRedemption.create(
            coupon_id=coupon.id, tenant_id=tenant_id, order_id=order_id, redeemed_at=now
        )
    except IntegrityError:
        # The transaction is rolled back by the caller; nothing more is sent on it.
        raise CouponAlreadyUsed(
            _("This environment has already used coupon {code}.", code=coupon.code), field="code"
        ) from None
