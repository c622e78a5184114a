"""The security event log: every event goes to the structured log AND the
``security_events`` table (readable by admins through ``/api/v1/admin/security-events``).

Events of a request that fails (a wrong password, a reused refresh token) are written in
their own unit of work, so the request's rollback cannot erase the evidence.  Nothing
secret is ever put in ``details``; the log's redaction processor is a second line of defence.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.security.models import SecurityEvent

log = structlog.get_logger("quantdesk.security")


class SecurityEventType(StrEnum):
    REGISTERED = "registered"
    USER_CREATED = "user_created"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOCKED_OUT = "locked_out"
    MFA_FAILED = "mfa_failed"
    MFA_ENABLED = "mfa_enabled"
    MFA_DISABLED = "mfa_disabled"
    RECOVERY_CODE_USED = "recovery_code_used"
    RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105  # nosec B105 - an event name
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    SESSION_REVOKED = "session_revoked"
    REFRESH_REUSED = "refresh_token_reused"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    PERMISSION_DENIED = "permission_denied"
    RATE_LIMITED = "rate_limited"
    ROLE_CHANGED = "role_changed"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    USER_UNLOCKED = "user_unlocked"
    ACCOUNT_ERASED = "account_erased"
    CALENDAR_IMPORTED = "calendar_imported"
    TRADING_HALTED = "trading_halted"  # the kill switch (ops/killswitch.py)
    TRADING_RESUMED = "trading_resumed"


_WARNING_EVENTS = frozenset(
    {
        SecurityEventType.LOGIN_FAILED,
        SecurityEventType.LOCKED_OUT,
        SecurityEventType.MFA_FAILED,
        SecurityEventType.REFRESH_REUSED,
        SecurityEventType.PERMISSION_DENIED,
        SecurityEventType.RATE_LIMITED,
        SecurityEventType.TRADING_HALTED,
        SecurityEventType.TRADING_RESUMED,
    }
)


async def record_security_event(
    ctx: AppContext,
    event_type: SecurityEventType,
    *,
    user_id: uuid.UUID | None = None,
    client: ClientInfo | None = None,
    details: Mapping[str, Any] | None = None,
    session: AsyncSession | None = None,
) -> None:
    """Log the event and store it: in ``session`` if given, else in a unit of work of its own."""
    row = SecurityEvent(
        event_type=event_type.value,
        user_id=user_id,
        ip=client.ip if client else None,
        user_agent=client.user_agent if client else None,
        request_id=client.request_id if client else None,
        details=dict(details) if details else None,
    )
    ctx.metrics.security_events.labels(event_type.value).inc()
    level = "warning" if event_type in _WARNING_EVENTS else "info"
    getattr(log, level)(
        "security_event",
        event_type=event_type.value,
        user_id=str(user_id) if user_id else None,
        ip=row.ip,
        user_agent=row.user_agent,
        details=row.details,
    )
    if session is not None:
        session.add(row)
        return
    async with ctx.database.session(immediate=True) as own:
        own.add(row)
