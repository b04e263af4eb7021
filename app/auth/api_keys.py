"""Machine API keys: ``tg_<prefix>_<secret>``; only the SHA-256 of the whole key is stored.

A key carries 190 bits of randomness, so a fast unsalted hash is the right tool (as for GitHub or
Stripe keys): it cannot be brute-forced, and the lookup is one indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "tg_"


@dataclass(frozen=True, slots=True)
class NewApiKey:
    plaintext: str  # shown once, never stored
    prefix: str
    key_hash: str


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_api_key(kind: str = KEY_PREFIX) -> NewApiKey:
    """A new key ``<kind><prefix>_<secret>``: ``tg_`` for environments' keys, ``tgo_`` for operator keys."""
    prefix = secrets.token_hex(4)
    plaintext = f"{kind}{prefix}_{secrets.token_urlsafe(24)}"
    return NewApiKey(plaintext=plaintext, prefix=prefix, key_hash=hash_api_key(plaintext))


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)
