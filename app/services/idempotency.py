"""Idempotency keys for writes a client may retry (docs/design.md): same key, same result;
same key with different input, an error."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from app.i18n import _
from app.services.errors import DomainError, ErrorCode, InvalidInput

MAX_KEY_LENGTH = 128
_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces


class IdempotencyKeyReused(DomainError):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED
    default_message = _("This idempotency key was already used with a different request.")


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
        raise InvalidInput(
            _(
                "An idempotency key is 1 to {max_key_length} printable ASCII characters without spaces.",
                max_key_length=MAX_KEY_LENGTH,
            ),
            field="idempotencyKey",
        )
    return key


def fingerprint(payload: Any) -> str:
    """A stable digest of a request's meaningful input, stored beside the key."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()
