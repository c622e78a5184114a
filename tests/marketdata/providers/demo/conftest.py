"""A demo market shared by the demo tests (building one costs a second or two)."""

from __future__ import annotations

import datetime as dt

import pytest

from quantdesk.marketdata.providers.demo.market import DemoMarket

SEED = 424_242
# A Wednesday inside the calendars' data; its last 30 NSE sessions include the 2026-05-28
# Bakri Id holiday and the US ones Memorial Day (2026-05-25).
ANCHOR = dt.date(2026, 6, 17)


@pytest.fixture(scope="session")
def market() -> DemoMarket:
    return DemoMarket(SEED, ANCHOR)
