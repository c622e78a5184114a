"""Risk of an option book by full revaluation: scenario grids and Monte Carlo VaR.

A book is a table of legs (options, futures, the underlying itself) on one or more
underlyings.  Every scenario reprices **every leg** with the analytics core's
Black-Scholes-Merton kernel (:func:`quantdesk.analytics.options.price`), the same one the
chain and strategies use; no Greek enters a full-revaluation figure.  Beside it,
:func:`scenario_grid` gives the second-order Greeks approximation over the same grid,
``delta dS + gamma dS^2 / 2 + vega dsigma + theta dt`` (plus ``vanna dS dsigma`` and
``volga dsigma^2 / 2``), so a user sees where the Taylor expansion breaks down.

Scenario conventions:

* a *spot move* ``m`` moves every underlying by the same relative amount, ``S (1 + m)``
  (a market-wide move; correlated, non-parallel moves are the Monte Carlo's job);
* an *IV change* ``v`` is relative: every leg's volatility becomes ``iv (1 + v)`` (sticky
  strike; -50% halves it);
* *time forward* ``d`` calendar days reduces every leg's time to expiry by ``d / 365``
  (ACT/365, the day count of the option kernel).  A leg that expires within the horizon is
  worth its intrinsic value at the shocked spot (it settled at that price);
* rates and dividend yields stay as they are; P&L is in the book's currency,
  ``units x (value after - value now)`` summed over legs, where ``units`` is the signed
  quantity times lot size (times multiplier).

The grid is evaluated as one ``(days, legs, spot moves, IV changes)`` array: legs outside the
two inner axes let the kernel reuse each leg's discount factors across the whole spot x IV
plane.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantdesk.analytics.daycount import DAYS_PER_YEAR
from quantdesk.analytics.options import greeks, price
from quantdesk.analytics.returns import FloatArray
from quantdesk.analytics.risk.var import historical_cvar, historical_var

__all__ = [
    "BookLeg",
    "MonteCarloBookVaR",
    "OptionBook",
    "ScenarioGrid",
    "book_monte_carlo_var",
    "scenario_grid",
]

LegKind = Literal["call", "put", "future", "underlying"]
_SIGN: Final[dict[str, float]] = {"call": 1.0, "put": -1.0, "future": 0.0, "underlying": 0.0}


@dataclass(frozen=True, slots=True)
class BookLeg:
    """One position: ``units`` signed (quantity x lot size), ``expiry`` in years from now."""

    underlying: str
    kind: LegKind
    units: float
    strike: float = math.nan
    expiry: float = math.inf
    iv: float = math.nan

    def __post_init__(self) -> None:
        if self.kind not in _SIGN:
            raise ValueError(f"unknown leg kind {self.kind!r}")
        if not math.isfinite(self.units):
            raise ValueError("units must be finite")
        if self.kind in ("call", "put"):
            if not (self.strike > 0 and self.expiry > 0 and self.iv > 0):
                raise ValueError("an option leg needs strike > 0, expiry > 0 and iv > 0")
            if not (math.isfinite(self.strike) and math.isfinite(self.expiry)):
                raise ValueError("an option leg needs a finite strike and expiry")
        if self.kind == "future" and not (self.expiry > 0 and math.isfinite(self.expiry)):
            raise ValueError("a future leg needs a finite expiry > 0")


@dataclass(frozen=True, slots=True, eq=False)  # arrays: compare by identity
class OptionBook:
    """The legs as columns, with each underlying's spot, rate and dividend yield."""

    underlyings: tuple[str, ...]
    spots: FloatArray  # per underlying
    rates: FloatArray  # per underlying (continuously compounded)
    dividend_yields: FloatArray
    index: NDArray[np.intp]  # per leg: which underlying
    sign: FloatArray  # +1 call, -1 put, 0 linear
    is_future: NDArray[np.bool_]
    strike: FloatArray
    expiry: FloatArray
    iv: FloatArray
    units: FloatArray

    @classmethod
    def of(
        cls,
        legs: Sequence[BookLeg],
        spots: dict[str, float],
        rate: float | dict[str, float] = 0.0,
        dividend_yield: float | dict[str, float] = 0.0,
    ) -> OptionBook:
        if not legs:
            raise ValueError("the book has no legs")
        names = tuple(sorted({leg.underlying for leg in legs}))
        missing = [n for n in names if n not in spots]
        if missing:
            raise ValueError(f"no spot for {', '.join(missing)}")
        if any(not (spots[n] > 0 and math.isfinite(spots[n])) for n in names):
            raise ValueError("spots must be finite and > 0")

        def per(value: float | dict[str, float]) -> FloatArray:
            if isinstance(value, dict):
                return np.array([value.get(n, 0.0) for n in names], dtype=np.float64)
            return np.full(len(names), float(value))

        position = {n: i for i, n in enumerate(names)}
        return cls(
            underlyings=names,
            spots=np.array([spots[n] for n in names], dtype=np.float64),
            rates=per(rate),
            dividend_yields=per(dividend_yield),
            index=np.array([position[leg.underlying] for leg in legs], dtype=np.intp),
            sign=np.array([_SIGN[leg.kind] for leg in legs]),
            is_future=np.array([leg.kind == "future" for leg in legs]),
            strike=np.array([leg.strike for leg in legs], dtype=np.float64),
            expiry=np.array([leg.expiry for leg in legs], dtype=np.float64),
            iv=np.array([leg.iv for leg in legs], dtype=np.float64),
            units=np.array([leg.units for leg in legs], dtype=np.float64),
        )

    @property
    def is_option(self) -> NDArray[np.bool_]:
        result: NDArray[np.bool_] = self.sign != 0.0
        return result

    def leg_values(self, spot: FloatArray, iv: FloatArray, remaining: FloatArray) -> FloatArray:
        """Per-unit value of each leg: the leg axis is axis 0 of ``spot``, ``iv`` and
        ``remaining``, which broadcast together (any scenario axes after it)."""
        r = self.rates[self.index]
        q = self.dividend_yields[self.index]
        return _values(self, spot, iv, remaining, r, q)


