"""The demo's timeline: what history to publish, when to run the job over it, where live starts.

Pure: the present, what the database already holds and the options in; a :class:`Plan` out.
Times are Unix seconds.

History is published as gateway batches of an hour (``--payload batch --batch-s 3600``), one
`pantau simulate --backfill` per day of it, so it ends on a whole hour: a batch is published at
the end of its hour, and a window ending elsewhere would leave the reports of the last part
hour unpublished. Live then goes on from exactly there, one message per report. The job
(`pantau process --at T`) runs once per day of history, at the end of each day: its
tourism part writes the hourly figures of the 24 hours before ``T``, so runs a day apart leave
no hour out (the tourism office's "typical hour of the week" is the median of those rows on the
weeks before), the waste part looks 3 days back, the air part 48 hours.

A rerun continues: history already stored is not published again (the backfill starts in the
hour of the newest stored reading), and a gap shorter than :data:`BACKFILL_MIN_GAP_S` is left to
the live simulator, which catches up with the present at :data:`CATCH_UP_SPEED` before it goes
on in real time.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR_S = 3600
DAY_S = 86_400
BATCH_S = HOUR_S  # gateway batch window of the history
BACKFILL_MIN_GAP_S = 2 * HOUR_S  # shorter gaps: the live simulator catches up
CATCH_UP_SPEED = 600.0  # simulated seconds per second while live is behind the present
DEFAULT_ACCELERATED_S = DAY_S  # the live part's span with --speed > 1 and no --duration


@dataclass(frozen=True)
class Plan:
    """What the demo does before it runs live, and how live starts."""

    backfill: tuple[tuple[int, int], ...]  # (start, end] of each `simulate --backfill` run
    jobs: tuple[int, ...]  # `pantau process --at` times, ascending
    live_start_s: int
    live_speed: float  # the simulator's --speed: catches up, then real time (it never passes now)
    resumed_from_s: int | None  # the newest stored reading, on a rerun

    @property
    def history_s(self) -> int:
        return sum(end - start for start, end in self.backfill)


def floor_hour(t_s: float) -> int:
    return int(t_s // HOUR_S) * HOUR_S


def accelerated_span_s(speed: float, duration_s: float | None) -> int:
    """How far in the past live starts with ``speed`` > 1: the span it plays in ``duration_s``
    (then it reaches the present as the demo ends), or a day without a duration."""
    if speed <= 1:
        return 0
    if duration_s is None:
        return DEFAULT_ACCELERATED_S
    return int((speed - 1) * duration_s)


def make_plan(
    *,
    now_s: float,
    history_days: float,
    speed: float,
    duration_s: float | None,
    newest_s: int | None,
    processed_s: int | None,
) -> Plan:
    """The timeline of one run of the demo.

    ``newest_s`` is the newest stored reading (None: an empty database), ``processed_s`` the
    time the job last ran as of (None: never; history is then processed from its start).
    History covers ``history_days`` before the live part; with ``speed`` > 1 the live part
    starts :func:`accelerated_span_s` before ``now_s``.
    """
    live_from = int(now_s) - accelerated_span_s(speed, duration_s)
    history_end = floor_hour(live_from)
    history_start = floor_hour(live_from - history_days * DAY_S)
    live_speed = speed if speed > 1 else CATCH_UP_SPEED
    if newest_s is not None:
        newest_s = min(newest_s, int(now_s))
        if newest_s >= history_end - BACKFILL_MIN_GAP_S:
            # A short gap: live continues from the newest stored reading. The job catches up
            # with what the last run left unprocessed (a day, when that is not known).
            end = newest_s - 60  # everything before it is stored
            since = newest_s - DAY_S if processed_s is None else max(processed_s, history_start)
            jobs = _job_times(since, end)
            return Plan((), jobs, newest_s, live_speed, newest_s)
        # Continue in the hour of the newest stored reading: a batch holds the whole hour, and
        # the readings already stored are not stored twice.
        history_start = max(history_start, floor_hour(newest_s))
    chunks = _chunks(history_start, history_end)
    if not chunks:
        return Plan((), (), max(live_from, newest_s or 0), live_speed, newest_s)
    since = history_start if processed_s is None else max(processed_s, history_start)
    return Plan(chunks, _job_times(since, history_end), history_end, live_speed, newest_s)


def _chunks(start: int, end: int) -> tuple[tuple[int, int], ...]:
    """Days ending at ``end`` (the first one shorter), from ``start``."""
    out = []
    t1 = end
    while t1 > start:
        t0 = max(t1 - DAY_S, start)
        out.append((t0, t1))
        t1 = t0
    return tuple(reversed(out))


def _job_times(since_s: int, end_s: int) -> tuple[int, ...]:
    """Days ending at ``end_s``, back to the first one that reaches ``since_s``: each run
    covers the day before it. None when less than an hour is left."""
    if end_s - since_s < HOUR_S:
        return ()
    out = []
    t = end_s
    while t > since_s:
        out.append(t)
        t -= DAY_S
    return tuple(reversed(out))
