"""Fixtures shared by every test: a fresh database per test, a movable clock, the app and a client.

The database is in-memory SQLite by default. With ``TOLLGATE_DATABASE_URL`` pointing at PostgreSQL
(``postgres://postgres@127.0.0.1:5432/tollgate``), each test gets its own fresh database there.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from tortoise.connection import get_connections
from tortoise.context import TortoiseContext, tortoise_test_context

from app.auth.tokens import issue_user_token
from app.clock import FrozenClock
from app.main import create_app
from app.models import MODEL_MODULES
from app.models.tenancy import Tenant, User
from app.seed import SeedResult, seed_demo
from app.settings import Settings

pytest_plugins = ["tests.smtp"]

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def database_url() -> str:
    url = os.environ.get("TOLLGATE_DATABASE_URL", "")
    if url.startswith(("postgres://", "asyncpg://", "postgresql://")):
        base, _, _name = url.rpartition("/")
        return f"{base}/tollgate_test_{uuid.uuid4().hex[:12]}"
    return "sqlite://:memory:"


def on_postgres() -> bool:
    return database_url().startswith(("postgres", "asyncpg"))


@pytest.fixture
async def db() -> AsyncIterator[TortoiseContext]:
    url = database_url()
    async with tortoise_test_context(MODEL_MODULES, db_url=url) as context:
        yield context
        if not url.startswith("sqlite"):
            # Tortoise creates the per-test PostgreSQL database but leaves it behind: drop it.
            for connection in get_connections().all():
                await connection.close()
                await connection.db_delete()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No rate limit by default: tests fire hundreds of concurrent requests as one caller on purpose.
    # No credential or catalog cache: tests change keys, users and the catalog and expect it at once
    # (the caches have tests of their own: test_auth, test_catalog_cache).
    return Settings(
        env="test",
        mail_dir=tmp_path / "mail",
        database_url=database_url(),
        rate_limit_per_second=0,
        auth_cache_seconds=0,
        catalog_cache_seconds=0,
    )


def production_changes() -> dict[str, Any]:
    """What turns the test settings into production ones that start: real-looking secrets, a metrics token."""
    return {
        "env": "production",
        "jwt_secret": "p" * 40,
        "encryption_key": Fernet.generate_key().decode(),
        "metrics_token": "m" * 32,
    }


@asynccontextmanager
async def instances_sharing_redis(settings: Settings, clock: FrozenClock) -> AsyncIterator[tuple[Any, Any]]:
    """Two gateway instances on the test database and ``TOLLGATE_REDIS_URL``, their lifespans running,
    on channels of their own (tests in parallel do not hear each other)."""
    shared = settings.model_copy(
        update={
            "redis_url": os.environ["TOLLGATE_REDIS_URL"],
            "redis_channel_prefix": f"t-{uuid.uuid4().hex}:",
        }
    )
    first, second = (
        create_app(shared, clock=clock, manage_orm=False, run_background_tasks=False) for _ in range(2)
    )
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        yield first, second


async def post_to(app: Any, query: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:
    """One GraphQL request to ``app``, its JSON answer."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        return response.json()


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, db: TortoiseContext) -> Any:
    return create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False)


@asynccontextmanager
async def client_for(
    settings: Settings, clock: FrozenClock, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app of its own, with ``changes`` to the test settings and its lifespan running."""
    app = create_app(
        settings.model_copy(update=changes), clock=clock, manage_orm=False, run_background_tasks=False
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tollgate.test") as client,
    ):
        yield client


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    # With its lifespan, as a server runs it: what the app opens (Redis connections...) it closes.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tollgate.test") as c,
    ):
        yield c


@pytest.fixture
async def demo(db: TortoiseContext, clock: FrozenClock) -> SeedResult:
    return await seed_demo(now=clock.now())


@pytest.fixture
async def acme_runs_bling(demo: SeedResult) -> None:
    """The Start Pack is sold per ERP, not for acme's (holded, quote-only): modules that buy it as acme
    (in euros, at 490.00) make acme a bling environment, where it sells at that price."""
    await Tenant.filter(slug="acme").update(erp="bling")


@dataclass
class GraphQLClient:
    """Posts GraphQL documents as a given caller; ids go in variables, as real clients do."""

    http: httpx.AsyncClient
    settings: Settings
    clock: FrozenClock
    tokens: dict[str, str] = field(default_factory=dict)

    async def token_for(self, email: str) -> str:
        if email not in self.tokens:
            user = await User.get(email=email)
            self.tokens[email] = issue_user_token(
                user_id=str(user.id),
                tenant_id=str(user.tenant_id),
                email=user.email,
                secret=self.settings.jwt_secret,
                now=self.clock.now(),
                ttl=dt.timedelta(days=30),
            )
        return self.tokens[email]

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        as_: str | None = None,
        key: str | None = None,
        locale: str | None = "en",
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``locale`` is sent as ``Accept-Language`` (English by default, whatever the environment's
        default; ``None`` sends no header); ``headers`` adds or overrides request headers."""
        headers = dict(headers or {})
        if locale is not None:
            headers.setdefault("Accept-Language", locale)
        if as_ is not None:
            headers["Authorization"] = f"Bearer {await self.token_for(as_)}"
        elif key is not None:
            headers["Authorization"] = f"Bearer {key}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def gql(client: httpx.AsyncClient, settings: Settings, clock: FrozenClock) -> GraphQLClient:
    return GraphQLClient(client, settings, clock)


class QueryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.lstrip().split(" ", 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            self.statements.append(message)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    """Counts the SQL statements Tortoise sends (it logs each one on ``tortoise.db_client``)."""
    logger = logging.getLogger("tortoise.db_client")
    counter = QueryCounter()
    previous_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous_level)
