"""The token bucket per API key, on a clock the test moves by hand."""

from __future__ import annotations

import pytest

from gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_the_burst_then_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.25, burst=2, clock=clock)
    assert [limiter.acquire(b"k") for _ in range(2)] == [0, 0]
    assert limiter.acquire(b"k") == 4  # one token needs 1 / 0.25 s
    clock.now += 1.0  # a quarter of a token back: 0.75 of one still missing, 3 s
    assert limiter.acquire(b"k") == 3
    clock.now += 3.0
    assert limiter.acquire(b"k") == 0
    assert limiter.acquire(b"k") == 4


def test_the_wait_is_rounded_up_to_whole_seconds_and_at_least_one() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=3.0, burst=1, clock=clock)
    assert limiter.acquire(b"k") == 0
    assert limiter.acquire(b"k") == 1  # a third of a second, said as 1
    clock.now += 0.3
    assert limiter.acquire(b"k") == 1
    slow = RateLimiter(rate=0.4, burst=1, clock=clock)
    assert slow.acquire(b"k") == 0
    assert slow.acquire(b"k") == 3  # 2.5 s rounds up


def test_refill_stops_at_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10.0, burst=3, clock=clock)
    assert limiter.acquire(b"k") == 0
    clock.now += 3600.0  # an idle hour refills to 3 tokens, not 36,000
    assert [limiter.acquire(b"k") for _ in range(4)] == [0, 0, 0, 1]


def test_an_exact_token_is_enough() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=1, clock=clock)
    assert limiter.acquire(b"k") == 0
    clock.now += 0.5  # exactly one token back
    assert limiter.acquire(b"k") == 0
    assert limiter.acquire(b"k") == 1


def test_keys_have_their_own_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.acquire(b"a") == 0
    assert limiter.acquire(b"a") == 1
    assert limiter.acquire(b"b") == 0
    assert limiter.acquire(b"b") == 1


@pytest.mark.parametrize("burst", [0, -5])
def test_a_burst_below_one_is_one(burst: int) -> None:
    limiter = RateLimiter(rate=1.0, burst=burst, clock=Clock())
    assert limiter.burst == 1
    assert [limiter.acquire(b"k") for _ in range(2)] == [0, 1]


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_a_rate_of_zero_or_less_switches_the_limit_off(rate: float) -> None:
    limiter = RateLimiter(rate=rate, burst=1, clock=Clock())
    assert not limiter.enabled
    assert [limiter.acquire(b"k") for _ in range(50)] == [0] * 50


def test_the_default_clock_is_monotonic() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert limiter.enabled and limiter.burst == 2
    assert [limiter.acquire(b"k") for _ in range(2)] == [0, 0]


def test_charge_after_the_fact_puts_the_bucket_in_debt_down_to_minus_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=4, clock=clock)
    limiter.charge(b"k", 2.5)  # a new client starts full: 4 - 2.5 leaves 1.5
    assert limiter.acquire(b"k") == 0 and limiter.acquire(b"k") == 1  # 0.5 left: half a second short
    limiter.charge(b"k", 100.0)  # at most burst deep into debt: -4
    assert limiter.acquire(b"k") == 5  # -4 to 1 token takes 5 s
    limiter.charge(b"k", 0.0)
    limiter.charge(b"k", -3.0)  # nothing charged: no refund either
    limiter.charge(b"j", 0.5)  # a small charge counts
    assert limiter.acquire(b"j", 4.0) == 1
    off = RateLimiter(rate=0.0, burst=4, clock=clock)
    off.charge(b"k", 100.0)
    assert off.acquire(b"k") == 0


def test_the_least_recent_client_is_forgotten_beyond_max_clients() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.001, burst=1, clock=clock, max_clients=2)
    assert [limiter.acquire(k) for k in (b"a", b"b")] == [0, 0]
    assert limiter.acquire(b"a") > 0  # a is the most recent now
    assert limiter.acquire(b"c") == 0  # b, the least recent, is forgotten
    assert limiter.acquire(b"a") > 0, "a kept its empty bucket"
    assert limiter.acquire(b"b") == 0, "b comes back with a full bucket"
    one = RateLimiter(rate=0.001, burst=1, clock=clock, max_clients=0)  # at least one client is kept
    assert (one.max_clients, one.acquire(b"a"), one.acquire(b"a")) == (1, 0, 1000)
    assert RateLimiter(rate=1.0, burst=1).max_clients == 100_000


def test_a_charge_of_nothing_does_not_make_a_client_recent() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.001, burst=1, clock=clock, max_clients=2)
    assert [limiter.acquire(k) for k in (b"a", b"b")] == [0, 0]
    limiter.charge(b"a", 0.0)  # not a use: a stays the least recent
    assert limiter.acquire(b"c") == 0  # a is forgotten
    assert limiter.acquire(b"a") == 0, "a comes back with a full bucket"
