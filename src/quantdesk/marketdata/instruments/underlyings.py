"""From a derivative's ``underlying`` root to the instrument whose price it follows.

NSE lists index derivatives under short roots (``NIFTY``, ``BANKNIFTY``) while the index
itself is quoted as ``NSE:NIFTY 50`` / ``NSE:NIFTY BANK`` (Kite's index symbols); stock
derivatives use the stock's own symbol.  BSE's F&O segment (BFO) follows BSE's indices
(``BFO:SENSEX…`` -> ``BSE:SENSEX``) and stocks.  US options (OPRA) follow the listed stock
or ETF.

MCX futures and options and the currency derivatives (CDS, BCD) have no cash instrument in
Kite: MCX options are options on the future of their month, and the currency options
settle on the RBI reference rate, which Kite does not quote.  Their price source is the
near future (``NO_LISTED_SPOT``; ``derivatives.market_inputs.spot_quote`` picks it from the
master), so ``spot_candidates`` has no key to offer for them.
"""

from __future__ import annotations

from quantdesk.marketdata.domain import Exchange

NSE_INDEX_SPOTS: dict[str, str] = {
    "NIFTY": "NSE:NIFTY 50",
    "BANKNIFTY": "NSE:NIFTY BANK",
    "FINNIFTY": "NSE:NIFTY FIN SERVICE",
    "MIDCPNIFTY": "NSE:NIFTY MID SELECT",
    "NIFTYNXT50": "NSE:NIFTY NEXT 50",
}
BSE_INDEX_SPOTS: dict[str, str] = {"SENSEX": "BSE:SENSEX", "BANKEX": "BSE:BANKEX"}
# Derivatives exchanges whose underlying is a future, not a listed cash instrument.
NO_LISTED_SPOT: frozenset[Exchange] = frozenset({Exchange.MCX, Exchange.CDS, Exchange.BCD})


def spot_candidates(root: str, derivatives_exchange: Exchange) -> list[str]:
    """Instrument keys that may be ``root``'s spot, most likely first."""
    root = root.upper()
    if derivatives_exchange is Exchange.NFO:
        return [NSE_INDEX_SPOTS[root]] if root in NSE_INDEX_SPOTS else [f"NSE:{root}"]
    if derivatives_exchange is Exchange.SIM:
        return [f"SIM:{root}"]  # SIM lists derivatives under the spot's own symbol
    if derivatives_exchange in (Exchange.BSE, Exchange.BFO):
        return [BSE_INDEX_SPOTS.get(root, f"BSE:{root}")]
    if derivatives_exchange in NO_LISTED_SPOT:
        return []
    return [f"NYSE:{root}", f"NASDAQ:{root}"]


def currency_of(derivatives_exchange: Exchange) -> str:
    return "USD" if derivatives_exchange is Exchange.OPRA else "INR"
