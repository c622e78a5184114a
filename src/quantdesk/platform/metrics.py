"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from quantdesk.platform.logging import get_logger

_log = get_logger("quantdesk.platform.metrics")
# Gauges that need a query are read again at most this often, however often /metrics is
# scraped (several Prometheus servers, or a curl loop, must not load the database).
SCRAPE_HOOK_INTERVAL_S = 10.0

# Buckets from 1 ms to 10 s: the API's p99 target is well under a second.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http = HttpRequestStats(LATENCY_BUCKETS)
        self.registry.register(self.http)
        Gauge(
            "quantdesk_http_requests_in_flight",
            "HTTP requests being served now.",
            registry=self.registry,
        ).set_function(lambda: float(self.http.in_flight))
        self.db_pool = DatabasePoolStats()
        self.registry.register(self.db_pool)
        self.rate_limited = Counter(
            "quantdesk_rate_limit_hits",
            "Requests refused by a rate limit, by limit class.",
            ["limit"],
            registry=self.registry,
        )
        self.upstream_requests = Counter(
            "quantdesk_upstream_requests",
            "Requests to external providers by provider and outcome.",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.redis_fallbacks = Counter(
            "quantdesk_redis_fallbacks",
            "Operations served by the per-process fallback while Redis was unreachable, by use.",
            ["use"],
            registry=self.registry,
        )
        # Every recorded security event (security/audit.py), by type: failed logins,
        # lockouts, refresh-token reuse, permission denials... (the enum bounds the labels).
        self.security_events = Counter(
            "quantdesk_security_events",
            "Security events recorded, by type.",
            ["type"],
            registry=self.registry,
        )
        # Set by every fresh readiness answer (platform/health.py): probes call it every few
        # seconds, so these say what the last probe found.
        self.ready = Gauge(
            "quantdesk_ready",
            "1 when the last readiness check found every dependency reachable, else 0.",
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "quantdesk_dependency_up",
            "1 when the last readiness check reached the dependency, else 0.",
            ["dependency"],
            registry=self.registry,
        )

        self._scrape_hooks: list[Callable[[], Awaitable[None]]] = []
        self._hooks_ran_at = -SCRAPE_HOOK_INTERVAL_S

    def on_scrape(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` before a scrape renders, at most every ``SCRAPE_HOOK_INTERVAL_S``:
        for gauges that need a query (counts of users, accounts).  A failing hook leaves its
        gauges at their last values; the scrape still answers."""
        self._scrape_hooks.append(hook)

    async def refresh(self) -> None:
        now = time.monotonic()
        if now - self._hooks_ran_at < SCRAPE_HOOK_INTERVAL_S:
            return
        self._hooks_ran_at = now
        for hook in self._scrape_hooks:
            try:
                await hook()
            except Exception:  # a count must never break the scrape
                _log.warning("metrics_scrape_hook_failed", hook=repr(hook), exc_info=True)

    def track_db_pool(self, stats: Callable[[], PoolNumbers]) -> None:
        self.db_pool.source = stats

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True, slots=True)
class PoolNumbers:
    """What the database pool says about itself at scrape time."""

    in_use: int = 0
    waiters: int = 0
    capacity: int = 0  # pool size + overflow: the most connections it will open
    timeouts: int = 0  # checkouts that gave up waiting (each became a 503)


class DatabasePoolStats(Collector):
    """The connection pool's gauges and timeout counter, read from the pool when scraped.

    ``quantdesk_db_pool_waiters`` above zero means every connection is in use and requests
    queue for one: the pool (or the database's ``max_connections``) is too small for the
    load, or something holds connections too long.
    """

    def __init__(self) -> None:
        self.source: Callable[[], PoolNumbers] = PoolNumbers

    def collect(self) -> Iterator[Metric]:
        numbers = self.source()
        yield GaugeMetricFamily(
            "quantdesk_db_pool_connections_in_use",
            "Database connections checked out of the pool.",
            value=numbers.in_use,
        )
        yield GaugeMetricFamily(
            "quantdesk_db_pool_waiters",
            "Requests waiting for a database connection (the pool is exhausted).",
            value=numbers.waiters,
        )
        yield GaugeMetricFamily(
            "quantdesk_db_pool_capacity",
            "Connections the pool may open (pool size + overflow).",
            value=numbers.capacity,
        )
        yield CounterMetricFamily(
            "quantdesk_db_pool_timeouts",
            "Checkouts that gave up waiting for a connection (answered 503).",
            value=numbers.timeouts,
        )


class HttpRequestStats(Collector):
    """Request counts and latency histograms by (method, route template, status).

    Every request updates these, so they are plain numbers that the Prometheus families are
    built from at scrape time.  prometheus_client's labelled ``Counter`` and ``Histogram``
    take a lock per update (five per request with the in-flight gauge), which cost 5 µs a
    request, a sixth of a bare FastAPI request.  No lock is needed here: the HTTP
    middleware, the only writer, runs on the event loop thread, and so does ``/metrics``.
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.in_flight = 0
        # Per series: one count per bucket, the +Inf bucket, then the sum of durations.
        self._series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0.0] * (len(self.buckets) + 2)
        # Prometheus buckets are inclusive upper bounds: the first bound >= seconds.
        series[bisect_left(self.buckets, seconds)] += 1
        series[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily(
            "quantdesk_http_requests",
            "HTTP requests by method, route template and status.",
            labels=labels,
        )
        latency = HistogramMetricFamily(
            "quantdesk_http_request_duration_seconds",
            "HTTP request latency by method, route template and status.",
            labels=labels,
        )
        bounds = [*(_bound(b) for b in self.buckets), "+Inf"]
        for (method, route, status), series in list(self._series.items()):
            values = [method, route, str(status)]
            cumulative, running = [], 0.0
            for bound, count in zip(bounds, series[:-1], strict=True):
                running += count
                cumulative.append((bound, running))
            requests.add_metric(values, running)
            latency.add_metric(values, cumulative, sum_value=series[-1])
        yield requests
        yield latency


def _bound(value: float) -> str:
    # The exposition format's spelling of bucket bounds, as prometheus_client writes them.
    return repr(float(value))
