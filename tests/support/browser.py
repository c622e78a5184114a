"""Debian's Chromium as the browser tests launch it (scripts/ensure-services.sh installs it).

Headless and quiet: without the background-networking flags Chromium keeps trying hosts
outside this machine's closed network.  Pages may reach loopback only.
"""

from __future__ import annotations

import re

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost"}
# Every URL but those plainly on loopback (scheme://127.0.0.1 or localhost, then a port, a
# path or nothing) and data:/blob:, as a route's pattern: Playwright matches it in its driver,
# so loopback requests never wait on a handler in the test process.  The handler still
# decides by the parsed host, so a URL this over-matches is let through there; it must never
# under-match ("http://127.0.0.1.example.com/", "http://localhost@example.com/" match).
MAYBE_OFFSITE = re.compile(
    r"^(?!(?:data|blob):)(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost)(?::\d+)?(?:[/?#]|$))"
)
