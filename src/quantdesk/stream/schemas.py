"""API shapes of the stream's REST side (the WebSocket frames are in ``protocol``)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class TicketOut(BaseModel):
    ticket: str = Field(description='Send as the first frame: {"op": "auth", "ticket": ...}')
    expires_at: dt.datetime = Field(description="Good once, until this time (30 s by default)")
