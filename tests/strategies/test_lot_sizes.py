"""Docs and demo data agree on NSE index lot sizes, and the docs give the effective date."""

from __future__ import annotations

from pathlib import Path

from quantdesk.marketdata.providers.demo.universe import UNDERLYINGS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def test_docs_state_the_demo_lot_sizes_with_their_effective_date() -> None:
    lots = {u.derivatives.root: u.derivatives.lot_size for u in UNDERLYINGS if u.derivatives}
    text = " ".join(DOCS.read_text().split())
    assert lots["NIFTY"] == 65
    assert lots["BANKNIFTY"] == 30
    assert f"NIFTY {lots['NIFTY']}, BANKNIFTY {lots['BANKNIFTY']}" in text
    assert "from the January 2026 expiries" in text
    assert "NSE/FAOP/70616" in text
    assert "NIFTY 75" not in text
