"""The Kite Connect session: one row per API key, the daily access token encrypted.

The access token is sealed with the PII cipher (``security/pii.py``, AES-256-GCM, the same
keys and rotation as the TOTP secrets) under the field name ``kite.access_token``, so a
copy of the table alone gives nobody a Kite session.  The API key itself is not stored, only
its SHA-256, which is enough to find the row for the configured key.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.platform.db import Base, UTCDateTime, utcnow


class KiteSessionRow(Base):
    __tablename__ = "kite_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(32))
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    login_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set when Kite refused the token (TokenException) before its expiry.
    invalidated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    invalid_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
