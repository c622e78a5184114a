"""The trading tests' desk (a trader with a paper account on the SIM market) for the
account-risk tests."""

from tests.trading.conftest import desk, sim_market

__all__ = ["desk", "sim_market"]
