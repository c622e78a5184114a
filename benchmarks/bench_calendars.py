"""Exchange calendars: our memoised lookups vs. the packages they are built on.

The packages answer from pandas structures on every call; ours pay the pandas cost once per
exchange (the "build" row) and then answer with a dict lookup or a bisect. Times are the
best of several repeats, per call unless stated.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pandas_market_calendars as mcal

from quantdesk.marketdata.calendars import expiries, get_calendar
from quantdesk.marketdata.calendars import expiry_dates as expiries_module
from quantdesk.marketdata.calendars import sessions as sessions_module
from quantdesk.marketdata.calendars import sources as sources_module

REPEATS = 5
N_CALLS = 2000


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Best wall time of ``fn`` over ``repeats`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _clear_caches() -> None:
    for cached in (
        sources_module.package_days,
        sources_module.package_holiday_names,
        sources_module._mcal_calendar,
        sources_module._xcals_calendar,
        sessions_module._build_year,
        expiries_module._schedule_for_version,
    ):
        cached.cache_clear()


def _fmt(seconds: float | None, per: int = 1) -> str:
    if seconds is None:
        return "—"
    value = seconds / per
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def run() -> str:
    rng = np.random.default_rng(1)
    lo, hi = pd.Timestamp("2015-01-01", tz="UTC").value, pd.Timestamp("2025-12-31", tz="UTC").value
    stamps = [
        pd.Timestamp(int(ns // 60_000_000_000 * 60_000_000_000), tz="UTC")
        for ns in rng.integers(lo, hi, N_CALLS)
    ]
    instants = [s.to_pydatetime() for s in stamps]
    days = [at.date() for at in instants]

    # Cold: the first call pays the package's pandas work for the whole horizon.
    def cold_build() -> None:
        _clear_caches()
        get_calendar("NYSE").is_trading_day(dt.date(2025, 1, 2))

    ours_build = best_of(cold_build, repeats=3)
    ref_build = best_of(
        lambda: mcal.get_calendar("NYSE").schedule("1990-01-01", "2030-12-31"), repeats=3
    )

    nyse = get_calendar("NYSE")
    for year in range(2015, 2027):
        nyse.holidays(year)  # warm every year the samples touch
    xnys = xcals.get_calendar("XNYS", start="2006-01-01", end="2030-12-31")
    mcal_nyse = mcal.get_calendar("NYSE")
    schedule = mcal_nyse.schedule("2015-01-01", "2025-12-31")

    rows: list[tuple[str, float, str, float | None, int]] = [
        (
            "build NYSE 1990-2030 (cold, once)",
            ours_build,
            "mcal `schedule` 1990-2030",
            ref_build,
            1,
        ),
    ]
    rows.append(
        (
            "`is_open(at)`",
            best_of(lambda: [nyse.is_open(at) for at in instants]),
            "xcals `is_open_on_minute`",
            best_of(lambda: [xnys.is_open_on_minute(s) for s in stamps]),
            N_CALLS,
        )
    )
    few = stamps[:200]
    rows.append(
        (
            "`is_open(at)` (vs mcal)",
            best_of(lambda: [nyse.is_open(s.to_pydatetime()) for s in few]),
            "mcal `open_at_time`",
            best_of(lambda: [mcal_nyse.open_at_time(schedule, s) for s in few]),
            len(few),
        )
    )
    rows.append(
        (
            "`status(at)`",
            best_of(lambda: [nyse.status(at) for at in instants]),
            "xcals `is_open_on_minute` + `next_open` + `next_close`",
            best_of(
                lambda: [
                    (xnys.is_open_on_minute(s), xnys.next_open(s), xnys.next_close(s))
                    for s in stamps
                ]
            ),
            N_CALLS,
        )
    )
    sessions = [pd.Timestamp(xnys.minute_to_past_session(s)) for s in stamps]
    session_days = [s.date() for s in sessions]
    rows.append(
        (
            "`next_trading_day(d)`",
            best_of(lambda: [nyse.next_trading_day(d) for d in session_days]),
            "xcals `next_session`",
            best_of(lambda: [xnys.next_session(s) for s in sessions]),
            N_CALLS,
        )
    )
    rows.append(
        (
            "`is_trading_day(d)`",
            best_of(lambda: [nyse.is_trading_day(d) for d in days]),
            "xcals `is_session`",
            best_of(lambda: [xnys.is_session(pd.Timestamp(d)) for d in days]),
            N_CALLS,
        )
    )
    rows.append(
        (
            "`sessions()` for one year",
            best_of(lambda: nyse.sessions(dt.date(2025, 1, 1), dt.date(2025, 12, 31))),
            "mcal `schedule` for one year",
            best_of(lambda: mcal_nyse.schedule("2025-01-01", "2025-12-31")),
            1,
        )
    )
    expiries("NIFTY", dt.date(2025, 1, 1), dt.date(2025, 12, 31))  # warm
    rows.append(
        (
            "`expiries('NIFTY')` for one year (warm)",
            best_of(lambda: expiries("NIFTY", dt.date(2025, 1, 1), dt.date(2025, 12, 31))),
            "no package computes NSE expiries",
            None,
            1,
        )
    )

    lines = [
        "## Exchange calendars",
        "",
        "NYSE; ours reads pandas_market_calendars once, then answers from memoised tuples. "
        f"Reference: exchange_calendars {xcals.__version__} (xcals) and "
        f"pandas_market_calendars {mcal.__version__} (mcal). {N_CALLS} random minutes of "
        f"2015-2025 per row unless stated; best of {REPEATS}.",
        "",
        "| operation | ours | reference | reference time | speed-up |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for name, ours, ref_name, ref, per in rows:
        ratio = (
            "—"
            if ref is None
            else f"{ref / ours:.1f}×"
            if ref < 10 * ours
            else f"{ref / ours:.0f}×"
        )
        lines.append(f"| {name} | {_fmt(ours, per)} | {ref_name} | {_fmt(ref, per)} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
