"""The message catalogs are whole: every message id of every domain has its English, Brazilian Portuguese
and Spanish text, with the same fields, compiled (``tollgate translations check``)."""

from __future__ import annotations

from babel.messages.catalog import Catalog

from app.i18n import Locale, Text, _
from app.i18n.catalogs import Domain, extract, problems
from app.services.errors import DomainError, NotFound


def test_every_message_of_every_domain_has_its_three_translations() -> None:
    assert list(problems()) == []


def test_a_message_without_its_translations_is_reported() -> None:
    untranslated = "A message added to the code and never translated {thing}."

    def extracted(domain: Domain) -> Catalog:
        catalog = extract(domain)
        if domain.name == "errors":
            catalog.add(untranslated, None, [("app/somewhere.py", 1)])
        return catalog

    found = [problem for problem in problems(extracted) if untranslated in problem]

    # Not in the catalogs of any of the three locales (the catalogs were not updated).
    assert len(found) == 3
    assert all("is not in the catalog" in problem for problem in found)
    assert {problem.split("/")[3] for problem in found} == {"en", "pt_BR", "es"}


def test_a_domain_error_renders_in_the_locale_asked_and_in_english_otherwise() -> None:
    error = NotFound(_("No add-on with code {code}.", code="'x'"), field="code")

    assert error.message == "No add-on with code 'x'."
    assert error.localized(None) == "No add-on with code 'x'."
    assert error.localized(Locale.EN) == "No add-on with code 'x'."
    assert error.localized(Locale.PT_BR) == "Nenhum add-on com o código 'x'."
    assert error.localized(Locale.ES) == "Ningún complemento con el código 'x'."


def test_every_default_message_of_a_domain_error_is_translatable() -> None:
    def subclasses(cls: type[DomainError]) -> set[type[DomainError]]:
        found = set(cls.__subclasses__())
        return found.union(*(subclasses(sub) for sub in found)) if found else found

    import app.schema  # noqa: F401  (every module that declares an error)

    errors: set[type[DomainError]] = {DomainError, *subclasses(DomainError)}
    for error in errors:
        assert isinstance(error.default_message, Text), error
        for locale in (Locale.PT_BR, Locale.ES):
            assert error.default_message.render(locale) != error.default_message.render(Locale.EN), error
