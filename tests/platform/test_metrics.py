"""The request histogram quantdesk keeps itself renders exactly as prometheus_client's would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from quantdesk.platform.metrics import LATENCY_BUCKETS, HttpRequestStats

LABELS = ["method", "route", "status"]
observations = st.lists(
    st.tuples(
        st.sampled_from(["GET", "POST"]),
        st.sampled_from(["/health/live", "/api/v1/things/{id}"]),
        st.sampled_from([200, 404, 500]),
        st.one_of(
            st.sampled_from(LATENCY_BUCKETS),  # exactly on a bound: the bucket is inclusive
            st.floats(min_value=0, max_value=30, allow_nan=False),
        ),
    ),
    max_size=60,
)


def _samples(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(
        line
        for line in text.splitlines()
        if line.startswith("quantdesk_http_request") and "_created" not in line
    )


@given(observations)
def test_same_exposition_as_prometheus_client(
    seen: list[tuple[str, str, int, float]],
) -> None:
    ours = CollectorRegistry()
    stats = HttpRequestStats(LATENCY_BUCKETS)
    ours.register(stats)
    reference = CollectorRegistry()
    counter = Counter(
        "quantdesk_http_requests",
        "HTTP requests by method, route template and status.",
        LABELS,
        registry=reference,
    )
    histogram = Histogram(
        "quantdesk_http_request_duration_seconds",
        "HTTP request latency by method, route template and status.",
        LABELS,
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    for method, route, status, seconds in seen:
        stats.observe(method, route, status, seconds)
        counter.labels(method, route, str(status)).inc()
        histogram.labels(method, route, str(status)).observe(seconds)
    assert _samples(ours) == _samples(reference)


def test_hand_counted_buckets() -> None:
    registry = CollectorRegistry()
    stats = HttpRequestStats((0.1, 1.0))
    registry.register(stats)
    for seconds in (0.05, 0.1, 0.5, 2.0):
        stats.observe("GET", "/x", 200, seconds)
    text = generate_latest(registry).decode()
    series = 'method="GET",route="/x",status="200"'
    histogram = "quantdesk_http_request_duration_seconds"
    expected = [
        f"quantdesk_http_requests_total{{{series}}} 4.0",
        f'{histogram}_bucket{{le="0.1",{series}}} 2.0',
        f'{histogram}_bucket{{le="1.0",{series}}} 3.0',
        f'{histogram}_bucket{{le="+Inf",{series}}} 4.0',
        f"{histogram}_count{{{series}}} 4.0",
        f"{histogram}_sum{{{series}}} 2.65",
    ]
    for line in expected:
        assert line in text, text
