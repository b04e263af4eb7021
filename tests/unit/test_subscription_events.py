"""Subscription events completed by the fast lane give graphql-core's answer
(app.schema, app.edge.fast_path)."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import Executor, OperationDefinitionNode, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.edge import fast_path
from app.models.metering import AlertKind, AlertState
from app.models.metering import LimitAlert as AlertModel
from app.resolvers.metering import LimitAlert
from app.schema import TollgateExecutionContext, build_schema
from app.settings import Settings

SCHEMA = build_schema()
AT = dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC)


def alert(**changes: Any) -> LimitAlert:
    fields: dict[str, Any] = {
        "id": 7, "tenant_id": uuid.uuid4(), "kind": AlertKind.CREDITS, "threshold": 90,
        "state": AlertState.TRIGGERED, "used": 3_600, "limit": 4_000, "period": None, "created_at": AT,
    } | changes  # fmt: skip
    return LimitAlert.of(AlertModel(**fields), anchor_day=10)


async def event(executor_class: type[Executor], document: str, payload: Any) -> Any:
    executor = executor_class.build(SCHEMA._schema, parse(document))
    assert isinstance(executor, Executor)
    result = executor.build_per_event_executor(payload).execute_operation(False)
    return await result if executor.is_awaitable(result) else result


@pytest.mark.parametrize(
    "document",
    [
        "subscription { limitAlerts { id kind threshold state used limit period { name start end } at } }",
        "subscription A { alert: limitAlerts { __typename percent: threshold kind kind state } }",
        "subscription { limitAlerts { ... on LimitAlert { id used } limit } }",
    ],
)
@pytest.mark.parametrize("payload", [alert(), alert(kind=AlertKind.PROCESSES, period="2026-11", used=2**40)])
async def test_an_event_gets_the_same_answer_as_graphql_cores(document: str, payload: LimitAlert) -> None:
    operation = parse(document).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    field = fast_path.compiled_event(SCHEMA, operation)
    assert field is not None

    fast = await event(TollgateExecutionContext, document, payload)
    core = await event(StrawberryGraphQLCoreExecutionContext, document, payload)

    assert fast == core
    assert not fast.errors
    # ... and it is the lane's own answer (no variables, no context needed by these fields).
    assert await fast_path.complete_event(SCHEMA, field, payload, None, None) == fast.data  # type: ignore[arg-type]


async def test_a_payload_the_lane_cannot_complete_gets_graphql_cores_error() -> None:
    document = "subscription { limitAlerts { id used } }"
    broken = alert()
    broken.used = None  # type: ignore[assignment]  # a non-null field without a value

    fast = await event(TollgateExecutionContext, document, broken)
    core = await event(StrawberryGraphQLCoreExecutionContext, document, broken)

    assert fast == core
    assert fast.errors


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_fast_path_setting_decides_whether_events_are_completed_by_the_lane(
    enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = "subscription { limitAlerts { id kind threshold state used limit period { name } at } }"
    calls: list[Any] = []

    async def spy(*args: Any) -> Any:
        calls.append(args)
        return None  # as if the lane could not complete it: graphql-core does

    monkeypatch.setattr(fast_path, "complete_event", spy)
    context = SimpleNamespace(settings=Settings(env="test", fast_path=enabled))
    executor = TollgateExecutionContext.build(SCHEMA._schema, parse(document), context_value=context)
    assert isinstance(executor, Executor)
    result = executor.build_per_event_executor(alert()).execute_operation(False)
    answer = await result if executor.is_awaitable(result) else result

    assert answer == await event(StrawberryGraphQLCoreExecutionContext, document, alert())
    assert len(calls) == (1 if enabled else 0)
