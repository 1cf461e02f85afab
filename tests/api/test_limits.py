"""The rate limiter's token bucket against a plain token-counting model.

``api.limits`` stores a bucket as the time it is full again (GCRA) in integer nanoseconds; the
model here counts tokens in exact fractions, refilling and spending them one request at a
time. For the same rate (a whole number of nanoseconds per token) both must agree exactly: on
every decision and on every wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.limits import NS, Rate, RateLimiter, retry_after_s, take


@dataclass
class Model:
    """A token bucket as written in a textbook: starts full, one token per ``interval_ns``, at
    most ``burst``; a request takes one token when at least one is there."""

    interval_ns: int
    burst: int
    tokens: Fraction = field(init=False)
    at_ns: int | None = None

    def __post_init__(self) -> None:
        self.tokens = Fraction(self.burst)

    def request(self, now_ns: int) -> Fraction:
        """0 when admitted, else the wait until one token is back (ns)."""
        if self.at_ns is not None:
            refill = Fraction(now_ns - self.at_ns, self.interval_ns)
            self.tokens = min(Fraction(self.burst), self.tokens + refill)
        self.at_ns = now_ns
        if self.tokens >= 1:
            self.tokens -= 1
            return Fraction(0)
        return (1 - self.tokens) * self.interval_ns


def rate_of(interval_ns: int, burst: int) -> Rate:
    rate = Rate(NS / interval_ns, burst)
    assert rate.interval_ns == interval_ns
    return rate


# From 1,000 requests a second to one in 100 s; bursts of 1 to 40.
rates = st.tuples(st.integers(1_000_000, 100 * NS), st.integers(1, 40))
# (caller, ns since the previous request): bursts (0), a fraction of a token, long pauses.
steps = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.one_of(st.just(0), st.integers(0, NS // 10), st.integers(0, 200 * NS)),
    ),
    min_size=1,
    max_size=150,
)
starts = st.integers(0, 10**17)  # any monotonic clock, up to three years of uptime


@given(rates, steps, starts)
def test_take_matches_the_token_counting_model(
    rate: tuple[int, int], plan: list[tuple[int, int]], start_ns: int
) -> None:
    r = rate_of(*rate)
    model = Model(*rate)
    full_at_ns: int | None = None
    now_ns = start_ns
    for _, dt_ns in plan:
        now_ns += dt_ns
        expected = model.request(now_ns)
        full_at_ns, wait_ns = take(full_at_ns, now_ns, r)
        assert wait_ns == expected


@given(rates, steps, starts)
def test_limiter_keeps_one_bucket_per_caller(
    rate: tuple[int, int], plan: list[tuple[int, int]], start_ns: int
) -> None:
    models = {c: Model(*rate) for c in range(3)}
    limiter = RateLimiter(rate_of(*rate))
    now_ns = start_ns
    for caller, dt_ns in plan:
        now_ns += dt_ns
        assert limiter.take(f"key {caller}", now_ns) == models[caller].request(now_ns)


@given(rates, starts)
def test_a_burst_then_a_refusal_that_ends_after_its_wait(
    rate: tuple[int, int], now_ns: int
) -> None:
    r = rate_of(*rate)
    full_at_ns: int | None = None
    for _ in range(r.burst):
        full_at_ns, wait_ns = take(full_at_ns, now_ns, r)
        assert wait_ns == 0
    unchanged, wait_ns = take(full_at_ns, now_ns, r)
    assert unchanged == full_at_ns  # a refusal takes nothing
    assert wait_ns == r.interval_ns  # one token's worth of time
    assert take(full_at_ns, now_ns + wait_ns - 1, r)[1] == 1
    assert take(full_at_ns, now_ns + wait_ns, r)[1] == 0


def test_a_large_burst_is_exact_at_any_clock() -> None:
    """2,000 at 50 a second: float seconds would refuse the 2,000th at a clock of 10^6 s."""
    rate = Rate(50.0, 2000)
    for start_ns in (0, 10**6 * NS, 10**8 * NS):
        full_at_ns: int | None = None
        waits = []
        for _ in range(2001):
            full_at_ns, wait_ns = take(full_at_ns, start_ns, rate)
            waits.append(wait_ns)
        assert waits == [0] * 2000 + [NS // 50]


def test_any_rate_starts_full_and_refills() -> None:
    """Three a second (333,333,333 ns a token), bursts of five."""
    r = Rate(3.0, 5)
    assert r.interval_ns == 333_333_333
    t = 100 * NS
    full_at_ns: int | None = None
    waits = []
    for _ in range(6):
        full_at_ns, wait_ns = take(full_at_ns, t, r)
        waits.append(wait_ns)
    assert waits == [0] * 5 + [333_333_333]
    assert take(full_at_ns, t + 333_333_333, r)[1] == 0
    # After burst intervals of silence the bucket is full again: five more at once.
    later = t + 5 * 333_333_333
    for _ in range(5):
        full_at_ns, wait_ns = take(full_at_ns, later, r)
        assert wait_ns == 0
    assert take(full_at_ns, later, r)[1] > 0


def test_full_buckets_are_forgotten_and_memory_is_bounded() -> None:
    limiter = RateLimiter(Rate(1.0, 2), max_callers=3)
    for caller in ("a", "b", "b", "c"):
        assert limiter.take(caller, 0) == 0
    assert set(limiter.full_at_ns) == {"a", "b", "c"}
    # At 1 s "a" and "c" are full again, "b" is not: a fourth caller makes room by forgetting
    # the full ones, which changes no decision (a full bucket and no bucket are the same).
    assert limiter.take("d", NS) == 0
    assert set(limiter.full_at_ns) == {"b", "d"}
    assert [limiter.take("b", NS) for _ in range(2)] == [0, NS]
    assert [limiter.take("a", NS) for _ in range(3)] == [0, 0, NS]
    # Every bucket in use and one caller more than max_callers: all dropped, never more kept.
    assert set(limiter.full_at_ns) == {"a", "b", "d"}
    assert limiter.take("f", NS) == 0
    assert set(limiter.full_at_ns) == {"f"}
    assert limiter.take("a", NS) == 0  # forgotten: a full bucket again


@pytest.mark.parametrize(
    ("wait_ns", "header"),
    [(1, 1), (NS // 50, 1), (NS, 1), (NS + 1, 2), (59 * NS + NS // 2, 60)],
)
def test_retry_after_is_whole_seconds_rounded_up(wait_ns: int, header: int) -> None:
    assert retry_after_s(wait_ns) == header


@pytest.mark.parametrize(
    ("per_s", "burst"),
    [(0.0, 10), (-1.0, 10), (float("inf"), 10), (float("nan"), 10), (1e-320, 10), (1.0, 0)],
)
def test_a_rate_that_is_no_rate_is_refused(per_s: float, burst: int) -> None:
    with pytest.raises(ValueError, match="per_s < inf"):
        Rate(per_s, burst)
