"""Secrets at rest: integration credentials encrypted with Fernet, with key rotation (issue 3,
"Integration add-ons": the secret settings are encrypted with a key from the settings).

``TOLLGATE_ENCRYPTION_KEY`` holds one or more Fernet keys, newest first. The first encrypts; every
key decrypts, so a new key can be put in front without making the stored tokens unreadable, and
``rotate`` re-encrypts a token with the newest key so that an old key can later be dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.settings import Settings


class SecretUndecryptable(Exception):
    """A stored token that none of the configured keys opens (a key was dropped too early)."""


class SecretBox:
    """Encrypts and decrypts short text values with a list of Fernet keys."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one Fernet key")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token (ASCII) made with the newest key."""
        return self._primary.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as error:
            raise SecretUndecryptable("no configured encryption key opens this token") from error

    def rotate(self, token: str) -> str:
        """The same secret encrypted with the newest key (unchanged value, new token)."""
        try:
            return self._all.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as error:
            raise SecretUndecryptable("no configured encryption key opens this token") from error

    def is_current(self, token: str) -> bool:
        """Whether the newest key opens ``token`` (a rotated token needs no further work)."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True


@functools.lru_cache(maxsize=8)
def _box_for(keys: tuple[str, ...]) -> SecretBox:
    return SecretBox(keys)


def box_from_settings(settings: Settings) -> SecretBox:
    """The box for ``TOLLGATE_ENCRYPTION_KEY`` (validated by the settings)."""
    return _box_for(tuple(settings.encryption_keys))
