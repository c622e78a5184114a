"""Signals' API fixtures: SIM instruments with stored daily bars, a trader, and the paper
desk of the trading tests (for the parity test)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import BarArrays, Timeframe
from quantdesk.platform.context import AppContext
from tests.signals.synthetic import random_walk
from tests.trading.conftest import desk, sim_market

BARS_PER_INSTRUMENT = 320


@pytest.fixture
async def bars_market(app: FastAPI, sim_market: None) -> list[str]:
    """SIM:ALPHA and SIM:BETA with a year and a bit of daily bars each."""
    ctx: AppContext = app.state.ctx
    keys = ["SIM:ALPHA", "SIM:BETA"]
    async with ctx.database.session(immediate=True) as db:
        for seed, key in enumerate(keys):
            walk = random_walk(BARS_PER_INSTRUMENT, seed=seed + 20)
            o, h, lo, c = (np.round(np.round(v / 0.05) * 0.05, 2)
                           for v in (walk.open, walk.high, walk.low, walk.close))  # fmt: skip
            arrays = BarArrays(walk.ts, o, h, lo, c, walk.volume)
            await BarStore(db).bulk_load(key, Timeframe.D1, arrays)
    return keys


async def wait_for_job(
    client: httpx.AsyncClient, job_id: str, headers: dict[str, str], seconds: float = 60.0
) -> dict[str, Any]:
    """Poll the job's status until it has finished (the runner works in the background)."""
    seen: list[float] = []
    for _ in range(int(seconds / 0.05)):
        r = await client.get(f"/api/v1/signals/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        job = dict(r.json())
        seen.append(job["progress"])
        if job["status"] in ("done", "failed"):
            assert seen == sorted(seen)  # progress never goes back
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {seconds}s")


__all__ = ["bars_market", "desk", "sim_market", "wait_for_job"]
