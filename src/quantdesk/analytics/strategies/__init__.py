"""Multi-leg option and futures strategies: payoff, breakevens, max P/L, POP, net Greeks.

``from quantdesk.analytics import strategies`` then ``strategies.analyze(legs, spot)``; see
``docs/strategies.md`` for definitions and conventions.  Modules:

* :mod:`.legs`: the leg dataclasses and mark-to-market at quoted prices;
* :mod:`.valuation`: model P/L over a price grid at any horizon, net Greeks;
* :mod:`.payoff`: exact breakevens, max profit/loss, probability of profit;
* :mod:`.templates`: builders for straddles, spreads, condors, calendars, collars…;
* :mod:`.analysis`: :func:`analyze`, the one-call summary used by the HTTP API.
"""

from quantdesk.analytics.strategies.analysis import StrategyAnalysis, analyze
from quantdesk.analytics.strategies.legs import (
    FutureLeg,
    Leg,
    MarkToMarket,
    OptionLeg,
    UnderlyingLeg,
    mark_to_market,
    year_fraction,
)
from quantdesk.analytics.strategies.payoff import (
    Extremes,
    breakevens,
    extremes,
    probability_of_profit,
)
from quantdesk.analytics.strategies.valuation import (
    NetGreeks,
    PnLCurve,
    first_expiry,
    net_greeks,
    pnl_at,
    pnl_curve,
)

__all__ = [
    "Extremes",
    "FutureLeg",
    "Leg",
    "MarkToMarket",
    "NetGreeks",
    "OptionLeg",
    "PnLCurve",
    "StrategyAnalysis",
    "UnderlyingLeg",
    "analyze",
    "breakevens",
    "extremes",
    "first_expiry",
    "mark_to_market",
    "net_greeks",
    "pnl_at",
    "pnl_curve",
    "probability_of_profit",
    "year_fraction",
]
