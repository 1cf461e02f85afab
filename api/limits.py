"""Per-caller rate limiting: a token bucket per caller, pure (the clock is an argument).

A bucket holds at most ``burst`` tokens and gains ``per_s`` tokens a second; a request takes
one token and is refused when less than one is left. The bucket is stored as a single number,
the time at which it will be full again (``full_at_ns``; in the past: full). This is the token
bucket written as the generic cell rate algorithm (GCRA, ITU-T I.371), which decides exactly as
counting tokens does: at time ``t`` the bucket holds ``burst - (full_at_ns - t) / interval_ns``
tokens, at most ``burst``.

Times are integer nanoseconds (``time.monotonic_ns``): a bucket is a sum of intervals, and
float seconds would drift by some ulps per request (after a burst of 2,000 at a monotonic clock
of 10^6 s, enough to refuse the burst's last request). Integers are exact; the rate is rounded
once, to a whole number of nanoseconds per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

NS = 1_000_000_000


@dataclass(frozen=True)
class Rate:
    """``per_s`` requests a second on average, ``burst`` at once; ``per_s`` > 0, ``burst`` >= 1."""

    per_s: float
    burst: int
    interval_ns: int = field(init=False)  # one token's worth of time

    def __post_init__(self) -> None:
        interval = NS / self.per_s if self.per_s > 0 else math.inf
        if not (math.isfinite(interval) and math.isfinite(self.per_s) and self.burst >= 1):
            raise ValueError(
                f"a rate needs 0 < per_s < inf and burst >= 1, not {self.per_s}, {self.burst}"
            )
        object.__setattr__(self, "interval_ns", max(1, round(interval)))


def take(full_at_ns: int | None, now_ns: int, rate: Rate) -> tuple[int | None, int]:
    """Take one token from the bucket that is full again at ``full_at_ns`` (None: a bucket
    never used, full; times in nanoseconds of one monotonic clock).

    Returns ``(full_at_ns after, 0)`` when the request is admitted, and ``(full_at_ns unchanged,
    wait_ns)`` when it is refused: ``wait_ns`` > 0 is how long until one token is back.
    """
    start_ns = now_ns if full_at_ns is None else max(full_at_ns, now_ns)
    # Admitted while at least one token is left: the bucket is short of being full by at most
    # burst - 1 tokens, i.e. full again no later than burst - 1 intervals from now.
    wait_ns = start_ns - now_ns - (rate.burst - 1) * rate.interval_ns
    if wait_ns > 0:
        return full_at_ns, wait_ns
    return start_ns + rate.interval_ns, 0


def retry_after_s(wait_ns: int) -> int:
    """``wait_ns`` as a Retry-After value: whole seconds (RFC 9110 section 10.2.3), rounded up,
    at least 1."""
    return max(1, -(-wait_ns // NS))


class RateLimiter:
    """One bucket per caller (any string: a key id, a client address), for one process.

    A full bucket is the same as no bucket, so when ``max_callers`` buckets are kept the full
    ones are dropped: the memory is bounded whatever the number of callers.
    """

    def __init__(self, rate: Rate, max_callers: int = 100_000) -> None:
        self.rate = rate
        self.max_callers = max_callers
        self.full_at_ns: dict[str, int] = {}

    def take(self, caller: str, now_ns: int) -> int:
        """Take one token of ``caller``'s bucket at ``now_ns``: 0 when admitted, else how many
        nanoseconds until the caller may try again."""
        full_at_ns, wait_ns = take(self.full_at_ns.get(caller), now_ns, self.rate)
        if full_at_ns is not None and wait_ns == 0:
            if caller not in self.full_at_ns and len(self.full_at_ns) >= self.max_callers:
                self.forget_full(now_ns)
            self.full_at_ns[caller] = full_at_ns
        return wait_ns

    def forget_full(self, now_ns: int) -> None:
        """Drop the buckets that are full by ``now_ns``; if every bucket is in use (a flood from
        more callers than ``max_callers``), drop them all rather than grow without bound."""
        self.full_at_ns = {c: t for c, t in self.full_at_ns.items() if t > now_ns}
        if len(self.full_at_ns) >= self.max_callers:
            self.full_at_ns.clear()
