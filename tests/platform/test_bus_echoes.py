"""A Redis bus subscription's bookkeeping of the echoes it expects (``platform.bus``): each
message handed over locally is expected back from Redis once and dropped then; one that
does not come back within ``ECHO_WAIT_S`` is forgotten, so that the same bytes from another
process are delivered again.  No Redis: the times are given (``test_bus_redis.py`` has the
bus on a real server)."""

from __future__ import annotations

from quantdesk.platform.bus import ECHO_WAIT_S, Message, _RedisSubscription

QUOTE: Message = ("quotes.NSE:INFY", b'{"last":"1520.5"}')
OTHER: Message = ("quotes.NSE:INFY", b'{"last":"1520.6"}')


def _queued(subscription: _RedisSubscription) -> list[Message]:
    queued = []
    while not subscription.queue.empty():
        queued.append(subscription.queue.get_nowait())
    return queued


def test_an_echo_is_dropped_once_and_the_same_bytes_after_it_delivered() -> None:
    subscription = _RedisSubscription(100)
    subscription.expect_echo(QUOTE, 0.0)
    subscription.from_redis(OTHER, 0.1)
    subscription.from_redis(QUOTE, 0.2)  # the echo
    subscription.from_redis(QUOTE, 0.3)  # another process's copy
    assert _queued(subscription) == [OTHER, QUOTE]


def test_an_echo_that_never_comes_is_forgotten_after_the_wait() -> None:
    subscription = _RedisSubscription(100)
    subscription.expect_echo(QUOTE, 0.0)
    subscription.from_redis(QUOTE, ECHO_WAIT_S + 0.1)
    assert _queued(subscription) == [QUOTE]


def test_an_answered_expectation_does_not_take_a_later_one_with_it() -> None:
    # The same bytes published twice: the first echo answers one expectation, and when the
    # older one's time is up the younger is still awaited.
    subscription = _RedisSubscription(100)
    subscription.expect_echo(QUOTE, 0.0)
    subscription.expect_echo(QUOTE, 5.0)
    subscription.from_redis(QUOTE, 0.1)
    subscription.from_redis(QUOTE, ECHO_WAIT_S + 1.0)  # past the first's wait, the second's echo
    subscription.from_redis(QUOTE, ECHO_WAIT_S + 2.0)  # no expectation left: delivered
    assert _queued(subscription) == [QUOTE]


def test_expectations_are_bounded_by_the_queue_size() -> None:
    subscription = _RedisSubscription(2)
    for n in range(3):
        subscription.expect_echo(("quotes.X", b"%d" % n), 0.0)
    for n in range(3):
        subscription.from_redis(("quotes.X", b"%d" % n), 1.0)
    assert _queued(subscription) == [("quotes.X", b"0")]  # the oldest expectation went
