"""Sensor health: online or offline now, and why, vectorized.

DESIGN: a sensor is offline when it sent no message for ``k`` times its expected interval, or
when its last will says so; it is back online on its next message.

Silence is measured on one of two clocks. Live, by the arrival clock: how long ago Pantau last
heard from the sensor (a reading arrived), whatever the readings' own times, so a backlog
catching up (a gateway uploading hours of readings, a simulator replaying a day at 60x) is not
silent because its readings are old. In simulated time (a job run "as of" a past time over
stored history) arrival times say nothing about that time, so silence is measured by the
readings' times: how long before ``now`` the newest reading was taken.

Inputs are aligned columns, one element per sensor. Times are Unix milliseconds (int64) and
-1 means "missing" (never happened); real times are >= 0. Expected intervals are seconds.
"""

from __future__ import annotations

import numpy as np

from processing.arrays import BoolArray, I8Array, I64Array

MS_PER_S = 1000
MISSING_MS = -1

# Reason codes of sensor_online, indexed by code; the names are stable identifiers (the
# ``sensor_status.reason`` column checks them).
HEALTH_REASONS: tuple[str, ...] = ("reporting", "silent", "last_will", "never_seen")
REASON_REPORTING = 0
REASON_SILENT = 1
REASON_LAST_WILL = 2
REASON_NEVER_SEEN = 3


def _check_aligned(*arrays: np.ndarray) -> None:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"arrays must be aligned, got shapes {sorted(shapes)}")


def sensor_online(
    now_ms: int,
    last_seen_ms: I64Array,
    expected_interval_s: I64Array,
    will_offline_ms: I64Array,
    will_online_ms: I64Array,
    *,
    k: float = 3.0,
    heard_ms: I64Array | None = None,
    heard_now_ms: int | None = None,
) -> tuple[BoolArray, I8Array]:
    """Whether each sensor is online at ``now_ms``, and a code indexing :data:`HEALTH_REASONS`.

    - ``last_seen_ms``: time of the sensor's newest reading (-1: none ever);
    - ``expected_interval_s``: seconds between its readings when healthy (> 0);
    - ``will_offline_ms``: time its status topic last said "offline" (the MQTT last will the
      broker publishes when the connection is lost), -1 when never;
    - ``will_online_ms``: time its status topic last said "online", -1 when never;
    - ``heard_ms`` and ``heard_now_ms`` (both or neither): when each sensor was last heard, -1
      when unknown, and now, both on the arrival clock (which need not be ``now_ms``'s).

    The limit of silence is ``k * expected_interval_s * 1000`` ms; exactly ``k`` intervals is
    still not silent. With the arrival clock (live), a sensor is silent when ``heard_now_ms -
    heard_ms`` exceeds the limit, and where ``heard_ms`` is -1 (not heard since arrival times
    were kept) when ``now_ms - last_seen_ms`` does. Without it (simulated time), when ``now_ms
    - last_seen_ms`` does.

    The reason is the first that applies, in this order:

    3 ``never_seen``: ``last_seen_ms == -1`` (offline: no reading ever, whatever the status
    topic says: a sensor is only online through its data); 2 ``last_will``: the "offline" will
    is at or after the last reading and at or after any "online" status (offline; a reading
    strictly after the will, ``last_seen_ms > will_offline_ms``, brings it back; so does an
    "online" status strictly newer than the will, though silence still applies); 1 ``silent``
    (offline, see above); 0 ``reporting``: online. Ties go to the will: the broker publishes it
    after the connection's last message, so an equal time means "after".

    Returns ``(online, reason)``; ``online`` is ``reason == REASON_REPORTING``. Raises
    ValueError when the arrays are not aligned, ``k`` is not positive, or only one of
    ``heard_ms`` and ``heard_now_ms`` is given.
    """
    _check_aligned(last_seen_ms, expected_interval_s, will_offline_ms, will_online_ms)
    if not k > 0:  # also rejects NaN
        raise ValueError(f"k must be positive, got {k}")
    if (heard_ms is None) != (heard_now_ms is None):
        raise ValueError("heard_ms and heard_now_ms go together")
    never_seen = last_seen_ms == MISSING_MS
    will = (
        (will_offline_ms != MISSING_MS)
        & (will_offline_ms >= last_seen_ms)
        & (will_offline_ms >= will_online_ms)  # a missing "online" (-1) never cancels
    )
    # Float limit: k is fractional. Differences of real times (< 2**53 ms) are exact in float64.
    limit_ms = k * expected_interval_s * float(MS_PER_S)
    silent = (now_ms - last_seen_ms) > limit_ms
    if heard_ms is not None and heard_now_ms is not None:
        _check_aligned(last_seen_ms, heard_ms)
        heard = heard_ms != MISSING_MS
        silent = np.where(heard, (heard_now_ms - heard_ms) > limit_ms, silent)

    # Assign in reverse priority so the first reason that applies is the one left standing.
    reason = np.where(silent, REASON_SILENT, REASON_REPORTING).astype(np.int8)
    reason[will] = REASON_LAST_WILL
    reason[never_seen] = REASON_NEVER_SEEN
    return reason == REASON_REPORTING, reason


def transitions(
    prev_online: BoolArray, prev_known: BoolArray, online: BoolArray
) -> tuple[BoolArray, BoolArray]:
    """Masks of the sensors that went offline and of those that came back online.

    ``prev_online`` is the previous evaluation's state, meaningful only where ``prev_known``
    (False: the sensor's first evaluation, which is a state, not a transition). Returns
    ``(went_offline, came_online)``. Raises ValueError when the arrays are not aligned.
    """
    _check_aligned(prev_online, prev_known, online)
    went_offline = prev_known & prev_online & ~online
    came_online = prev_known & ~prev_online & online
    return went_offline, came_online
