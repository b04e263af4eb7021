"""The ``tollgate`` command line (README, "Command line"); also ``python -m app``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tortoise import Tortoise

from app.auth import scopes as known_scopes
from app.auth.api_keys import generate_api_key
from app.auth.principal import REVOKED_CHANNEL, USER_DISABLED_CHANNEL
from app.auth.tokens import issue_user_token
from app.broadcast import broadcaster_from_settings
from app.clock import SystemClock
from app.db import tortoise_config
from app.i18n import DOMAINS
from app.migrate import migrate_database
from app.models.tenancy import ApiKey, Tenant, User
from app.settings import Settings, get_settings


class CommandError(Exception):
    """A usage problem reported to the operator on stderr with exit code 2."""


async def _with_orm(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    await Tortoise.init(config=tortoise_config(settings))
    try:
        return await work()
    finally:
        await Tortoise.close_connections()


def print_seed_result(connector_keys: dict[str, str]) -> None:
    print("Demo data seeded: tenants acme, nova, legacy (admin@<slug>.test, member@<slug>.test).")
    for slug, key in connector_keys.items():
        print(f"  connector key for {slug}: {key}")
    print("These keys are shown once. Mint a user token with:  tollgate token --email admin@acme.test")


async def seed_demo_data(settings: Settings) -> bool:
    from app.seed import seed_demo

    result = await _with_orm(settings, lambda: seed_demo(now=SystemClock().now()))
    if result.created:
        print_seed_result(result.connector_keys)
    else:
        # The demo keys were shown once, when it was seeded: say how to make another (docs/clients.md).
        connector_scopes = ",".join(known_scopes.CONNECTOR_SCOPES)
        print("The database already holds tenants: demo data not seeded.")
        print(
            "Its connector keys were shown once, when it was seeded. Create another with:\n"
            f"  tollgate apikey create --tenant acme --scopes {connector_scopes} --name 'ERP connector'\n"
            "Mint a user token with:  tollgate token --email admin@acme.test"
        )
    return bool(result.created)


async def mint_token(settings: Settings, email: str, ttl_seconds: int) -> str:
    async def work() -> str:
        user = await User.get_or_none(email=email.strip().lower())
        if user is None:
            raise CommandError(f"no user with e-mail {email!r}")
        return issue_user_token(
            user_id=str(user.id),
            tenant_id=str(user.tenant_id),
            email=user.email,
            secret=settings.jwt_secret,
            now=SystemClock().now(),
            ttl=dt.timedelta(seconds=ttl_seconds),
        )

    token: str = await _with_orm(settings, work)
    return token


def parse_scopes(raw: str) -> list[str]:
    requested = [scope.strip() for scope in raw.split(",") if scope.strip()]
    unknown = sorted(set(requested) - known_scopes.ALL_SCOPES)
    if unknown or not requested:
        raise CommandError(
            f"unknown scopes {unknown}; choose from {', '.join(sorted(known_scopes.ALL_SCOPES))}"
            if unknown
            else "name at least one scope"
        )
    return sorted(set(requested))


async def create_api_key(settings: Settings, tenant_slug: str, scopes: list[str], name: str) -> str:
    async def work() -> str:
        tenant = await Tenant.get_or_none(slug=tenant_slug)
        if tenant is None:
            raise CommandError(f"no tenant with slug {tenant_slug!r}")
        key = generate_api_key()
        await ApiKey.create(tenant=tenant, name=name, prefix=key.prefix, key_hash=key.key_hash, scopes=scopes)
        return key.plaintext

    plaintext: str = await _with_orm(settings, work)
    return plaintext


def parse_operator_scopes(raw: str) -> list[str]:
    from app.auth.operator import OPERATOR_SCOPES

    requested = sorted({scope.strip() for scope in raw.split(",") if scope.strip()})
    unknown = sorted(set(requested) - OPERATOR_SCOPES)
    if unknown or not requested:
        raise CommandError(
            f"unknown operator scopes {unknown}; choose from {', '.join(sorted(OPERATOR_SCOPES))}"
            if unknown
            else "name at least one scope"
        )
    return requested


async def create_operator_key(settings: Settings, scopes: list[str], name: str) -> str:
    from app.auth.operator import create_operator_key as create

    async def work() -> str:
        _, plaintext = await create(name=name, scopes=scopes, now=SystemClock().now())
        return plaintext

    plaintext: str = await _with_orm(settings, work)
    return plaintext


async def revoke_operator_key(settings: Settings, prefix: str) -> None:
    from app.models.operators import OperatorKey

    async def work() -> None:
        updated = await OperatorKey.filter(prefix=prefix, revoked_at__isnull=True).update(
            revoked_at=SystemClock().now()
        )
        if not updated:
            raise CommandError(f"no active operator key with prefix {prefix[:100]!r}")

    await _with_orm(settings, work)


async def list_operator_keys(settings: Settings) -> list[str]:
    from app.models.operators import OperatorKey

    async def work() -> list[str]:
        return [
            f"{key.prefix}  {'revoked' if key.revoked_at else 'active '}  {','.join(key.scopes)}  {key.name}"
            for key in await OperatorKey.all().order_by("created_at")
        ]

    lines: list[str] = await _with_orm(settings, work)
    return lines


async def revoke_api_key(settings: Settings, prefix: str) -> None:
    async def work() -> None:
        updated = await ApiKey.filter(prefix=prefix, revoked_at__isnull=True).update(
            revoked_at=SystemClock().now()
        )
        if not updated:
            raise CommandError(f"no active API key with prefix {prefix!r}")

    await _with_orm(settings, work)
    await _tell_gateways(settings, REVOKED_CHANNEL, prefix, "the key")


async def set_user_active(settings: Settings, email: str, active: bool) -> None:
    """Enable or disable a user. A disabled user's tokens are refused and their live sessions closed."""

    async def work() -> str:
        user = await User.get_or_none(email=email.strip().lower())
        if user is None:
            raise CommandError(f"no user with e-mail {email[:100]!r}")
        await User.filter(id=user.id).update(is_active=active)
        return str(user.id)

    user_id: str = await _with_orm(settings, work)
    if not active:
        await _tell_gateways(settings, USER_DISABLED_CHANNEL, user_id, "the user's tokens")


