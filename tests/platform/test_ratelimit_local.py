"""The per-process rate-limit counters (``platform.ratelimit.LocalWindows``): limits' moving
window rule, hand-worked on a controlled clock, against a brute-force model, and without
leaving the event loop."""

from __future__ import annotations

import asyncio
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from limits import parse_many
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from quantdesk.platform.metrics import Metrics
from quantdesk.platform.ratelimit import SWEEP_INTERVAL_S, LocalWindows, RateLimiter
from tests.support.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_moving_window_hand_worked() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    items = parse_many("3/minute;5/hour")
    decisions = []
    for at in (0.0, 10.0, 20.0, 30.0):
        clock.now = 1000.0 + at
        decisions.append(windows.hit("orders", "u1", items))
    assert [d.allowed for d in decisions] == [True, True, True, False]
    # Hits at 0, 10 and 20 s: the minute window is the tighter one; it frees up when the hit
    # at 0 leaves it, 60 s after it, so 30 s after the refusal at 30 s.
    assert [(d.remaining, d.limit) for d in decisions] == [(2, 3), (1, 3), (0, 3), (0, 3)]
    assert decisions[0].reset_after_s == 60
    assert decisions[-1].reset_after_s == 30
    assert decisions[-1].headers()["Retry-After"] == "30"
    # The refused hit counted in neither window: at 60.5 s the hit at 0 s has left the
    # minute, so one more is allowed; the minute then holds 10, 20 and 60.5 (none left, the
    # tighter window, free again when the hit at 10 s leaves it) and the hour 4 of 5.
    clock.now = 1060.5
    again = windows.hit("orders", "u1", items)
    assert again.allowed
    assert (again.remaining, again.limit, again.reset_after_s) == (0, 3, math.ceil(9.5))
    assert windows.exhausted("orders", "u1", items) is not None
    # At 70 s the hit at 10 s leaves the minute (20, 60.5, 70) and the hour is full too
    # (0, 10, 20, 60.5, 70): both have none left, and the first window is the one reported.
    clock.now = 1070.0
    last = windows.hit("orders", "u1", items)
    assert (last.remaining, last.limit, last.reset_after_s) == (0, 3, 20 + 60 - 70)
    clock.now = 1081.0  # the minute has room again, the hour does not (until 3600 s)
    refused = windows.hit("orders", "u1", items)
    assert (refused.allowed, refused.limit, refused.reset_after_s) == (False, 5, 3600 - 81)
    # Another key has its own budget; reset forgets a key.
    assert windows.hit("orders", "u2", items).remaining == 2
    windows.reset("orders", "u1")
    assert windows.hit("orders", "u1", items).remaining == 2


def test_exhausted_counts_nothing() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    items = parse_many("2/minute")
    assert windows.exhausted("unauthenticated_ip", "ip:1", items) is None
    windows.hit("unauthenticated_ip", "ip:1", items)
    assert windows.exhausted("unauthenticated_ip", "ip:1", items) is None
    windows.hit("unauthenticated_ip", "ip:1", items)
    refusal = windows.exhausted("unauthenticated_ip", "ip:1", items)
    assert refusal is not None
    assert (refusal.allowed, refusal.remaining, refusal.reset_after_s) == (False, 0, 60)
    clock.now += 60.0  # both hits leave the window (a hit exactly a window old is out)
    assert windows.exhausted("unauthenticated_ip", "ip:1", items) is None


def test_idle_keys_are_swept() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    second, minute = parse_many("20/second"), parse_many("10/second;200/minute")
    for n in range(500):
        windows.hit("api", f"user:{n}", second)
    windows.hit("orders", "user:0", minute)
    assert len(windows) == 501
    clock.now += SWEEP_INTERVAL_S
    windows.hit("api", "user:0", second)
    # Every api key's window emptied a second after its hit; the orders key still has its
    # minute window occupied.
    assert len(windows) == 2
    clock.now += 60.0
    windows.hit("api", "user:0", second)
    assert len(windows) == 1


_EVENTS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=3.0),  # seconds since the previous request
        st.sampled_from(["a", "b"]),  # which key
        st.booleans(),  # hit (True) or only ask whether exhausted
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(events=_EVENTS)
def test_agrees_with_a_brute_force_moving_window(
    events: list[tuple[float, str, bool]],
) -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    items = parse_many("3/2 seconds;5/10 seconds")
    counted: dict[str, list[float]] = {"a": [], "b": []}
    for gap, key, is_hit in events:
        clock.now += gap
        now = clock.now
        within = [[t for t in counted[key] if t > now - item.get_expiry()] for item in items]
        full = [i for i, item in enumerate(items) if len(within[i]) >= item.amount]
        if is_hit:
            decision = windows.hit("c", key, items)
            assert decision.allowed == (not full)
            if not full:
                counted[key].append(now)
                within = [[*w, now] for w in within]
                remaining = [item.amount - len(w) for item, w in zip(items, within, strict=True)]
                assert decision.remaining == min(remaining)
        else:
            refusal = windows.exhausted("c", key, items)
            assert (refusal is None) == (not full)
        if full:
            first = full[0]
            expected_reset = math.ceil(within[first][0] + items[first].get_expiry() - now)
            refused = windows.exhausted("c", key, items)
            assert refused is not None
            assert refused.remaining == 0
            assert refused.reset_after_s == max(0, expected_reset)


