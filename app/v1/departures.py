"""Departures: the organisation's policy, previews, starting and reinstating, progress."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import FREE_TEXT, Day, Input, ListQuery, Output, Page, sort_param
from tenants.departures import service
from tenants.departures.models import (
    ContentAction,
    Departure,
    DepartureStatus,
    DepartureStep,
    PersonalOutcome,
    StepStatus,
)
from tenants.departures.planner import ItemAction, Plan, PolicyView, SuccessorSource
from tenants.pagination import Sort, paginate
from tenants.permissions import Permission

router = ApiRouter("/v1", "departures")

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), FREE_TEXT]


class PolicyBody(Input):
    fallback_successor_id: uuid.UUID | None = Field(
        None, description="Receives work content when the leaver has no (active) manager."
    )
    default_action: ContentAction = ContentAction.TRANSFER
    product_actions: dict[uuid.UUID, ContentAction] = Field(
        default_factory=dict,
        max_length=1000,
        description="Per product id, an action other than the default.",
    )
    retention_days: int = Field(30, ge=0, le=service.MAX_RETENTION_DAYS)
    export_window_days: int = Field(
        14,
        ge=0,
        le=service.MAX_EXPORT_WINDOW_DAYS,
        description="Notice members should get to export personal items; shorter notice "
        "is flagged in the preview.",
    )
    personal_outcome: PersonalOutcome = PersonalOutcome.DELETE
    reinstatement_returns_items: bool = True

    def view(self) -> PolicyView:
        return PolicyView(**self.model_dump())


class PolicyOut(Output):
    fallback_successor_id: uuid.UUID | None
    default_action: ContentAction
    product_actions: dict[uuid.UUID, ContentAction]
    retention_days: int
    export_window_days: int
    personal_outcome: PersonalOutcome
    reinstatement_returns_items: bool

    @classmethod
    def of(cls, view: PolicyView) -> PolicyOut:
        return cls(**dataclasses.asdict(view))


@router.get(
    "/departure-policy",
    summary="Get the departure policy",
    permission=Permission.DEPARTURES_READ,
    response=PolicyOut,
)
async def get_departure_policy(call: Call[Input, Input]) -> PolicyOut:
    return PolicyOut.of(await service.get_policy())


@router.put(
    "/departure-policy",
    summary="Replace the departure policy",
    permission=Permission.DEPARTURES_WRITE,
    body=PolicyBody,
    response=PolicyOut,
    errors=(422,),
)
async def set_departure_policy(call: Call[PolicyBody, Input]) -> PolicyOut:
    """Departures under way keep the policy they started with."""
    return PolicyOut.of(await service.set_policy(call.body.view(), actor=call.actor))


class Count(Output):
    count: int
    bytes: int


class PlanRowOut(Output):
    product_id: uuid.UUID
    kind: str
    legal_hold: bool
    action: ItemAction
    reason: str
    held: bool = Field(description="A legal hold keeps these from deletion.")
    target_id: uuid.UUID | None
    deadline: datetime
    count: int
    bytes: int


class WarningOut(Output):
    code: str
    message: str


class PlanOut(Output):
    member_id: uuid.UUID
    successor_id: uuid.UUID | None
    successor_source: SuccessorSource
    last_day: date
    suspend_at: datetime
    export_until: datetime
    purge_at: datetime
    rows: list[PlanRowOut]
    total: Count
    held: Count
    by_product: dict[str, Count]
    by_kind: dict[str, Count]
    by_action: dict[str, Count]
    warnings: list[WarningOut]

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        data = plan.to_json()
        return cls(
            member_id=plan.member.id,
            successor_id=plan.successor.id if plan.successor else None,
            successor_source=plan.successor_source,
            last_day=plan.schedule.last_day,
            suspend_at=plan.schedule.suspend_at,
            export_until=plan.schedule.export_until,
            purge_at=plan.schedule.purge_at,
            rows=[PlanRowOut.model_validate(r) for r in plan.rows],
            total=Count(**data["total"]),
            held=Count(**data["held"]),
            by_product={k: Count(**v) for k, v in data["by_product"].items()},
            by_kind={k: Count(**v) for k, v in data["by_kind"].items()},
            by_action={k: Count(**v) for k, v in data["by_action"].items()},
            warnings=[WarningOut(code=w.code, message=w.message) for w in plan.warnings],
        )


class PreviewBody(Input):
    last_day: Day
    successor_id: uuid.UUID | None = Field(
        None, description="Default: the member's manager, else the policy's fallback."
    )


@router.post(
    "/members/{id}/departure-preview",
    summary="Preview a member's departure",
    permission=Permission.DEPARTURES_READ,
    body=PreviewBody,
    response=PlanOut,
    errors=(404, 422),
)
async def preview_departure(call: Call[PreviewBody, Input]) -> PlanOut:
    """The plan a departure would follow if started now: per group of items the action,
    target and deadline, totals, items kept by legal hold, and warnings. Changes nothing."""
    b = call.body
    return PlanOut.of(
        await service.preview_departure(call.id(), last_day=b.last_day, successor_id=b.successor_id)
    )


class StepOut(Output):
    name: str
    status: StepStatus
    due_at: datetime
    total: int
    done: int
    started_at: datetime | None
    finished_at: datetime | None
    last_error: str | None


class DepartureOut(Output):
    id: uuid.UUID
    member_id: uuid.UUID
    successor_id: uuid.UUID | None
    status: DepartureStatus
    last_day: date
    suspend_at: datetime
    export_until: datetime
    purge_at: datetime
    reason: str
    started_by: str
    plan_totals: dict[str, object]
    created_at: datetime
    finished_at: datetime | None
    steps: list[StepOut] = Field(default_factory=list)

    @classmethod
    def of(cls, departure: Departure, steps: list[DepartureStep] | None = None) -> DepartureOut:
        out = cls.model_validate(departure, from_attributes=True)
        out.steps = [StepOut.model_validate(s) for s in steps or []]
        return out


class DeparturePage(Page[DepartureOut]):
    pass


class DepartureCreate(Input):
    member_id: uuid.UUID
    last_day: Day = Field(
        description="The member's last working day (UTC); today or later, at most ten years ahead."
    )
    successor_id: uuid.UUID | None = None
    reason: Reason = ""


#: What departures can be listed by.
DEPARTURE_SORTS = ("created_at", "last_day")


class DepartureQuery(ListQuery):
    status: DepartureStatus | None = None
    member_id: uuid.UUID | None = None
    sort: str = sort_param("-created_at", DEPARTURE_SORTS)


class ReinstateBody(Input):
    reason: Reason = ""


@router.post(
    "/departures",
    summary="Start a departure",
    permission=Permission.DEPARTURES_WRITE,
    body=DepartureCreate,
    response=DepartureOut,
    status=201,
    errors=(409, 422),
)
async def start_departure(call: Call[DepartureCreate, Input]) -> DepartureOut:
    """The member becomes departing at once and is told; at the end of the last day they
    are suspended and their content moves; after retention, purge. 409 unless active."""
    b = call.body
    departure = await service.start_departure(
        b.member_id,
        last_day=b.last_day,
        successor_id=b.successor_id,
        reason=b.reason,
        actor=call.actor,
    )
    return DepartureOut.of(departure, await service.steps_of(departure.id))


@router.get(
    "/departures",
    summary="List departures",
    permission=Permission.DEPARTURES_READ,
    query=DepartureQuery,
    response=DeparturePage,
    errors=(422,),
)
async def list_departures(call: Call[Input, DepartureQuery]) -> DeparturePage:
    q = call.query
    query = Departure.all()
    if q.status is not None:
        query = query.filter(status=q.status)
    if q.member_id is not None:
        query = query.filter(member_id=q.member_id)
    page = await paginate(
        query, Sort.parse(q.sort, DEPARTURE_SORTS), cursor=q.cursor, limit=q.limit
    )
    return DeparturePage(
        items=[DepartureOut.of(d) for d in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/departures/{id}",
    summary="Get a departure with its steps",
    permission=Permission.DEPARTURES_READ,
    response=DepartureOut,
    errors=(404,),
)
async def get_departure(call: Call[Input, Input]) -> DepartureOut:
    departure = await service.get_departure(call.id())
    return DepartureOut.of(departure, await service.steps_of(departure.id))


@router.post(
    "/departures/{id}/reinstate",
    summary="Reinstate the member and stop the departure",
    permission=Permission.DEPARTURES_WRITE,
    body=ReinstateBody,
    response=DepartureOut,
    errors=(404, 409),
)
async def reinstate_departure(call: Call[ReinstateBody, Input]) -> DepartureOut:
    departure = await service.reinstate_departure(
        call.id(), reason=call.body.reason, actor=call.actor
    )
    return DepartureOut.of(departure, await service.steps_of(departure.id))