async def _tell_gateways(settings: Settings, channel: str, message: str, what: str) -> None:
    """After the change committed: running gateways that share a broadcaster (Redis) forget the credential
    and close its live sessions at once; a gateway alone refuses it within TOLLGATE_AUTH_CACHE_SECONDS."""
    broadcaster = broadcaster_from_settings(settings)
    try:
        await broadcaster.publish(channel, message)
    except Exception as error:  # the change is made all the same
        print(
            f"warning: running gateways not told ({error}); they refuse {what} within "
            f"{settings.auth_cache_seconds:g} s",
            file=sys.stderr,
        )
    finally:
        await broadcaster.aclose()


async def reencrypt_secrets(settings: Settings) -> int:
    """After a new key was put first in TOLLGATE_ENCRYPTION_KEY: move every secret to it."""
    from app.services.integrations import reencrypt_secrets as reencrypt
    from app.services.secrets import SecretBox

    async def work() -> int:
        changed: int = await reencrypt(SecretBox(settings.encryption_keys))
        return changed

    result: int = await _with_orm(settings, work)
    return result


async def apply_catalog(settings: Settings, path: str, dry_run: bool) -> int:
    """``tollgate catalog apply``: validate, print the diff, apply it in one transaction (docs/catalog.md)."""
    from app.services import catalog_apply, catalog_file

    try:
        catalog = catalog_file.load_path(path)
    except catalog_file.InvalidCatalog as invalid:
        print("\n".join(invalid.lines()), file=sys.stderr)
        print(f"tollgate: {len(invalid.errors)} error(s) in {path}; nothing applied", file=sys.stderr)
        return 2
    try:
        diff = await _with_orm(
            settings, lambda: catalog_apply.apply(catalog, now=SystemClock().now(), dry_run=dry_run)
        )
    except catalog_apply.CatalogConflict as conflict:
        raise CommandError(str(conflict)) from None
    print("\n".join(diff.lines()))
    if dry_run and not diff.empty:
        print("dry run: nothing applied")
    elif not diff.empty:
        broadcaster = broadcaster_from_settings(settings)
        try:  # running gateways drop their catalog answers and plans at once
            await broadcaster.publish(catalog_apply.CHANNEL, "*")
        except Exception as error:  # applied all the same
            print(
                f"warning: running gateways not told ({error}); their catalog caches expire within "
                f"{settings.catalog_cache_seconds:g} s, their plan caches within 30 s",
                file=sys.stderr,
            )
        finally:
            await broadcaster.aclose()
    return 0


async def export_catalog(settings: Settings) -> str:
    from app.services import catalog_apply

    text: str = await _with_orm(settings, catalog_apply.export_text)
    return text


