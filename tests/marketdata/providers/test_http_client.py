"""ProviderHttpClient against a real local HTTP server with injected faults."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
import structlog

from quantdesk.marketdata.providers.http_client import (
    MalformedResponseError,
    ProviderHttpClient,
    ProviderRateLimitedError,
)
from quantdesk.marketdata.providers.resilience import (
    CircuitOpen,
    CircuitState,
    ResiliencePolicy,
)
from quantdesk.platform.exceptions import NotFound, ServiceUnavailable, UpstreamError
from tests.marketdata.providers.conftest import FAST_POLICY
from tests.marketdata.providers.fake_servers import (
    FakeRequest,
    FakeServer,
    Hang,
    Reply,
    Truncated,
    VirtualTime,
    serve,
)

KEY = "acme-secret-7f3e9a"


def state_of(client: ProviderHttpClient) -> CircuitState:
    """The breaker's state, read afresh (keeps mypy from narrowing across a call)."""
    return client.breaker.state


def acme(request: FakeRequest) -> Reply:
    if request.path == "/data":
        return Reply.json({"price": 101.25, "n": 3, "q": request.param("q")})
    if request.path == "/big":
        return Reply.json([{"p": 0.1 * i} for i in range(40_000)])
    return Reply.json({"error": "Not found"}, status=404)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    yield from serve(acme)


def make_client(
    server: FakeServer, vtime: VirtualTime, policy: ResiliencePolicy = FAST_POLICY, **kw: object
) -> ProviderHttpClient:
    return ProviderHttpClient(
        "acme",
        server.base_url,
        policy,
        clock=vtime.clock,
        sleep=vtime.sleep,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(server: FakeServer, vtime: VirtualTime) -> AsyncIterator[ProviderHttpClient]:
    http = make_client(server, vtime, headers={"X-Key": KEY})
    yield http
    await http.aclose()


async def test_decodes_json_numbers_as_exact_decimals(
    client: ProviderHttpClient, server: FakeServer
) -> None:
    payload = await client.get_json("/data", {"q": "x"}, ttl=0)
    assert payload == {"price": Decimal("101.25"), "n": 3, "q": "x"}
    assert isinstance(payload["price"], Decimal)
    assert server.requests[0].headers["x-key"] == KEY
    assert server.hit_count("/data") == 1


async def test_retries_server_errors_with_jittered_backoff_then_succeeds(
    client: ProviderHttpClient, server: FakeServer, vtime: VirtualTime
) -> None:
    server.inject("/data", Reply.json({}, status=500), Reply.text("bad gateway", status=502))
    payload = await client.get_json("/data", ttl=0)
    assert payload["price"] == Decimal("101.25")
    assert server.hit_count("/data") == 3
    # Full jitter: attempt n sleeps uniformly in [0, backoff_initial * 2**(n-1)].
    assert len(vtime.sleeps) == 2
    assert 0 <= vtime.sleeps[0] <= 0.1
    assert 0 <= vtime.sleeps[1] <= 0.2
    assert client.breaker.consecutive_failures == 0


async def test_honours_retry_after_seconds_on_429(
    client: ProviderHttpClient, server: FakeServer, vtime: VirtualTime
) -> None:
    server.inject("/data", Reply.json({"error": "slow down"}, 429, {"Retry-After": "2"}))
    payload = await client.get_json("/data", ttl=0)
    assert payload["n"] == 3
    assert vtime.sleeps == [2.0]
    assert server.hit_count("/data") == 2


async def test_retry_after_beyond_deadline_fails_at_once(
    client: ProviderHttpClient, server: FakeServer, vtime: VirtualTime
) -> None:
    server.inject("/data", Reply.json({"error": "quota"}, 429, {"Retry-After": "60"}))
    with pytest.raises(ServiceUnavailable) as caught:
        await client.get_json("/data", ttl=0)
    assert caught.value.retry_after == 60
    assert caught.value.dependency == "provider:acme"
    assert "429" in caught.value.detail
    assert vtime.sleeps == []  # never sleeps past the 5 s deadline
    assert server.hit_count("/data") == 1


async def test_persistent_500_gives_503_then_circuit_opens_and_fails_without_calling(
    client: ProviderHttpClient, server: FakeServer, vtime: VirtualTime
) -> None:
    server.fail_always("/data", Reply.json({"error": "boom"}, status=500))
    for expected_hits in (3, 6):  # max_attempts=3 per call; threshold=2 calls
        with pytest.raises(ServiceUnavailable) as caught:
            await client.get_json("/data", ttl=0)
        assert not isinstance(caught.value, CircuitOpen)
        assert "after 3 attempts" in caught.value.detail
        assert server.hit_count("/data") == expected_hits
    assert client.breaker.state is CircuitState.OPEN

    with pytest.raises(CircuitOpen) as opened:
        await client.get_json("/data", ttl=0)
    assert opened.value.status == 503
    assert opened.value.retry_after == 30
    assert opened.value.dependency == "provider:acme"
    assert server.hit_count("/data") == 6  # the open circuit did not call the server


async def test_half_open_probe_closes_the_circuit_on_success(
    client: ProviderHttpClient, server: FakeServer, vtime: VirtualTime
) -> None:
    server.fail_always("/data", Reply.json({}, status=503))
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            await client.get_json("/data", ttl=0)
    server.heal("/data")
    vtime.advance(29.5)  # (virtual time runs on floats: stay clear of the exact boundary)
    with pytest.raises(CircuitOpen):
        await client.get_json("/data", ttl=0)
    vtime.advance(0.75)
    assert client.breaker.state is CircuitState.HALF_OPEN

    # The probe is in flight when the second caller arrives: only the probe goes out.
    results: list[object] = await asyncio.gather(
        client.get_json("/data", ttl=0),
        client.get_json("/data", {"q": "other"}, ttl=0),
        return_exceptions=True,
    )
    probe, other = results
    assert isinstance(probe, dict)
    assert isinstance(other, CircuitOpen)
    assert state_of(client) is CircuitState.CLOSED
    assert server.hit_count("/data") == 7  # 6 failing attempts + the probe


async def test_failed_half_open_probe_reopens_the_circuit(
    client: ProviderHttpClient, server: FakeServer, vtime: VirtualTime
) -> None:
    server.fail_always("/data", Reply.json({}, status=500))
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            await client.get_json("/data", ttl=0)
    vtime.advance(30.25)
    with pytest.raises(ServiceUnavailable):
        await client.get_json("/data", ttl=0)  # the probe, retried within its call
    assert server.hit_count("/data") == 9
    assert client.breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen):
        await client.get_json("/data", ttl=0)
    assert server.hit_count("/data") == 9


