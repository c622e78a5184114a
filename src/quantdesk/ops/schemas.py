"""API shapes of the kill switch."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.ops.killswitch import HaltScope
from quantdesk.ops.models import TradingHalt


class HaltIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: HaltScope
    target: Annotated[
        str | None,
        Field(
            max_length=80,
            description="None for `all`; an exchange code (`NSE`) or an instrument key "
            "(`NSE:INFY`).",
        ),
    ] = None
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class HaltOut(BaseModel):
    id: uuid.UUID
    scope: HaltScope
    target: str | None
    reason: str
    active: bool
    halted_at: dt.datetime
    halted_by: uuid.UUID | None
    resumed_at: dt.datetime | None
    resumed_by: uuid.UUID | None

    @classmethod
    def of(cls, row: TradingHalt) -> HaltOut:
        return cls(
            id=row.id,
            scope=HaltScope(row.scope),
            target=row.target or None,
            reason=row.reason,
            active=row.resumed_at is None,
            halted_at=row.halted_at,
            halted_by=row.halted_by,
            resumed_at=row.resumed_at,
            resumed_by=row.resumed_by,
        )


class HaltList(BaseModel):
    items: list[HaltOut]
