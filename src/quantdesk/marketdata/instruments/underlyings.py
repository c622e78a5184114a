"""From a derivative's ``underlying`` root to the instrument whose price it follows.

NSE lists index derivatives under short roots (``NIFTY``, ``BANKNIFTY``) while the index
itself is quoted as ``NSE:NIFTY 50`` / ``NSE:NIFTY BANK`` (Kite's index symbols); stock
derivatives use the stock's own symbol.  US options (OPRA) follow the listed stock or ETF.
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


def spot_candidates(root: str, derivatives_exchange: Exchange) -> list[str]:
    """Instrument keys that may be ``root``'s spot, most likely first."""
    root = root.upper()
    if derivatives_exchange is Exchange.NFO:
        return [NSE_INDEX_SPOTS[root]] if root in NSE_INDEX_SPOTS else [f"NSE:{root}"]
    if derivatives_exchange is Exchange.SIM:
        return [f"SIM:{root}"]  # SIM lists derivatives under the spot's own symbol
    if derivatives_exchange is Exchange.BSE:
        return [BSE_INDEX_SPOTS.get(root, f"BSE:{root}")]
    return [f"NYSE:{root}", f"NASDAQ:{root}"]


def currency_of(derivatives_exchange: Exchange) -> str:
    return "USD" if derivatives_exchange is Exchange.OPRA else "INR"
