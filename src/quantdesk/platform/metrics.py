"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Buckets from 1 ms to 10 s: the API's p99 target is well under a second.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "quantdesk_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "quantdesk_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "quantdesk_http_requests_in_flight",
            "HTTP requests being served now.",
            registry=self.registry,
        )
        self.db_pool_in_use = Gauge(
            "quantdesk_db_pool_connections_in_use",
            "Database connections checked out of the pool.",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "quantdesk_rate_limit_hits",
            "Requests refused by a rate limit, by limit class.",
            ["limit"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.upstream_requests = Counter(
            "quantdesk_upstream_requests",
            "Requests to external providers by provider and outcome.",
            ["provider", "outcome"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # Label lookups hash and validate every time; the children are cached per route.
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def track_db_pool(self, checked_out: Callable[[], int]) -> None:
        self.db_pool_in_use.set_function(lambda: float(checked_out()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
