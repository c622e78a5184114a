"""Paper trading's Prometheus metrics (the dashboard's trading row, deploy/grafana/, and the
matcher-lag alerts, deploy/prometheus/alerts.yml), in the app's registry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from quantdesk.platform.context import AppContext
from quantdesk.platform.metrics import LATENCY_BUCKETS

EXTENSION = "trading_metrics"


class TradingMetrics:
    def __init__(self, ctx: AppContext) -> None:
        registry = ctx.metrics.registry
        self.placed = Counter(
            "quantdesk_orders_placed", "Orders accepted (committed).", registry=registry
        )
        self.rejected = Counter(
            "quantdesk_orders_rejected",
            "Orders refused by a pre-trade check, by the problem's type.",
            ["reason"],
            registry=registry,
        )
        self.fills = Counter("quantdesk_fills", "Fills committed.", registry=registry)
        self.quote_to_fill = Histogram(
            "quantdesk_matcher_quote_to_fill_seconds",
            "From a quote's timestamp to its fill committed.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._queued = Gauge(
            "quantdesk_matcher_quotes_queued",
            "Quotes, trades and order notices waiting in the matcher's inbox.",
            registry=registry,
        )
        self._open = Gauge(
            "quantdesk_orders_open",
            "Working orders in the matcher's books (the leading process's view).",
            registry=registry,
        )

    def follow_matcher(self, queued: Callable[[], int], working: Callable[[], int]) -> None:
        """Read the matcher's inbox and books when scraped."""
        self._queued.set_function(lambda: float(queued()))
        self._open.set_function(lambda: float(working()))


def trading_metrics(ctx: AppContext) -> TradingMetrics:
    found = ctx.extensions.get(EXTENSION)
    if found is None:
        found = ctx.extensions[EXTENSION] = TradingMetrics(ctx)
    assert isinstance(found, TradingMetrics)  # noqa: S101 - only this module sets it
    return found
