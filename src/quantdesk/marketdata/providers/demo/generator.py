"""Seeded, deterministic price, volume and open-interest paths for the demo market.  Pure.

The model, from coarse to fine:

* **Daily closes** follow geometric Brownian motion whose daily variance is a GARCH(1,1)
  process (Bollerslev 1986), ``h[t+1] = ω + α·h[t]·e[t]² + β·h[t]`` with
  ``ω = σ²_daily·(1 − α − β)``, so the long-run volatility is the configured one while quiet
  and turbulent spells cluster, as in real returns.  The shocks ``e`` load on a regional
  market factor (one for NSE, one for the US), so stocks move with their index.
* **Overnight gaps**: a share ``s`` of each day's variance is realised between the previous
  close and the open.  Given the day's total shock ``e``, the gap shock is drawn from its
  conditional law ``N(s·e, s·(1 − s))``, so gap + intraday add up to the GARCH return exactly.
* **Minutes**: the intraday path from open to close is a Brownian bridge whose variance is
  spread over the session by a U-shaped activity profile (busy open, quiet lunch, busy
  close; Admati & Pfleiderer 1988), and volume follows the same profile.  A day's daily bar
  is the aggregate of its minutes, so 1m and 1d data always agree.
* **Volume** rises with the size of the day's move (the volume-volatility relation) around the
  instrument's typical daily volume.

Determinism: every random stream is a ``numpy.random.SeedSequence`` keyed by the seed and a
CRC-32 of a stable name (instrument key, date), never Python's salted ``hash``.  The daily
stream is indexed by session ordinal from a fixed epoch and each session's minutes by its
date, so the data for a given date does not depend on the anchor date or on which window is
generated: loading later only appends, and overlapping loads upsert identical rows.

Hand-written because no maintained library generates session-aware GARCH paths with
intraday bridges; the GARCH recursion is a short Python loop over about 2,000 sessions
(~1 ms), not worth a numba compile at start-up.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quantdesk.marketdata.domain import BarArrays, FloatArray, IntArray

TRADING_DAYS_PER_YEAR = 252
_MINUTE = 60

DateArray = npt.NDArray[np.datetime64]


def seed_sequence(seed: int, *names: str | int) -> np.random.SeedSequence:
    """A random stream keyed by ``seed`` and stable names (CRC-32 of strings, ints as is)."""
    key = tuple(zlib.crc32(name.encode()) if isinstance(name, str) else int(name) for name in names)
    return np.random.SeedSequence(entropy=seed, spawn_key=key)


def rng(seed: int, *names: str | int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *names)))


def round_to_tick(prices: FloatArray, tick: float) -> FloatArray:
    """Round to the tick grid, giving the float nearest each decimal price.

    ``rint(p / tick) * tick`` leaves representation noise (24567.850000000002); dividing the
    integer tick count by the integer ``1/tick`` is one correctly rounded division, so the
    result is the float closest to the decimal and ``repr`` prints it back exactly.
    """
    per_unit = round(1.0 / tick)
    if not math.isclose(per_unit * tick, 1.0, rel_tol=1e-12):
        raise ValueError(f"tick size {tick} must divide 1 (0.05, 0.01, ...)")
    return np.rint(np.asarray(prices, dtype=np.float64) * per_unit) / per_unit


def round_to_lot(quantity: FloatArray, lot: float) -> FloatArray:
    """Round non-negative quantities to whole lots (F&O volume and OI are multiples of a lot)."""
    return np.rint(np.maximum(quantity, 0.0) / lot) * lot


@dataclass(frozen=True, slots=True)
class Sessions:
    """One exchange's trading days: local date, UTC first open and last close (epoch s).

    ``halts`` lists the rare days split in two (``(index, halt_start, halt_end)``, e.g. NSE's
    2021-02-24 outage): no minute bars are generated inside a halt.
    """

    dates: DateArray  # datetime64[D]
    opens: IntArray
    closes: IntArray
    halts: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self) -> None:
        n = self.dates.shape[0]
        if self.opens.shape != (n,) or self.closes.shape != (n,):
            raise ValueError("sessions need one open and one close per date")
        if n and (np.any(np.diff(self.dates.astype(np.int64)) <= 0)):
            raise ValueError("session dates must be strictly increasing")
        if np.any(self.closes <= self.opens) or np.any((self.closes - self.opens) % _MINUTE):
            raise ValueError("every session must last a positive whole number of minutes")
        for index, start, end in self.halts:
            inside = self.opens[index] < start < end < self.closes[index]
            if not inside or (end - start) % _MINUTE or (start - self.opens[index]) % _MINUTE:
                raise ValueError("a halt must lie on whole minutes inside its session")

    def __len__(self) -> int:
        return int(self.dates.shape[0])

    @property
    def minutes(self) -> IntArray:
        """Trading minutes of each day (halts excluded)."""
        out = (self.closes - self.opens) // _MINUTE
        for index, start, end in self.halts:
            out[index] -= (end - start) // _MINUTE
        return out

    def minute_times(self, index: int) -> IntArray:
        """UTC epoch seconds at which each minute bar of session ``index`` opens."""
        ts = np.arange(self.opens[index], self.closes[index], _MINUTE, dtype=np.int64)
        for day, start, end in self.halts:
            if day == index:
                ts = ts[(ts < start) | (ts >= end)]
        return ts

    def index_before(self, day: dt.date) -> int:
        """Index of the last session strictly before ``day`` (-1 when there is none)."""
        return int(np.searchsorted(self.dates, np.datetime64(day, "D"), side="left")) - 1

    def index_on_or_after(self, day: dt.date) -> int:
        """Index of the first session on or after ``day`` (``len`` when there is none)."""
        return int(np.searchsorted(self.dates, np.datetime64(day, "D"), side="left"))

    def index_on_or_before(self, day: dt.date) -> int:
        return int(np.searchsorted(self.dates, np.datetime64(day, "D"), side="right")) - 1

    def date(self, index: int) -> dt.date:
        value: dt.date = self.dates[index].astype(object)
        return value

    def day_numbers(self, epoch: dt.date) -> IntArray:
        """Calendar days from ``epoch`` to each session (the index of its daily draws)."""
        return np.asarray(self.dates - np.datetime64(epoch, "D"), dtype=np.int64)


@dataclass(frozen=True, slots=True)
class PriceModel:
    """Statistical character of one underlying.

    ``level`` is the close on the reference session; ``vol`` the long-run annualised
    volatility; ``factor_loading`` the correlation of its shocks with the regional market.
    """

    level: float
    vol: float
    drift: float = 0.08
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    factor_loading: float = 0.6
    gap_share: float = 0.15
    daily_volume: float = 0.0

    def __post_init__(self) -> None:
        if not (self.level > 0 and self.vol > 0):
            raise ValueError("level and vol must be positive")
        if min(self.garch_alpha, self.garch_beta) < 0 or self.persistence >= 1:
            raise ValueError("GARCH needs alpha, beta >= 0 and alpha + beta < 1")
        if not (0.0 <= self.factor_loading <= 1.0 and 0.0 <= self.gap_share < 1.0):
            raise ValueError("factor_loading must be in [0, 1] and gap_share in [0, 1)")

    @property
    def persistence(self) -> float:
        return self.garch_alpha + self.garch_beta

    @property
    def daily_variance(self) -> float:
        return self.vol * self.vol / TRADING_DAYS_PER_YEAR


@dataclass(frozen=True, slots=True)
class DailyPath:
    """Per-session log prices since the epoch, and each day's conditional variance."""

    log_open: FloatArray
    log_close: FloatArray
    variance: FloatArray  # h[t], the variance of session t's close-to-close log return
    returns: FloatArray  # close-to-close log returns (the first is from an implied close)

    @property
    def closes(self) -> FloatArray:
        return np.exp(self.log_close)