async def issue_invoices(settings: Settings, period: str | None) -> list[str]:
    """``tollgate invoices issue [--period YYYY-MM]``: issue what is due (idempotent); a line per invoice."""
    from app.services import invoice_issuing
    from app.services.invoices import InvalidPeriod

    async def work() -> list[invoice_issuing.Issued]:
        return await invoice_issuing.issue_due_invoices(SystemClock().now(), period_name=period)

    try:
        issued: list[invoice_issuing.Issued] = await _with_orm(settings, work)
    except InvalidPeriod as invalid:
        raise CommandError(invalid.message) from None
    return [
        f"{item.number}  {item.tenant_slug}  {item.period}  {item.total} {item.currency}" for item in issued
    ]


def serve(settings: Settings, host: str, port: int, demo: bool) -> None:
    import uvicorn

    from app.edge.live_sessions import uvicorn_websocket_options
    from app.main import create_app
    from app.observability import configure_logging

    asyncio.run(migrate_database(settings))
    if demo:
        asyncio.run(seed_demo_data(settings))
    configure_logging(json=settings.log_format == "json", level=logging.getLevelName(settings.log_level))
    print(f"Tollgate on http://{host}:{port}/graphql (GraphiQL in a browser)", flush=True)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        **uvicorn_websocket_options(settings),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tollgate", description="Tollgate GraphQL gateway")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="migrate, optionally seed demo data, and serve")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--demo", action="store_true", help="seed demo data when the database is empty")

    commands.add_parser("migrate", help="apply the database migrations")

    seed_parser = commands.add_parser("seed", help="seed data")
    seed_parser.add_argument(
        "--demo", action="store_true", required=True, help='the demo data (the README\'s "Demo data")'
    )

    token_parser = commands.add_parser("token", help="print a JWT for a user")
    token_parser.add_argument("--email", required=True)
    token_parser.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")

    apikey_parser = commands.add_parser("apikey", help="manage API keys")
    apikey_commands = apikey_parser.add_subparsers(dest="apikey_command", required=True)
    create_parser = apikey_commands.add_parser("create", help="create a key (printed once)")
    create_parser.add_argument("--tenant", required=True, help="tenant slug")
    create_parser.add_argument(
        "--scopes", required=True, help="comma-separated, e.g. quota:check,process:start"
    )
    create_parser.add_argument("--name", default="API key")
    revoke_parser = apikey_commands.add_parser("revoke", help="revoke a key by its prefix")
    revoke_parser.add_argument("prefix")

    operator_parser = commands.add_parser("operator-key", help="manage operator keys (/operator/graphql)")
    operator_commands = operator_parser.add_subparsers(dest="operator_command", required=True)
    operator_create = operator_commands.add_parser("create", help="create an operator key (printed once)")
    operator_create.add_argument(
        "--scopes", required=True, help="comma-separated, e.g. tenants:write,users:write,ops:read"
    )
    operator_create.add_argument("--name", default="Operator key")
    operator_commands.add_parser("revoke", help="revoke an operator key by its prefix").add_argument("prefix")
    operator_commands.add_parser("list", help="list operator keys (never their secrets)")

    user_parser = commands.add_parser("user", help="manage users")
    user_commands = user_parser.add_subparsers(dest="user_command", required=True)
    for command, help_text in (
        ("disable", "refuse the user's tokens and close their live sessions"),
        ("enable", "accept the user's tokens again"),
    ):
        user_commands.add_parser(command, help=help_text).add_argument("--email", required=True)

    secrets_parser = commands.add_parser("secrets", help="integration secrets")
    secrets_commands = secrets_parser.add_subparsers(dest="secrets_command", required=True)
    secrets_commands.add_parser(
        "reencrypt", help="re-encrypt every secret with the first key of TOLLGATE_ENCRYPTION_KEY"
    )

    catalog_parser = commands.add_parser("catalog", help="the catalog file (docs/catalog.md)")
    catalog_commands = catalog_parser.add_subparsers(dest="catalog_command", required=True)
    catalog_apply = catalog_commands.add_parser("apply", help="validate a catalog file and apply it")
    catalog_apply.add_argument("file")
    catalog_apply.add_argument("--dry-run", action="store_true", help="print the changes, apply nothing")
    catalog_commands.add_parser("export", help="print the catalog on sale as a catalog file")

    invoices_parser = commands.add_parser("invoices", help="issued invoices")
    invoices_commands = invoices_parser.add_subparsers(dest="invoices_command", required=True)
    invoices_issue = invoices_commands.add_parser(
        "issue", help="issue the invoices of ended billing periods now (idempotent)"
    )
    invoices_issue.add_argument(
        "--period", default=None, help="YYYY-MM: that period for every tenant (default: whatever is due)"
    )

    translations_parser = commands.add_parser(
        "translations", help="the message catalogs (docs/translating.md), for maintainers"
    )
    translations_commands = translations_parser.add_subparsers(dest="translations_command", required=True)
    for command, help_text in (
        ("update", "extract the messages and merge them into each locale's .po"),
        ("compile", "compile the .po files into the .mo files shipped"),
    ):
        translations_commands.add_parser(command, help=help_text).add_argument(
            "domains", nargs="*", help="any of errors, labels, emails (default: all)"
        )
    translations_commands.add_parser("check", help="list missing or stale translations; exit 1 if any")

    export_parser = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export_parser.add_argument(
        "--operator", action="store_true", help="the operator API's schema (operator.graphql)"
    )
    export_parser.add_argument(
        "--markdown", action="store_true", help="the API reference page (docs/reference.md) instead of SDL"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        return run(args, settings)
    except CommandError as error:
        print(f"tollgate: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        serve(settings, args.host, args.port, args.demo)
    elif args.command == "migrate":
        asyncio.run(migrate_database(settings))
    elif args.command == "seed":
        asyncio.run(migrate_database(settings))
        asyncio.run(seed_demo_data(settings))
    elif args.command == "token":
        print(asyncio.run(mint_token(settings, args.email, args.ttl or settings.jwt_ttl_seconds)))
    elif args.command == "apikey" and args.apikey_command == "create":
        key = asyncio.run(create_api_key(settings, args.tenant, parse_scopes(args.scopes), args.name))
        print(key)
        print("Store this key now: it is not shown again.", file=sys.stderr)
    elif args.command == "apikey" and args.apikey_command == "revoke":
        asyncio.run(revoke_api_key(settings, args.prefix))
        print(f"API key {args.prefix} revoked.")
    elif args.command == "operator-key" and args.operator_command == "create":
        key = asyncio.run(create_operator_key(settings, parse_operator_scopes(args.scopes), args.name))
        print(key)
        print("Store this key now: it is not shown again.", file=sys.stderr)
    elif args.command == "operator-key" and args.operator_command == "revoke":
        asyncio.run(revoke_operator_key(settings, args.prefix))
        print(f"Operator key {args.prefix} revoked.")
    elif args.command == "operator-key" and args.operator_command == "list":
        print("\n".join(asyncio.run(list_operator_keys(settings))))
    elif args.command == "user":
        asyncio.run(set_user_active(settings, args.email, active=args.user_command == "enable"))
        print(f"User {args.email} {args.user_command}d.")
    elif args.command == "secrets" and args.secrets_command == "reencrypt":
        changed = asyncio.run(reencrypt_secrets(settings))
        print(f"{changed} secrets re-encrypted with the newest key; older keys may now be removed.")
    elif args.command == "catalog" and args.catalog_command == "apply":
        return asyncio.run(apply_catalog(settings, args.file, args.dry_run))
    elif args.command == "catalog" and args.catalog_command == "export":
        print(asyncio.run(export_catalog(settings)), end="")
    elif args.command == "invoices" and args.invoices_command == "issue":
        lines = asyncio.run(issue_invoices(settings, args.period))
        print("\n".join([*lines, f"{len(lines)} invoice(s) issued."]))
    elif args.command == "translations":
        from app.i18n import catalogs

        if unknown := set(getattr(args, "domains", ())) - set(DOMAINS):
            raise CommandError(
                f"no such message domain: {', '.join(sorted(unknown))} (use {', '.join(DOMAINS)})"
            )
        if args.translations_command == "update":
            catalogs.update(args.domains or DOMAINS)
        elif args.translations_command == "compile":
            catalogs.compile_all(args.domains or DOMAINS)
        else:
            found = list(catalogs.problems())
            print("\n".join(found or ["Every message has its translations."]))
            return 1 if found else 0
    elif args.command == "export-schema" and args.operator:
        from app.resolvers.operator.schema import operator_schema

        print(operator_schema().as_str())
    elif args.command == "export-schema" and args.markdown:
        from app.resolvers.reference import reference_markdown
        from app.schema import schema

        print(reference_markdown(schema._schema), end="")
    elif args.command == "export-schema":
        from app.schema import schema

        print(schema.as_str())
    return 0


if __name__ == "__main__":
    sys.exit(main())