def _column(values: NDArray[Any], extra_dims: int) -> NDArray[Any]:
    """A per-leg vector shaped to broadcast against (legs, *extra)."""
    return values.reshape(values.shape + (1,) * extra_dims)


def _values(
    book: OptionBook,
    spot: FloatArray,
    iv: FloatArray,
    remaining: FloatArray,
    r: FloatArray,
    q: FloatArray,
) -> FloatArray:
    shape = np.broadcast_shapes(spot.shape, iv.shape, remaining.shape)
    extra = len(shape) - 1  # scenario axes after the leg axis
    opt = book.is_option
    sign = _column(book.sign, extra)
    strike = _column(book.strike, extra)
    rr, qq = _column(r, extra), _column(q, extra)
    out = np.empty(shape, dtype=np.float64)
    s_b = np.broadcast_to(spot, shape)
    t_b = np.maximum(np.broadcast_to(remaining, shape), 0.0)
    if opt.any():
        # A leg expired within the horizon is priced at t = 0: its intrinsic value.
        out[opt] = price(
            sign[opt],
            s_b[opt],
            strike[opt],
            t_b[opt],
            rr[opt],
            np.broadcast_to(iv, shape)[opt],
            qq[opt],
        )
    lin = ~opt
    if lin.any():
        carry = np.where(
            _column(book.is_future, extra), np.exp((rr - qq) * t_b), 1.0
        )  # futures at cost of carry, the underlying at spot
        out[lin] = (s_b * carry)[lin]
    return out


@dataclass(frozen=True, slots=True, eq=False)  # arrays: compare by identity
class ScenarioGrid:
    """P&L of the book over ``days x spot_moves x iv_changes`` (that axis order)."""

    spot_moves: FloatArray
    iv_changes: FloatArray
    days: FloatArray
    pnl: FloatArray  # full revaluation
    greeks_pnl: FloatArray  # second-order Greeks approximation, same shape
    value: float  # the book's model value now

    @property
    def worst(self) -> tuple[float, float, float, float]:
        """``(pnl, spot_move, iv_change, days)`` of the worst full-revaluation scenario."""
        k, i, j = np.unravel_index(int(np.argmin(self.pnl)), self.pnl.shape)
        return (
            float(self.pnl[k, i, j]),
            float(self.spot_moves[i]),
            float(self.iv_changes[j]),
            float(self.days[k]),
        )

    @property
    def best(self) -> tuple[float, float, float, float]:
        k, i, j = np.unravel_index(int(np.argmax(self.pnl)), self.pnl.shape)
        return (
            float(self.pnl[k, i, j]),
            float(self.spot_moves[i]),
            float(self.iv_changes[j]),
            float(self.days[k]),
        )


def default_spot_moves(points: int = 41, span: float = 0.20) -> FloatArray:
    return np.linspace(-span, span, points)


def default_iv_changes(points: int = 21, span: float = 0.50) -> FloatArray:
    return np.linspace(-span, span, points)


