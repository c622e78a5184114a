"""Every feature router, mounted in one place.

Add a feature's router here with one line; ``create_app`` includes them all in this order.
"""

from __future__ import annotations

from fastapi import APIRouter

from quantdesk.platform.health import router as health_router


def feature_routers() -> list[APIRouter]:
    return [
        health_router,
    ]