async def test_in_process_limits_never_leave_the_event_loop() -> None:
    # limits' async MemoryStorage swept every key through asyncio.to_thread after each hit:
    # a worker thread busy all the time under load, competing with the requests for the GIL.
    loop = asyncio.get_running_loop()
    metrics = Metrics()
    limiter = RateLimiter({"api": "20/second", "unauthenticated_ip": "30/minute"}, metrics=metrics)
    for n in range(2000):
        await limiter.exhausted("unauthenticated_ip", "ip:127.0.0.1")
        await limiter.hit("api", f"user:{n % 400}")
    await asyncio.sleep(0.05)  # give any background sweep its turn
    assert loop._default_executor is None  # type: ignore[attr-defined]
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []
    # 2000 hits over 400 keys at 20/s each: every key's 5 hits were allowed.
    assert (await limiter.hit("api", "user:0")).remaining == 20 - 6


def test_several_classes_decide_all_or_nothing() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    api, orders = ("api", "u1", parse_many("1/minute")), ("orders", "u1", parse_many("2/minute"))
    placed = windows.hit_many([api, orders])
    assert [(d.limit_class, d.allowed, d.remaining) for d in placed] == [
        ("api", True, 0),
        ("orders", True, 1),
    ]
    # Refused by api: the refusal alone comes back, and orders did not count it either.
    clock.now += 10.0
    refused = windows.hit_many([api, orders])
    assert [(d.limit_class, d.allowed, d.reset_after_s) for d in refused] == [("api", False, 50)]
    assert windows.hit(*orders).remaining == 0  # the second orders hit, not the third
    # A minute on, api's hit and the first orders hit have left; orders is full again (hits
    # at 10 s and now).  Refused by orders: api, with room for one, counted nothing.
    clock.now += 50.0
    assert windows.hit(*orders).remaining == 0
    assert [(d.limit_class, d.allowed) for d in windows.hit_many([api, orders])] == [
        ("orders", False)
    ]
    assert windows.hit(*api).allowed


def test_a_tested_class_refuses_but_is_never_counted() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    failures = ("unauthenticated_ip", "ip:1", parse_many("1/minute"))
    api = ("api", "u1", parse_many("3/minute"))
    assert [d.remaining for d in windows.hit_many([api], tested=[failures])] == [2]
    assert windows.exhausted(*failures) is None  # tested twice, counted never
    windows.hit(*failures)
    refused = windows.hit_many([api], tested=[failures])
    assert [(d.limit_class, d.allowed) for d in refused] == [("unauthenticated_ip", False)]
    assert windows.hit(*api).remaining == 1  # the refused request did not count in api


_MANY_EVENTS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=3.0),  # seconds since the previous request
        st.lists(st.sampled_from(["api", "orders"]), unique=True),  # counted classes
        st.booleans(),  # also test the address's failure budget
        st.booleans(),  # count a failure of the address first
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(events=_MANY_EVENTS)
def test_several_classes_agree_with_a_brute_force_model(
    events: list[tuple[float, list[str], bool, bool]],
) -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    spec = {
        "api": parse_many("4/2 seconds"),
        "orders": parse_many("2/second;3/5 seconds"),
        "unauthenticated_ip": parse_many("2/3 seconds"),
    }
    counted: dict[str, list[float]] = {name: [] for name in spec}

    def full(name: str, now: float) -> bool:
        return any(
            len([t for t in counted[name] if t > now - item.get_expiry()]) >= item.amount
            for item in spec[name]
        )

    for gap, classes, test_address, fail_first in events:
        clock.now += gap
        now = clock.now
        if fail_first:
            failure = windows.hit("unauthenticated_ip", "ip", spec["unauthenticated_ip"])
            assert failure.allowed == (not full("unauthenticated_ip", now))
            if failure.allowed:
                counted["unauthenticated_ip"].append(now)
        tested = ["unauthenticated_ip"] if test_address else []
        decisions = windows.hit_many(
            [(name, "u", spec[name]) for name in classes],
            tested=[(name, "ip", spec[name]) for name in tested],
        )
        refusing = [name for name in (*tested, *classes) if full(name, now)]
        if refusing:
            assert [(d.limit_class, d.allowed) for d in decisions] == [(refusing[0], False)]
            continue
        for name in classes:
            counted[name].append(now)
        assert [d.limit_class for d in decisions] == classes
        for decision in decisions:
            left = [
                item.amount
                - len([t for t in counted[decision.limit_class] if t > now - item.get_expiry()])
                for item in spec[decision.limit_class]
            ]
            assert (decision.allowed, decision.remaining) == (True, min(left))


async def test_several_classes_fall_back_to_this_process_while_redis_is_down() -> None:
    dead = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
    )
    metrics = Metrics()
    limiter = RateLimiter(
        {"api": "2/minute", "orders": "1/minute", "unauthenticated_ip": "1/minute"},
        redis=dead,
        metrics=metrics,
    )
    try:
        placed = [
            await limiter.hit_many(
                [("api", "u"), ("orders", "u")], tested=[("unauthenticated_ip", "ip")]
            )
            for _ in range(2)
        ]
        assert [[(d.limit_class, d.allowed) for d in got] for got in placed] == [
            [("api", True), ("orders", True)],
            [("orders", False)],
        ]
        assert (await limiter.hit("api", "u")).remaining == 0  # the refusal counted in none
        await limiter.hit("unauthenticated_ip", "ip")
        # While Redis is down this process's counters are the truth, known without a trip.
        known = limiter.known_refusal("unauthenticated_ip", "ip")
        assert known is not None
        assert (known.allowed, known.limit, known.reset_after_s) == (False, 1, 60)
        fallbacks = metrics.registry.get_sample_value(
            "quantdesk_redis_fallbacks_total", {"use": "rate_limit"}
        )
        assert fallbacks == 4
        refused = metrics.registry.get_sample_value(
            "quantdesk_rate_limit_hits_total", {"limit": "orders"}
        )
        assert refused == 1
    finally:
        await dead.aclose()
