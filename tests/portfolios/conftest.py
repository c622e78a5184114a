"""The trading desk's fixtures (a trader with a paper account on the SIM market), for the
paper-fills test."""

from tests.trading.conftest import desk, sim_market

__all__ = ["desk", "sim_market"]
