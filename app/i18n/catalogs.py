"""Maintaining the message catalogs with Babel: ``tollgate translations update | compile | check``.

- ``update`` extracts each domain's messages from the code and templates into ``<domain>.pot`` and merges
  them into every locale's ``.po`` (new messages arrive empty; English ones are filled with their id, since
  the ids are English).
- ``compile`` writes the ``.mo`` files the package ships.
- ``check`` lists what is missing: a message without its translation in a locale, a fuzzy one, a ``.po``
  behind its ``.pot``, a ``.mo`` behind its ``.po``. ``tests/unit/test_translations.py`` runs it.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

from app.i18n import DOMAINS, LOCALE_DIR, Locale, babel_locale

ROOT = Path(__file__).resolve().parent.parent  # app/
# Fixed header dates: the files change only when their messages do.
STAMP = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Domain:
    name: str
    method_map: list[tuple[str, str]]
    keywords: dict[str, Any]
    options_map: dict[str, dict[str, Any]]


_IGNORED = [("migrations/**", "ignore"), ("static/**", "ignore")]
SOURCES = {
    "errors": Domain("errors", [*_IGNORED, ("**.py", "python")], {"_": None}, {}),
    "labels": Domain("labels", [*_IGNORED, ("**.py", "python")], {"label": None}, {}),
    "emails": Domain(
        "emails",
        [("templates/email/**", "jinja2.ext:babel_extract")],
        {"_": None, "gettext": None, "ngettext": (1, 2)},
        {"templates/email/**": {"trimmed": "true", "extensions": "jinja2.ext.do"}},
    ),
}
assert set(SOURCES) == set(DOMAINS)


def pot_path(domain: str) -> Path:
    return LOCALE_DIR / f"{domain}.pot"


def po_path(locale: Locale, domain: str) -> Path:
    return LOCALE_DIR / str(babel_locale(locale)) / "LC_MESSAGES" / f"{domain}.po"


def extract(domain: Domain) -> Catalog:
    catalog = Catalog(
        project="tollgate",
        domain=domain.name,
        charset="utf-8",
        creation_date=STAMP,
        revision_date=STAMP,
        fuzzy=False,
    )
    for filename, lineno, message, comments, context in extract_from_dir(
        ROOT, domain.method_map, domain.options_map, keywords=domain.keywords, strip_comment_tags=True
    ):
        catalog.add(message, None, [(f"app/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def _read(path: Path, locale: Locale | None = None, domain: str | None = None) -> Catalog:
    if not path.exists():
        return Catalog(locale=str(babel_locale(locale)) if locale else None, domain=domain, charset="utf-8")
    with path.open("rb") as file:
        catalog = read_po(file, locale=str(babel_locale(locale)) if locale else None, domain=domain)
    catalog.creation_date = catalog.revision_date = STAMP
    catalog.project, catalog.fuzzy = "tollgate", False
    return catalog


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=110, omit_header=False, sort_output=True, ignore_obsolete=True)
    if not path.exists() or path.read_bytes() != buffer.getvalue():
        path.write_bytes(buffer.getvalue())


def update(domains: Iterable[str] = DOMAINS) -> None:
    for name in domains:
        template = extract(SOURCES[name])
        _write(pot_path(name), template)
        for locale in Locale:
            catalog = _read(po_path(locale, name), locale, name)
            catalog.update(copy.deepcopy(template), no_fuzzy_matching=True)
            if locale is Locale.EN:
                for message in catalog:
                    if message.id and not message.string:
                        message.string = message.id
            _write(po_path(locale, name), catalog)


def compile_all(domains: Iterable[str] = DOMAINS) -> None:
    for name in domains:
        for locale in Locale:
            catalog = _read(po_path(locale, name), locale, name)
            buffer = io.BytesIO()
            write_mo(buffer, catalog, use_fuzzy=False)
            target = po_path(locale, name).with_suffix(".mo")
            if not target.exists() or target.read_bytes() != buffer.getvalue():
                target.write_bytes(buffer.getvalue())


def problems(extracted: Callable[[Domain], Catalog] = extract) -> Iterator[str]:
    """Everything that keeps a locale from reading every message (empty when the catalogs are whole)."""
    for name in DOMAINS:
        template = extracted(SOURCES[name])
        ids = {message.id for message in template if message.id}
        for locale in Locale:
            path = po_path(locale, name)
            catalog = _read(path, locale, name)
            for message_id in sorted(ids, key=str):
                message = catalog.get(message_id)
                where = f"{path.relative_to(ROOT.parent)}: {message_id!r}"
                if message is None:
                    yield f"{where} is not in the catalog (run update)"
                elif not message.string or (isinstance(message.string, tuple) and not all(message.string)):
                    yield f"{where} has no translation"
                elif message.fuzzy:
                    yield f"{where} is marked fuzzy"
                elif isinstance(message.string, str) and _fields(message.string) != _fields(str(message_id)):
                    yield f"{where} names other fields than its id"
            compiled = path.with_suffix(".mo")
            if not compiled.exists():
                yield f"{compiled.relative_to(ROOT.parent)} is missing (run compile)"
                continue
            with compiled.open("rb") as file:
                shipped = {message.id: message.string for message in read_mo(file) if message.id}
            wanted = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
            if shipped != wanted:
                yield f"{compiled.relative_to(ROOT.parent)} is behind its .po (run compile)"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
