"""Global ids: every ``id`` names its type and its key, opaquely (issue 12).

``global_id("ActiveAddOn", 42)`` is the base64url of ``"ActiveAddOn:42"``. A normalised client cache keys
objects by it; an argument that takes an id of one type refuses another's (``key_of``): a catalog add-on's
id given to ``cancelAddOn`` is ``NOT_FOUND``, never another add-on cancelled. Clients must not build or
parse ids: the format may change, the ids of one object never do.
"""

from __future__ import annotations

import strawberry

from app.i18n import _
from app.services import public_ids
from app.services.errors import NotFound, shown


def global_id(type_name: str, *keys: object) -> strawberry.ID:
    return strawberry.ID(public_ids.encode(type_name, *keys))


def key_of(value: str, type_name: str, *, field: str) -> str:
    """The key of an id of ``type_name``; any other value (another type's id, garbage) is ``NOT_FOUND``,
    as an id of another environment is: the caller learns nothing from the difference."""
    kind, key = public_ids.decode(value)
    if kind != type_name or not key:
        raise NotFound(
            _("No {type_name} has the id {value}.", type_name=type_name, value=shown(value)), field=field
        )
    return key