def scenario_grid(
    book: OptionBook,
    spot_moves: ArrayLike | None = None,
    iv_changes: ArrayLike | None = None,
    days: ArrayLike = (0.0,),
    *,
    with_greeks: bool = True,
) -> ScenarioGrid:
    """Full-revaluation P&L at every (days, spot move, IV change); see the module for the
    conventions.  Defaults: 41 spot moves -20%..+20%, 21 IV changes -50%..+50%, today."""
    m = default_spot_moves() if spot_moves is None else np.asarray(spot_moves, dtype=np.float64)
    v = default_iv_changes() if iv_changes is None else np.asarray(iv_changes, dtype=np.float64)
    d = np.atleast_1d(np.asarray(days, dtype=np.float64))
    if m.ndim != 1 or v.ndim != 1 or d.ndim != 1 or not (m.size and v.size and d.size):
        raise ValueError("spot_moves, iv_changes and days must be non-empty 1-D sequences")
    if np.any(m <= -1.0) or np.any(v <= -1.0) or np.any(d < 0):
        raise ValueError("spot moves and IV changes must be > -100%, days >= 0")
    spot0 = book.spots[book.index]
    remaining0 = np.where(book.is_option | book.is_future, book.expiry, 0.0)
    base = book.leg_values(spot0, book.iv, remaining0)
    value_now = float(book.units @ base)
    years = d / DAYS_PER_YEAR
    r = book.rates[book.index]
    q = book.dividend_yields[book.index]
    grow, scale = 1.0 + m, 1.0 + v
    pnl = np.zeros((d.size, m.size, v.size))
    # Options: one kernel call per leg and horizon over the whole spot x IV plane.  The leg's
    # strike, time and rates go in as scalars (the kernel reads them with stride 0), so only
    # the plane itself is materialised: broadcasting every input to the full
    # (legs x days x spots x IVs) block would copy seven arrays of that size first.
    planes = {u: np.repeat(book.spots[u] * grow, v.size) for u in np.unique(book.index)}
    for leg in np.flatnonzero(book.is_option):
        spot_plane = planes[book.index[leg]]
        iv_plane = np.tile(book.iv[leg] * scale, m.size)
        for k, elapsed in enumerate(years):
            t = max(float(remaining0[leg] - elapsed), 0.0)
            values = price(
                book.sign[leg], spot_plane, book.strike[leg], t, r[leg], iv_plane, q[leg]
            )
            pnl[k] += book.units[leg] * (values.reshape(m.size, v.size) - base[leg])
    # Linear legs move with the spot only: S (1 + m) times a future's carry factor.
    lin = ~book.is_option
    if lin.any():
        t_left = np.maximum(remaining0[lin][:, None] - years[None, :], 0.0)  # (legs, days)
        carry = np.where(book.is_future[lin][:, None], np.exp((r - q)[lin][:, None] * t_left), 1.0)
        value = spot0[lin][:, None, None] * carry[:, :, None] * grow[None, None, :]
        moved = np.einsum("l,lki->ki", book.units[lin], value - base[lin][:, None, None])
        pnl += moved[:, :, None]

    if with_greeks:
        approx = _greeks_pnl(book, spot0, remaining0, m, v, years)
    else:
        approx = np.full_like(pnl, np.nan)
    return ScenarioGrid(
        spot_moves=m, iv_changes=v, days=d, pnl=pnl, greeks_pnl=approx, value=value_now
    )


def _greeks_pnl(
    book: OptionBook,
    spot0: FloatArray,
    remaining0: FloatArray,
    m: FloatArray,
    v: FloatArray,
    years: FloatArray,
) -> FloatArray:
    r = book.rates[book.index]
    q = book.dividend_yields[book.index]
    opt = book.is_option
    n = spot0.size
    delta, gamma, vega, theta = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    vanna, volga = np.zeros(n), np.zeros(n)
    if opt.any():
        g = greeks(
            book.sign[opt], spot0[opt], book.strike[opt], remaining0[opt], r[opt], book.iv[opt],
            q[opt],
        )  # fmt: skip
        delta[opt], gamma[opt], vega[opt], theta[opt] = g.delta, g.gamma, g.vega, g.theta
        vanna[opt], volga[opt] = g.vanna, g.volga
    fut = book.is_future
    carry = np.exp((r - q) * remaining0)
    delta[fut] = carry[fut]
    # d/dt of S e^{(r-q)(T-t)} per year of calendar time, the same sign convention as theta.
    theta[fut] = -(r - q)[fut] * spot0[fut] * carry[fut]
    delta[~(opt | fut)] = 1.0
    u = book.units
    dS = spot0[:, None] * m[None, :]  # (legs, spot moves)
    dvol = np.where(opt, book.iv, 0.0)[:, None] * v[None, :]  # (legs, iv changes)
    spot_part = (u * delta) @ dS + 0.5 * ((u * gamma) @ (dS * dS))  # (spot moves,)
    vol_part = (u * vega) @ dvol + 0.5 * ((u * volga) @ (dvol * dvol))  # (iv changes,)
    cross = np.einsum("l,li,lj->ij", u * vanna, dS, dvol)
    time_part = float(u @ theta) * years  # (days,)
    total: FloatArray = (
        time_part[:, None, None] + spot_part[None, :, None] + vol_part[None, None, :] + cross
    )
    return total


