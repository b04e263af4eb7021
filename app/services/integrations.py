"""Configuring an integration add-on after purchase (seed 000, "Integrações": "será necessário configurar
os parâmetros correspondentes (credenciais, url...)"; docs/design.md, "The add-on store").

The add-on declares its settings in ``AddOn.configuration_fields``::

    {"name": "api_token", "label": "API token", "kind": "SECRET", "secret": true, "required": true}

``kind`` is STRING, SECRET, URL (an absolute https:// URL of a public host, without credentials),
INTEGER or BOOLEAN; ``secret`` defaults to true for SECRET and false otherwise; ``required`` defaults
to true; ``max_length`` (strings) is optional. Submitted settings are checked against the declaration
(unknown keys, missing required values, types, URL format) and every problem is reported at once.
Secret values are stored as ``{"fernet": <token>}`` (``app.services.secrets``) and never returned:
reads show a mask.

Reconfiguring replaces the settings, except that a secret left out keeps its stored value: the
client cannot resend what it was never shown.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from app.auth.principal import Principal
from app.broadcast import Broadcaster
from app.i18n import Locale, Text, _
from app.models.billing import AddOnSubscription
from app.models.catalog import AddOn
from app.models.enums import AddOnStatus, ConfigurationStatus
from app.services import audit
from app.services.access import require_store_access
from app.services.errors import SHOWN_MAX, DomainError, ErrorCode, shown
from app.services.lifecycle import ID_ARGUMENT, ended, owned_add_on
from app.services.plan_cache import PlanCache, plan_changed
from app.services.secrets import SecretBox

SECRET_MASK = "••••••••"
DEFAULT_MAX_LENGTH = 2000
MAX_UNKNOWN_REPORTED = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SettingKind(StrEnum):
    STRING = "STRING"
    SECRET = "SECRET"
    URL = "URL"
    INTEGER = "INTEGER"
    BOOLEAN = "BOOLEAN"


@dataclass(frozen=True, slots=True)
class SettingSpec:
    name: str
    label: str
    kind: SettingKind
    secret: bool
    required: bool
    max_length: int = DEFAULT_MAX_LENGTH

    @classmethod
    def of(cls, declaration: dict[str, Any]) -> SettingSpec:
        kind = SettingKind(str(declaration.get("kind", SettingKind.STRING)).upper())
        name = str(declaration["name"])
        return cls(
            name=name,
            label=str(declaration.get("label") or name),
            kind=kind,
            secret=bool(declaration.get("secret", kind == SettingKind.SECRET)),
            required=bool(declaration.get("required", True)),
            max_length=int(declaration.get("max_length", DEFAULT_MAX_LENGTH)),
        )


def specs_of(add_on: AddOn) -> list[SettingSpec]:
    return [SettingSpec.of(declaration) for declaration in add_on.configuration_fields]


class ProblemCode(StrEnum):
    """What is wrong with a submitted setting."""

    REQUIRED = "REQUIRED"
    UNKNOWN_SETTING = "UNKNOWN_SETTING"
    WRONG_TYPE = "WRONG_TYPE"
    INVALID_URL = "INVALID_URL"
    URL_HAS_CREDENTIALS = "URL_HAS_CREDENTIALS"
    PRIVATE_HOST = "PRIVATE_HOST"
    TOO_LONG = "TOO_LONG"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"


@dataclass(frozen=True, slots=True)
class SettingProblem:
    field: str  # "settings.<name>", or "settings" for the whole value
    code: ProblemCode
    message: Text


class InvalidSettings(DomainError):
    code = ErrorCode.INVALID_SETTINGS
    default_message = _("The settings are not valid.")

    def __init__(self, problems: list[SettingProblem]) -> None:
        self.problems = problems
        super().__init__(self._summary(None), field="settings")

    def _summary(self, locale: Locale | None) -> Text:
        summary = "; ".join(problem.message.render(locale) for problem in self.problems)
        return _("The settings are not valid: {problems}", problems=summary)

    def localized(self, locale: Locale | None) -> str:
        """The summary and each problem in ``locale`` (``message`` is the English one)."""
        return self._summary(locale).render(locale)


class NotConfigurable(DomainError):
    code = ErrorCode.NOT_CONFIGURABLE
    default_message = _("This add-on has no settings to configure.")


@dataclass(frozen=True, slots=True)
class SettingView:
    """A setting as reads show it: secrets masked."""

    name: str
    label: str
    kind: SettingKind
    secret: bool
    required: bool
    is_set: bool
    value: Any  # None when unset; the mask for a secret that is set


@dataclass(slots=True)
class _Outcome:
    stored: dict[str, Any] = field(default_factory=dict)
    problems: list[SettingProblem] = field(default_factory=list)
    secrets_changed: list[str] = field(default_factory=list)


def _check_value(
    spec: SettingSpec, value: Any, *, allow_private_hosts: bool = False
) -> tuple[Any, SettingProblem | None]:
    """The value to store (plaintext; secrets are encrypted by the caller), or a problem."""
    where = f"settings.{spec.name}"
    if spec.kind == SettingKind.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            return None, SettingProblem(
                where, ProblemCode.WRONG_TYPE, _("{label} must be a whole number.", label=spec.label)
            )
        return value, None
    if spec.kind == SettingKind.BOOLEAN:
        if not isinstance(value, bool):
            return None, SettingProblem(
                where, ProblemCode.WRONG_TYPE, _("{label} must be true or false.", label=spec.label)
            )
        return value, None
    if not isinstance(value, str):
        return None, SettingProblem(
            where, ProblemCode.WRONG_TYPE, _("{label} must be text.", label=spec.label)
        )
    text = value if spec.secret else value.strip()
    if not text.strip():
        return None, SettingProblem(where, ProblemCode.REQUIRED, _("{label} is required.", label=spec.label))
    if len(text) > spec.max_length:
        return None, SettingProblem(
            where,
            ProblemCode.TOO_LONG,
            _("{label} is longer than {maximum} characters.", label=spec.label, maximum=spec.max_length),
        )
    if _CONTROL.search(text):
        return None, SettingProblem(
            where, ProblemCode.WRONG_TYPE, _("{label} contains control characters.", label=spec.label)
        )
    if spec.kind == SettingKind.URL:
        problem = _url_problem(text, spec.label, allow_private_hosts=allow_private_hosts)
        if problem is not None:
            code, message = problem
            return None, SettingProblem(where, code, message)
    return text, None


# Names that are local by definition (RFC 6761 localhost, RFC 6762 .local, RFC 8375 home.arpa) or by
# common use (.internal: cloud metadata and private zones; .localdomain).
_LOCAL_NAMES = ("localhost", "local", "internal", "localdomain", "home.arpa")
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _url_problem(text: str, label: str, *, allow_private_hosts: bool) -> tuple[ProblemCode, Text] | None:
    """``(code, message)`` when ``text`` is not an https URL the connector may call, else ``None``.

    Refused: other schemes, credentials in the URL, and (unless ``allow_private_hosts``) hosts that
    name this machine or a private network: literal addresses in private, loopback, link-local,
    unspecified, multicast or reserved ranges (IPv4, IPv6, IPv4-mapped IPv6, and the integer forms
    browsers and resolvers take, 2130706433 or 0x7f.1), and names local by definition. No DNS lookup
    happens here: a public name may still resolve to a private address, which the code that calls the
    integration must check when it connects (docs/security.md, "Integration settings").
    """
    invalid = (
        ProblemCode.INVALID_URL,
        _("{label} must be an absolute https:// URL with a host name.", label=label),
    )
    private = (ProblemCode.PRIVATE_HOST, _("{label} must name a public host.", label=label))
    # Parsers disagree on backslashes and whitespace (WHATWG reads "\\" as "/"): none is valid here.
    if any(character.isspace() or character == "\\" for character in text):
        return invalid
    try:
        parts = urlsplit(text)
        _port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError:
        return invalid
    if parts.scheme != "https" or not parts.hostname:
        return invalid
    if "@" in parts.netloc:
        return (
            ProblemCode.URL_HAS_CREDENTIALS,
            _("{label} must not carry a user name or password: use the secret settings.", label=label),
        )
    host = _normalised_host(parts.hostname)
    if host is None:
        return invalid
    address = _literal_address(host)
    if address is None and _looks_numeric(host):
        return invalid  # "1.2.3.999": a number no address parser takes, and no DNS name either
    if allow_private_hosts:
        return None
    if address is not None:
        return private if not _is_public(address) else None
    if any(host == name or host.endswith(f".{name}") for name in _LOCAL_NAMES):
        return private
    return None


def _normalised_host(hostname: str) -> str | None:
    """Lower case, IDNA-mapped (full-width letters spelling localhost are localhost), no trailing dot."""
    host = hostname.rstrip(".")
    if not host:
        return None
    if ":" in host:  # an IPv6 literal (brackets already removed)
        return host.lower()
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def _looks_numeric(host: str) -> bool:
    return host.rsplit(".", 1)[-1].isdigit() or host.rsplit(".", 1)[-1].startswith("0x")


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a literal host names: dotted quad, IPv6, or inet_aton's forms (1 to 4 parts, each
    decimal, 0x hexadecimal or 0 octal: "2130706433", "0x7f000001", "0177.0.0.1", "127.1")."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        try:
            if part.startswith("0x"):
                numbers.append(int(part[2:] or "0", 16))
            elif part.startswith("0") and len(part) > 1:
                numbers.append(int(part[1:], 8))
            elif part.isascii() and part.isdigit():
                numbers.append(int(part))
            else:
                return None
        except ValueError:
            return None
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for position, number in enumerate(leading):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not _is_public(embedded):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
    )


def validate_settings(
    specs: list[SettingSpec],
    submitted: Any,
    *,
    stored: dict[str, Any],
    box: SecretBox,
    allow_private_hosts: bool = False,
) -> _Outcome:
    """Check ``submitted`` against the declaration; secrets come back encrypted."""
    outcome = _Outcome()
    if not isinstance(submitted, dict):
        outcome.problems.append(
            SettingProblem(
                "settings", ProblemCode.NOT_AN_OBJECT, _("The settings must be a JSON object of name: value.")
            )
        )
        return outcome
    declared = {spec.name for spec in specs}
    # Caller-chosen names are reported shortened, and only the first few of them (issue 11).
    for name in sorted(set(submitted) - declared)[:MAX_UNKNOWN_REPORTED]:
        outcome.problems.append(
            SettingProblem(
                f"settings.{name if len(name) <= SHOWN_MAX else name[:SHOWN_MAX] + '…'}",
                ProblemCode.UNKNOWN_SETTING,
                _(
                    "{name} is not a setting of this add-on (expected: {expected}).",
                    name=shown(name),
                    expected=", ".join(sorted(declared)),
                ),
            )
        )
    for spec in specs:
        value = submitted.get(spec.name)
        if value is None:
            kept = stored.get(spec.name)
            if spec.secret and spec.name not in submitted and kept is not None:
                outcome.stored[spec.name] = kept  # left out: keep the secret already stored
            elif spec.required:
                outcome.problems.append(
                    SettingProblem(
                        f"settings.{spec.name}",
                        ProblemCode.REQUIRED,
                        _("{label} is required.", label=spec.label),
                    )
                )
            continue
        checked, problem = _check_value(spec, value, allow_private_hosts=allow_private_hosts)
        if problem is not None:
            outcome.problems.append(problem)
        elif spec.secret:
            outcome.stored[spec.name] = {"fernet": box.encrypt(str(checked))}
            outcome.secrets_changed.append(spec.name)
        else:
            outcome.stored[spec.name] = checked
    return outcome


def masked_settings(add_on: AddOn, configuration: dict[str, Any]) -> list[SettingView]:
    """The declared settings with their values, secrets replaced by a mask (nothing is decrypted)."""
    views = []
    for spec in specs_of(add_on):
        stored = configuration.get(spec.name)
        is_set = stored is not None
        views.append(
            SettingView(
                name=spec.name,
                label=spec.label,
                kind=spec.kind,
                secret=spec.secret,
                required=spec.required,
                is_set=is_set,
                value=(SECRET_MASK if spec.secret else stored) if is_set else None,
            )
        )
    return views


def reveal_secret(subscription: AddOnSubscription, name: str, box: SecretBox) -> str | None:
    """The plaintext of a stored secret, for the code that calls the integration (never for GraphQL)."""
    stored = subscription.configuration.get(name)
    if not isinstance(stored, dict) or "fernet" not in stored:
        return None
    return box.decrypt(str(stored["fernet"]))


async def configure_integration(
    principal: Principal,
    *,
    subscription_id: str,
    settings: Any,
    box: SecretBox,
    eligible_since: dt.date,
    now: dt.datetime,
    plan_cache: PlanCache | None = None,
    broadcaster: Broadcaster | None = None,
    allow_private_hosts: bool = False,
) -> AddOnSubscription:
    """``configureIntegration``: validate, encrypt the secrets, store, PENDING -> CONFIGURED, audit."""
    require_store_access(principal, eligible_since=eligible_since)
    subscription = await owned_add_on(principal, subscription_id)
    add_on = subscription.add_on
    if not add_on.requires_configuration or not add_on.configuration_fields:
        raise NotConfigurable(_("{name} has no settings to configure.", name=add_on.name), field=ID_ARGUMENT)
    if subscription.status_at(now) == AddOnStatus.ENDED:
        raise ended(subscription, _("{name} ended; it can no longer be configured.", name=add_on.name))
    outcome = validate_settings(
        specs_of(add_on),
        settings,
        stored=subscription.configuration,
        box=box,
        allow_private_hosts=allow_private_hosts,
    )
    if outcome.problems:
        raise InvalidSettings(outcome.problems)
    async with in_transaction():
        await AddOnSubscription.filter(id=subscription.id, tenant_id=principal.tenant.id).update(
            configuration=outcome.stored, configuration_status=ConfigurationStatus.CONFIGURED
        )
        await audit.record(
            tenant_id=principal.tenant.id,
            principal=principal,
            action="add_on.configure",
            now=now,
            subject_id=subscription.id,
            add_on=add_on.code,
            settings=sorted(outcome.stored),  # names only: values (and secrets) stay out of the log
            secrets_changed=sorted(outcome.secrets_changed),
            previous_status=str(subscription.configuration_status),
        )
    await plan_changed(principal.tenant.id, cache=plan_cache, broadcaster=broadcaster)  # after the commit
    subscription.configuration = outcome.stored
    subscription.configuration_status = ConfigurationStatus.CONFIGURED
    return subscription


async def reencrypt_secrets(box: SecretBox) -> int:
    """Re-encrypt every stored secret with the newest key (after a new key was put in front of the list),
    so that the old key can be removed afterwards. Returns how many secrets changed.

    An operator task: run it while nobody reconfigures integrations (a configuration saved between the
    read and the write here would be overwritten with its previous values).
    """
    changed = 0
    for subscription in await AddOnSubscription.filter(configuration_status=ConfigurationStatus.CONFIGURED):
        configuration = dict(subscription.configuration)
        rotated = 0
        for name, stored in configuration.items():
            if isinstance(stored, dict) and "fernet" in stored and not box.is_current(str(stored["fernet"])):
                configuration[name] = {"fernet": box.rotate(str(stored["fernet"]))}
                rotated += 1
        if rotated:
            await AddOnSubscription.filter(id=subscription.id).update(configuration=configuration)
            changed += rotated
    return changed