def factor_shocks(seed: int, region: str, n_days: int) -> FloatArray:
    """Standard normal market-factor shocks of one region, one per calendar day from the
    epoch (indexed by day, not session, so exchanges of a region share them by date)."""
    return rng(seed, "factor", region).standard_normal(n_days)


def garch_variance(shocks: FloatArray, model: PriceModel) -> FloatArray:
    """Conditional daily variances ``h[t]`` driven by standardised shocks ``e[t]``."""
    alpha, beta = model.garch_alpha, model.garch_beta
    omega = model.daily_variance * (1.0 - alpha - beta)
    h = model.daily_variance
    out = np.empty(shocks.shape[0], dtype=np.float64)
    for t, e in enumerate(shocks.tolist()):
        out[t] = h
        h = omega + (alpha * e * e + beta) * h
    return out


def daily_path(
    model: PriceModel,
    name: str,
    seed: int,
    factor: FloatArray,
    days: IntArray,
    reference_index: int,
) -> DailyPath:
    """GARCH-GBM closes for the sessions on calendar days ``days`` (from the epoch), scaled
    so that session ``reference_index`` closes at ``model.level``.

    ``factor`` holds the region's shock for every calendar day; ``name`` (the instrument key)
    selects the instrument's own stream, also drawn per calendar day, so a session's shocks
    do not depend on how many sessions precede it.
    """
    n = days.shape[0]
    if not 0 <= reference_index < n:
        raise ValueError("the reference session must lie inside the generated sessions")
    own = rng(seed, "daily", name).standard_normal((factor.shape[0], 2))[days]
    rho = model.factor_loading
    shocks = rho * factor[days] + math.sqrt(1.0 - rho * rho) * own[:, 0]
    variance = garch_variance(shocks, model)
    sd = np.sqrt(variance)
    # Itô: E[log return] = μ/252 − h/2 keeps the price's own drift at μ whatever h does.
    returns = model.drift / TRADING_DAYS_PER_YEAR - 0.5 * variance + sd * shocks
    s = model.gap_share
    gap_shock = s * shocks + math.sqrt(s * (1.0 - s)) * own[:, 1]
    gaps = -0.5 * s * variance + sd * gap_shock
    log_close = np.cumsum(returns)
    log_close += math.log(model.level) - log_close[reference_index]
    previous = np.concatenate(([log_close[0] - returns[0]], log_close[:-1]))
    return DailyPath(
        log_open=previous + gaps, log_close=log_close, variance=variance, returns=returns
    )


