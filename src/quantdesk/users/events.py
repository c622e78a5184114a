"""Moved to ``quantdesk.security.audit``; re-exported for callers not yet moved."""

from __future__ import annotations

from quantdesk.security.audit import (
    SecurityEventType,
    client_ip,
    record_security_event,
    user_agent,
)

__all__ = ["SecurityEventType", "client_ip", "record_security_event", "user_agent"]