async def test_slow_server_times_out_and_is_retried(
    client: ProviderHttpClient, server: FakeServer
) -> None:
    server.fail_always("/data", Hang())
    with pytest.raises(ServiceUnavailable) as caught:
        await client.get_json("/data", ttl=0)
    assert "timed out" in caught.value.detail
    assert server.hit_count("/data") == 3


async def test_slow_first_answer_then_success(
    client: ProviderHttpClient, server: FakeServer
) -> None:
    server.inject("/data", Hang())
    payload = await client.get_json("/data", ttl=0)
    assert payload["price"] == Decimal("101.25")
    assert server.hit_count("/data") == 2


async def test_truncated_body_is_an_upstream_error_naming_the_provider(
    client: ProviderHttpClient, server: FakeServer
) -> None:
    server.fail_always("/data", Truncated(b'{"price": 101.2', declared=200))
    with pytest.raises(UpstreamError) as caught:
        await client.get_json("/data", ttl=0)
    assert caught.value.provider == "acme"
    assert caught.value.status == 502
    assert "incomplete" in caught.value.detail
    assert server.hit_count("/data") == 3  # a broken-off body is worth another try


async def test_truncated_once_then_whole_body_succeeds(
    client: ProviderHttpClient, server: FakeServer
) -> None:
    server.inject("/data", Truncated(b'{"pri', declared=50))
    assert (await client.get_json("/data", ttl=0))["n"] == 3
    assert server.hit_count("/data") == 2


@pytest.mark.parametrize(
    "body",
    [b'{"price": 101.2', b"<html>gateway</html>", b"", b'{"p": NaN}', b"\xff\xfe{}"],
)
async def test_malformed_json_is_an_upstream_error_not_retried(
    client: ProviderHttpClient, server: FakeServer, body: bytes
) -> None:
    server.inject("/data", Reply(200, body, {"Content-Type": "application/json"}))
    with pytest.raises(MalformedResponseError) as caught:
        await client.get_json("/data", ttl=0)
    assert caught.value.provider == "acme"
    assert caught.value.status == 502
    assert "not valid JSON" in caught.value.detail
    assert server.hit_count("/data") == 1
    assert client.breaker.consecutive_failures == 1


async def test_refused_credentials_are_not_retried_and_never_echo_the_key(
    client: ProviderHttpClient, server: FakeServer
) -> None:
    server.inject("/data", Reply.json({"error": f"Invalid API key {KEY}"}, status=401))
    with pytest.raises(UpstreamError) as caught:
        await client.get_json("/data", ttl=0)
    assert caught.value.extra["upstream_status"] == 401
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.extra)
    assert "Invalid API key ***" in caught.value.detail
    assert server.hit_count("/data") == 1
    assert client.breaker.consecutive_failures == 0  # it answered: not an outage


async def test_404_becomes_not_found_when_the_caller_says_what_is_missing(
    client: ProviderHttpClient, server: FakeServer
) -> None:
    with pytest.raises(NotFound) as caught:
        await client.get_json("/nope", ttl=0, not_found="acme has no such thing")
    assert caught.value.detail == "acme has no such thing"
    with pytest.raises(UpstreamError) as other:
        await client.get_json("/nope", ttl=0)
    assert other.value.extra["upstream_status"] == 404


