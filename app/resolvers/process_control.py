"""Pausing or capping one kind of process: ``setProcessControl`` (issue 15). The rules are in
``app.services.process_control``; ``creditUsage.processes.byKind`` shows each kind's control and figures,
``quota`` and ``startProcess`` answer ``PROCESS_PAUSED`` / ``PROCESS_CAP_REACHED`` for that kind only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from app.models import metering as models
from app.resolvers.context import Info
from app.resolvers.errors import InvalidInputError, NotAdminError
from app.resolvers.metering import ProcessKindEnum
from app.resolvers.permissions import allow
from app.services import process_control


@strawberry.type(description="What an environment's admins set for one kind of process.")
class ProcessControl:
    process: ProcessKindEnum = strawberry.field(description="The kind of process.")  # type: ignore[valid-type]
    paused: bool = strawberry.field(
        description="Whether starts of this kind are denied (`PROCESS_PAUSED`); the other kinds still start."
    )
    monthly_cap: int | None = strawberry.field(
        description="The most starts of this kind per billing period; beyond it starts are denied "
        "(`PROCESS_CAP_REACHED`). Null: no cap."
    )
    updated_at: dt.datetime = strawberry.field(description="When the control was last set.")
    updated_by: str = strawberry.field(description="Who set it last: the administrator's e-mail address.")

    @classmethod
    def of(cls, row: models.ProcessControl) -> ProcessControl:
        return cls(
            process=models.ProcessKind(row.process),
            paused=row.paused,
            monthly_cap=row.monthly_cap,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )


@strawberry.type(description="The control was set; it applies from the next start on.")
class SetProcessControlSuccess:
    control: ProcessControl = strawberry.field(description="The kind's control as it now stands.")


SetProcessControlResult = Annotated[
    SetProcessControlSuccess | NotAdminError | InvalidInputError,
    strawberry.union("SetProcessControlResult", description="The control set, or why it was refused."),
]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="setProcessControl",
        extensions=allow(),
        description="Pause a kind of process, or cap its starts per billing period, for the caller's "
        "environment; the other kinds are not affected and the credit limit still stops every kind. The "
        "call replaces the kind's control whole (a cap left out is no cap). Audited.",
    )
    async def set_process_control(
        self,
        info: Info,
        process: Annotated[
            ProcessKindEnum,  # type: ignore[valid-type]
            strawberry.argument(description="The kind of process to control."),
        ],
        paused: Annotated[
            bool, strawberry.argument(description="True: deny every start of this kind until set false.")
        ],
        monthly_cap: Annotated[
            int | None,
            strawberry.argument(
                description="The most starts of this kind per billing period, 0 to 1,000,000,000 (0: none "
                "may start); null or left out: no cap."
            ),
        ] = None,
    ) -> SetProcessControlResult | None:
        context = info.context
        principal = await context.require_principal()
        row = await process_control.set_process_control(
            principal,
            process,
            paused=paused,
            monthly_cap=monthly_cap,
            now=context.clock.now(),
            figures_cache=context.services.figures_cache,
            broadcaster=context.services.broadcaster,
        )
        return SetProcessControlSuccess(control=ProcessControl.of(row))
