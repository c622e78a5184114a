"""Cache entries read again shortly before they expire, beside the request that finds them old.

Every authenticated request reads a few entries (the session's status, an API key's record,
the profile) that the database owns and the cache remembers for seconds.  A miss costs a
unit of work of several driver round trips, and under load each round trip waits for a turn
of the busy event loop: at 4,000 requests/s on SQLite a miss took ~120 ms, the whole p99 of
``GET /users/me``.  So an entry carries the time from which it is due for a refresh; a
request that finds it due is answered from it and starts one read of its own in the
background (at most one per key and process), which writes the entry afresh.  An entry in
use never misses; one nobody uses still expires at its TTL, so what a TTL bounds (how long a
revocation can go unseen) is unchanged.  The due time is drawn between 80% and 100% of the
refresh age, so entries read together (every session after a restart) are not all read
again in the same second.

Hand-written: a dozen lines over our cache; cache libraries with refresh-ahead (cachetools,
aiocache) keep entries in their own store, not in Redis shared by every process.
"""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Awaitable, Callable

from quantdesk.platform.context import AppContext
from quantdesk.platform.logging import get_logger

log = get_logger(__name__)

_MARK = b"\x00R"  # what no entry written before this format starts with (JSON, UUID bytes)
_DUE_AT = struct.Struct(">d")
_HEADER = len(_MARK) + _DUE_AT.size
_REFRESHING = "refresh_ahead"  # ctx.extensions: the keys this process is reading again


def stamped(value: bytes, refresh_after_s: float) -> bytes:
    """``value`` to cache, due for a refresh some 80-100% of ``refresh_after_s`` from now."""
    spread = 0.8 + 0.2 * secrets.randbelow(1001) / 1000
    return _MARK + _DUE_AT.pack(time.time() + refresh_after_s * spread) + value


def unstamped(entry: bytes) -> tuple[bytes, bool]:
    """The value, and whether it is due for a refresh (an older format always is)."""
    if not entry.startswith(_MARK) or len(entry) < _HEADER:
        return entry, True
    (due_at,) = _DUE_AT.unpack_from(entry, len(_MARK))
    return entry[_HEADER:], time.time() >= float(due_at)


def refresh_soon(ctx: AppContext, key: str, read: Callable[[], Awaitable[object]]) -> None:
    """Start ``read`` (which writes ``key`` afresh) unless this process is already at it."""
    refreshing: set[str] = ctx.extensions.setdefault(_REFRESHING, set())
    if key in refreshing:
        return
    refreshing.add(key)

    async def run() -> None:
        try:
            await read()
        except Exception as exc:  # the entry still expires by itself; the next miss reads
            log.warning("cache refresh failed", key=key.split(":", 1)[0], error=repr(exc))
        finally:
            refreshing.discard(key)

    ctx.spawn(run(), name=f"refresh-{key.split(':', 1)[0]}")