async def test_payload_check_can_flag_throttling_for_a_retry(
    client: ProviderHttpClient, server: FakeServer, vtime: VirtualTime
) -> None:
    def check(payload: object) -> None:
        if isinstance(payload, dict) and "Note" in payload:
            raise ProviderRateLimitedError("throttled", retry_after=1.5)

    server.inject("/data", Reply.json({"Note": "too many calls"}))
    payload = await client.get_json("/data", ttl=0, check=check)
    assert payload["n"] == 3
    assert vtime.sleeps == [1.5]


async def test_caches_per_request_until_the_ttl_passes(
    client: ProviderHttpClient, server: FakeServer, vtime: VirtualTime
) -> None:
    first = await client.get_json("/data", {"q": "a"}, ttl=10)
    assert await client.get_json("/data", {"q": "a"}, ttl=10) == first
    assert server.hit_count("/data") == 1
    await client.get_json("/data", {"q": "b"}, ttl=10)
    assert server.hit_count("/data") == 2
    vtime.advance(9.75)
    await client.get_json("/data", {"q": "a"}, ttl=10)
    assert server.hit_count("/data") == 2
    vtime.advance(0.25)
    await client.get_json("/data", {"q": "a"}, ttl=10)
    assert server.hit_count("/data") == 3


async def test_failures_are_not_cached(client: ProviderHttpClient, server: FakeServer) -> None:
    server.inject("/data", Reply.json({}, status=400))
    with pytest.raises(UpstreamError):
        await client.get_json("/data", ttl=60)
    assert (await client.get_json("/data", ttl=60))["n"] == 3
    assert server.hit_count("/data") == 2


async def test_rate_limit_waits_for_a_slot(server: FakeServer, vtime: VirtualTime) -> None:
    http = make_client(server, vtime, replace(FAST_POLICY, rate_limit="2/second"))
    try:
        for _ in range(3):
            await http.get_json("/data", ttl=0)
    finally:
        await http.aclose()
    assert vtime.sleeps == [1.0]
    assert server.hit_count("/data") == 3


async def test_rate_limit_wait_past_the_deadline_fails_without_calling(
    server: FakeServer, vtime: VirtualTime
) -> None:
    policy = replace(FAST_POLICY, rate_limit="2/minute", deadline=5.0)
    http = make_client(server, vtime, policy)
    try:
        await http.get_json("/data", ttl=0)
        await http.get_json("/data", ttl=0)
        with pytest.raises(ServiceUnavailable) as caught:
            await http.get_json("/data", ttl=0)
    finally:
        await http.aclose()
    assert caught.value.retry_after == 60
    assert "2/minute" in caught.value.detail
    assert server.hit_count("/data") == 2
    assert vtime.sleeps == []
    assert http.breaker.consecutive_failures == 0  # our budget, not the provider's fault


async def test_unreachable_provider_is_unavailable(vtime: VirtualTime) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    http = ProviderHttpClient(
        "acme", f"http://127.0.0.1:{port}", FAST_POLICY, clock=vtime.clock, sleep=vtime.sleep
    )
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            await http.get_json("/data", ttl=0)
    finally:
        await http.aclose()
    assert "unreachable (ConnectError)" in caught.value.detail
    assert len(vtime.sleeps) == 2


async def test_query_string_keys_reach_the_server_but_no_log_line(
    server: FakeServer, vtime: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    http = make_client(server, vtime, secret_params={"apikey": KEY})
    server.inject("/data", Reply.json({}, status=500))
    try:
        with structlog.testing.capture_logs() as events, caplog.at_level(logging.DEBUG):
            await http.get_json("/data", {"q": "x"}, ttl=0)
    finally:
        await http.aclose()
    assert [r.param("apikey") for r in server.requests] == [KEY, KEY]
    assert [r.param("q") for r in server.requests] == ["x", "x"]
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log
    assert all(KEY not in r.getMessage() for r in caplog.records)
    assert [e["event"] for e in events] == ["provider_request_retry"]
    assert KEY not in repr(events)


async def test_large_bodies_are_parsed_exactly_too(server: FakeServer, vtime: VirtualTime) -> None:
    http = make_client(server, vtime, replace(FAST_POLICY, read_timeout=5.0))
    try:
        payload = await http.get_json("/big", ttl=0)
    finally:
        await http.aclose()
    assert len(payload) == 40_000
    assert payload[3] == {"p": Decimal("0.30000000000000004")}  # the digits sent, exactly


def test_pagination_links_must_stay_on_the_provider_host(client: ProviderHttpClient) -> None:
    base = str(client.base_url).rstrip("/")
    assert client.is_same_origin(f"{base}/v2/next?cursor=abc")
    assert not client.is_same_origin("https://evil.example/v2/next?cursor=abc")
    assert not client.is_same_origin(base.replace("http://", "https://") + "/x")
