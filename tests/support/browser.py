"""Debian's Chromium as the browser tests launch it (scripts/ensure-services.sh installs it).

Headless and quiet: without the background-networking flags Chromium keeps trying hosts
outside this machine's closed network.  Pages may reach loopback only.
"""

from __future__ import annotations

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