@dataclass(frozen=True, slots=True)
class MonteCarloBookVaR:
    """Loss of the book's value over the horizon not exceeded with ``confidence``."""

    var: float
    cvar: float
    expected_pnl: float
    worst_pnl: float
    simulations: int


def book_monte_carlo_var(
    book: OptionBook,
    volatilities: ArrayLike,
    correlation: ArrayLike | None = None,
    confidence: float = 0.99,
    *,
    days: float = 1.0,
    simulations: int = 10_000,
    seed: int = 0,
) -> MonteCarloBookVaR:
    """VaR/CVaR of the book over ``days`` calendar days by simulating correlated underlyings.

    Each underlying follows a driftless (martingale) lognormal move over ``tau = days / 365``,
    ``S exp(-sigma^2 tau / 2 + sigma sqrt(tau) Z)`` with ``corr(Z) = correlation`` (identity
    when omitted) and ``volatilities`` annual, one per underlying in ``book.underlyings``
    order; each leg is then repriced at its own IV (sticky strike) with ``tau`` less to
    expiry.  Seeded: the same seed gives the same figures.  VaR is the ``"lower"`` empirical
    quantile of the simulated P&L, CVaR its Rockafellar-Uryasev shortfall (both as positive
    money amounts).
    """
    n = len(book.underlyings)
    sig = np.atleast_1d(np.asarray(volatilities, dtype=np.float64))
    if sig.shape != (n,) or np.any(sig < 0) or not np.all(np.isfinite(sig)):
        raise ValueError(f"give one finite volatility >= 0 per underlying ({n})")
    corr = np.eye(n) if correlation is None else np.asarray(correlation, dtype=np.float64)
    if corr.shape != (n, n) or not np.allclose(corr, corr.T) or not np.allclose(np.diag(corr), 1):
        raise ValueError("correlation must be a symmetric matrix with a unit diagonal")
    if simulations < 2 or days < 0:
        raise ValueError("simulations must be >= 2 and days >= 0")
    tau = days / DAYS_PER_YEAR
    # Cholesky of the correlation; an eigenvalue floor keeps a user's rounded matrix usable.
    eigval, eigvec = np.linalg.eigh(corr)
    if eigval.min() < -1e-8:
        raise ValueError("correlation matrix is not positive semi-definite")
    root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((simulations, n)) @ root.T
    moves = np.exp(-0.5 * sig * sig * tau + sig * math.sqrt(tau) * z)  # (sims, underlyings)
    spot0 = book.spots[book.index]
    remaining0 = np.where(book.is_option | book.is_future, book.expiry, 0.0)
    base = book.leg_values(spot0, book.iv, remaining0)
    r = book.rates[book.index]
    q = book.dividend_yields[book.index]
    remaining = np.maximum(remaining0 - tau, 0.0)
    pnl = np.zeros(simulations)
    # One kernel call per leg over all paths (scalars for the leg's own inputs), as the grid.
    for leg in range(book.units.size):
        spot = spot0[leg] * moves[:, book.index[leg]]
        if book.is_option[leg]:
            values = price(
                book.sign[leg], spot, book.strike[leg], float(remaining[leg]), r[leg],
                book.iv[leg], q[leg],
            )  # fmt: skip
        elif book.is_future[leg]:
            values = spot * math.exp((r[leg] - q[leg]) * remaining[leg])
        else:
            values = spot
        pnl += book.units[leg] * (values - base[leg])
    return MonteCarloBookVaR(
        var=historical_var(pnl, confidence, method="lower"),
        cvar=historical_cvar(pnl, confidence, method="rockafellar_uryasev"),
        expected_pnl=float(pnl.mean()),
        worst_pnl=float(pnl.min()),
        simulations=simulations,
    )