def activity_profile(n_minutes: int) -> FloatArray:
    """Relative trading activity per minute of a session, U-shaped, mean 1.

    Heavy in the opening half hour (overnight news being priced), light at lunch, rising into
    the close (index funds and MOC orders); the shape of NSE and NYSE minute volumes.
    """
    x = (np.arange(n_minutes, dtype=np.float64) + 0.5) / n_minutes
    profile = (
        0.55 + 2.4 * np.exp(-x / 0.045) + 1.4 * np.exp(-(1.0 - x) / 0.06) + 0.6 * (2 * x - 1) ** 2
    )
    return np.asarray(profile / profile.mean(), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class MinuteSpec:
    """What ``minute_bars`` needs to know about the instrument beyond its daily path."""

    name: str
    tick: float
    daily_volume: float = 0.0  # 0 for indices: an index has no traded volume
    volume_lot: float = 1.0


def minute_bars(
    spec: MinuteSpec,
    path: DailyPath,
    sessions: Sessions,
    first: int,
    last: int,
    seed: int,
    gap_share: float,
) -> BarArrays:
    """The 1-minute bars of sessions ``first..last`` (inclusive indices into ``sessions``).

    Each session's draws come from its own stream keyed by date, so a session's bars are
    the same whichever range they are generated in.
    """
    if first > last:
        return empty_bars()
    idx = np.arange(first, last + 1)
    lengths = sessions.minutes[idx]
    blocks: list[tuple[IntArray, BarArrays]] = []
    for length in np.unique(lengths).tolist():
        group = idx[lengths == length]
        blocks.append(
            (group, _session_block(spec, path, sessions, group, int(length), seed, gap_share))
        )
    if len(blocks) == 1:
        return blocks[0][1]
    # Several session lengths (US early closes): put the groups back in session order.
    bars = concat_bars([block for _, block in blocks])
    return take_bars(bars, np.argsort(bars.ts, kind="stable"))


def _session_block(
    spec: MinuteSpec,
    path: DailyPath,
    sessions: Sessions,
    group: IntArray,
    n: int,
    seed: int,
    gap_share: float,
) -> BarArrays:
    k = group.shape[0]
    draws = np.empty((k, 4, n), dtype=np.float64)
    day_noise = np.empty(k, dtype=np.float64)
    for row, session in enumerate(group.tolist()):
        stream = rng(seed, "minutes", spec.name, int(sessions.dates[session].astype(np.int64)))
        draws[row] = stream.standard_normal((4, n))
        day_noise[row] = stream.standard_normal()
    profile = activity_profile(n)
    weights = profile / profile.sum()
    cum_weights = np.cumsum(weights)

    variance = path.variance[group][:, None] * (1.0 - gap_share)
    log_open = path.log_open[group]
    target = path.log_close[group] - log_open
    steps = np.sqrt(variance * weights) * draws[:, 0]
    walk = np.cumsum(steps, axis=1)
    # Brownian bridge with time change: subtracting (V_t / V_T)·(W_T − target) pins the end
    # at the close while keeping the covariance of a bridge under the activity clock.
    bridge = walk - cum_weights * (walk[:, -1:] - target[:, None])
    closes = round_to_tick(np.exp(log_open[:, None] + bridge), spec.tick)
    opens = np.empty_like(closes)
    opens[:, 0] = round_to_tick(np.exp(log_open), spec.tick)
    opens[:, 1:] = closes[:, :-1]
    # The extremes inside a minute lie beyond its open and close by about one minute's
    # standard deviation (half-normal excursions of the bridge between them).
    minute_sd = np.sqrt(variance * weights)
    high = round_to_tick(
        np.maximum(opens, closes) * np.exp(0.5 * minute_sd * np.abs(draws[:, 1])), spec.tick
    )
    low = round_to_tick(
        np.minimum(opens, closes) * np.exp(-0.5 * minute_sd * np.abs(draws[:, 2])), spec.tick
    )

    if spec.daily_volume > 0:
        daily_sd = np.sqrt(path.variance[group])
        size = np.abs(path.returns[group]) / daily_sd
        # Big moves trade more; mean of |N(0,1)| is √(2/π), so a typical day has volume ~1.
        day_volume = spec.daily_volume * np.exp(
            0.45 * (size - math.sqrt(2 / math.pi)) + 0.25 * day_noise - 0.5 * 0.25**2
        )
        share = profile * np.exp(0.35 * draws[:, 3] - 0.5 * 0.35**2) / n
        volume = round_to_lot(day_volume[:, None] * share, spec.volume_lot)
    else:
        volume = np.zeros_like(closes)

    ts = np.stack([sessions.minute_times(session) for session in group.tolist()])
    return BarArrays(
        ts=ts.ravel(),
        open=opens.ravel(),
        high=high.ravel(),
        low=low.ravel(),
        close=closes.ravel(),
        volume=volume.ravel(),
    )


def daily_from_minutes(minutes: BarArrays, sessions: Sessions, first: int, last: int) -> BarArrays:
    """Aggregate minute bars into one bar per session, stamped 00:00 UTC of the local date.

    That stamp is the provider protocol's convention for daily bars (see providers.base).
    """
    if first > last:
        return empty_bars()
    idx = np.arange(first, last + 1)
    starts = np.searchsorted(minutes.ts, sessions.opens[idx], side="left")
    ends = np.searchsorted(minutes.ts, sessions.closes[idx], side="left")
    if np.any(ends <= starts):
        raise ValueError("every session needs at least one minute bar")
    oi = minutes.oi[ends - 1] if minutes.oi.shape[0] else np.empty(0, dtype=np.float64)
    return BarArrays(
        ts=sessions.dates[idx].astype("datetime64[s]").astype(np.int64),
        open=minutes.open[starts],
        high=np.maximum.reduceat(minutes.high, starts),
        low=np.minimum.reduceat(minutes.low, starts),
        close=minutes.close[ends - 1],
        volume=np.add.reduceat(minutes.volume, starts),
        oi=oi,
    )


def empty_bars() -> BarArrays:
    empty = np.empty(0, dtype=np.float64)
    return BarArrays(
        ts=np.empty(0, dtype=np.int64), open=empty, high=empty, low=empty, close=empty, volume=empty
    )


def concat_bars(parts: list[BarArrays]) -> BarArrays:
    if not parts:
        return empty_bars()
    has_oi = all(len(p.oi) == len(p) for p in parts) and any(len(p) for p in parts)
    return BarArrays(
        ts=np.concatenate([p.ts for p in parts]),
        open=np.concatenate([p.open for p in parts]),
        high=np.concatenate([p.high for p in parts]),
        low=np.concatenate([p.low for p in parts]),
        close=np.concatenate([p.close for p in parts]),
        volume=np.concatenate([p.volume for p in parts]),
        oi=np.concatenate([p.oi for p in parts]) if has_oi else np.empty(0, dtype=np.float64),
    )


def take_bars(bars: BarArrays, index: IntArray | npt.NDArray[np.bool_]) -> BarArrays:
    return BarArrays(
        ts=bars.ts[index],
        open=bars.open[index],
        high=bars.high[index],
        low=bars.low[index],
        close=bars.close[index],
        volume=bars.volume[index],
        oi=bars.oi[index] if bars.oi.shape[0] == bars.ts.shape[0] else bars.oi,
    )
