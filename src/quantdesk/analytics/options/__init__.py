"""European option pricing, Greeks and implied volatility (Black-Scholes-Merton, Black-76).

``from quantdesk.analytics.options import greeks, implied_vol`` is the public entry point;
see ``docs/analytics.md`` for the conventions.
"""

from quantdesk.analytics.options.greeks import Greeks, greeks, price
from quantdesk.analytics.options.implied_vol import (
    IV_REASON_NAMES,
    ImpliedVol,
    IVReason,
    implied_vol,
)

__all__ = ["IV_REASON_NAMES", "Greeks", "IVReason", "ImpliedVol", "greeks", "implied_vol", "price"]
