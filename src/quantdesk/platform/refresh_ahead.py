"""Cache entries read again shortly before they expire, beside the request that finds them old.

Every authenticated request reads a few entries (the session's status, an API key's record,
the profile) that the database owns and the cache remembers for seconds.  A miss costs a
unit of work of several driver round trips, and under load each round trip waits for a turn
of the busy event loop: at 4,000 requests/s on SQLite a miss took ~120 ms, the whole p99 of
``GET /users/me``.  So an entry carries the time it was read; a request that finds it older
than its refresh age is answered from it and starts one read of its own in the background
(at most one per key and process), which writes the entry afresh.  An entry in use never
misses; one nobody uses still expires at its TTL, so what a TTL bounds (how long a
revocation can go unseen) is unchanged.

Hand-written: a dozen lines over our cache; cache libraries with refresh-ahead (cachetools,
aiocache) keep entries in their own store, not in Redis shared by every process.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Awaitable, Callable

from quantdesk.platform.context import AppContext
from quantdesk.platform.logging import get_logger

log = get_logger(__name__)

_MARK = b"\x00R"  # what no entry written before this format starts with (JSON, UUID bytes)
_READ_AT = struct.Struct(">d")
_HEADER = len(_MARK) + _READ_AT.size
_REFRESHING = "refresh_ahead"  # ctx.extensions: the keys this process is reading again


def stamped(value: bytes) -> bytes:
    """``value`` with the time it was read, for ``ctx.cache.set``."""
    return _MARK + _READ_AT.pack(time.time()) + value


def unstamped(entry: bytes) -> tuple[bytes, float]:
    """The value and its age in seconds; an entry of an older format counts as stale."""
    if not entry.startswith(_MARK) or len(entry) < _HEADER:
        return entry, float("inf")
    (read_at,) = _READ_AT.unpack_from(entry, len(_MARK))
    return entry[_HEADER:], time.time() - float(read_at)


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
