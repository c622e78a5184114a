"""TOTP second factor (RFC 6238, via pyotp) and single-use recovery codes.

A code is accepted for the current 30-second step or one step either side (clock drift,
RFC 6238 section 5.2), and only for a step later than the last one accepted, so a code
cannot be replayed, not even within its own window.  Recovery codes carry 80 random bits
and are stored as HMAC-SHA256 under a server key: a leaked table alone cannot be searched.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import re
import secrets

import pyotp
import segno

TOTP_DIGITS = 6
TOTP_INTERVAL_S = 30
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_GROUPS = 4
RECOVERY_CODE_GROUP_LEN = 4
# Crockford-style alphabet without look-alikes (0/O, 1/I/L): codes are read off paper.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_TOTP_CODE = re.compile(r"^\d{6}$")


def new_totp_secret() -> str:
    """160 random bits, base32 (the RFC 4226 recommended secret length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL_S).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False)
    return buffer.getvalue().decode()


def qr_png_data_uri(uri: str) -> str:
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="png", scale=5)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def looks_like_totp(code: str) -> bool:
    return bool(_TOTP_CODE.match(code.strip().replace(" ", "")))


def current_step(now: dt.datetime | None = None) -> int:
    moment = now or dt.datetime.now(dt.UTC)
    return int(moment.timestamp()) // TOTP_INTERVAL_S


def totp_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL_S).generate_otp(step)


def match_totp(
    secret: str, code: str, *, last_step: int | None, now: dt.datetime | None = None
) -> int | None:
    """The time step ``code`` belongs to, if valid and later than ``last_step``; else None."""
    candidate = code.strip().replace(" ", "")
    if not _TOTP_CODE.match(candidate):
        return None
    here = current_step(now)
    matched: int | None = None
    for step in range(here - DRIFT_STEPS, here + DRIFT_STEPS + 1):
        # Compare every candidate (no early exit) so the time taken says nothing.
        if hmac.compare_digest(totp_at_step(secret, step), candidate) and matched is None:
            matched = step
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched


def generate_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        groups = [
            "".join(secrets.choice(_ALPHABET) for _ in range(RECOVERY_CODE_GROUP_LEN))
            for _ in range(RECOVERY_CODE_GROUPS)
        ]
        codes.append("-".join(groups))
    return codes


def normalise_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def hash_recovery_code(key: bytes, code: str) -> str:
    return hmac.new(key, normalise_recovery_code(code).encode(), hashlib.sha256).hexdigest()
