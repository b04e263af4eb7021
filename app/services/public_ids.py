"""The format of the API's global ids, below the GraphQL layer: webhooks name objects by the same ids the
API gives them (``app.resolvers.ids`` builds and checks them for GraphQL)."""

from __future__ import annotations

import base64
import binascii


def encode(type_name: str, *keys: object) -> str:
    """``encode("ActiveAddOn", 42)`` is the base64url of ``"ActiveAddOn:42"``, unpadded."""
    raw = ":".join((type_name, *(str(key) for key in keys)))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(value: str) -> tuple[str, str]:
    """The type name and key of an id; ``("", "")`` for anything that is not one."""
    try:
        padded = value + "=" * (-len(value) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (UnicodeError, binascii.Error, ValueError):
        return "", ""
    kind, _, key = raw.partition(":")
    return kind, key
