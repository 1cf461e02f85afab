"""processing.alarms against plain-Python references, and scenarios with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.alarms import ANOMALY_RULE_KINDS, Evaluation, Rule, evaluate, evaluate_rules, rules
from processing.anomalies import KIND_NAMES

NAN = math.nan
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z in Unix ms: real magnitudes test precision
MINUTE = 60_000


def reference_row(
    now,
    value,
    raise_at,
    clear_at,
    higher_is_worse,
    bad_since,
    good_since,
    active,
    min_bad,
    min_good,
):
    """One condition, one step: (bad_since, good_since, open, clear, active)."""
    if math.isnan(value):
        return bad_since, good_since, False, False, active
    if higher_is_worse:
        bad, good = value >= raise_at, value < clear_at
    else:
        bad, good = value <= raise_at, value > clear_at
    # A streak starts now, goes on, or breaks.
    if not bad:
        bad_since = -1
    elif bad_since == -1:
        bad_since = now
    if not good:
        good_since = -1
    elif good_since == -1:
        good_since = now
    opened = not active and bad and now - bad_since >= min_bad
    cleared = active and good and now - good_since >= min_good
    return bad_since, good_since, opened, cleared, (active or opened) and not cleared


def as_arrays(rows, now):
    """Rows of (value, raise_at, clear_at, hiw, bad_back, good_back, active, min_bad, min_good),
    with the since-times given as minutes back from now (None: -1)."""

    def since(back):
        return -1 if back is None else now - back * MINUTE

    return (
        np.array([r[0] for r in rows], dtype=np.float64),
        np.array([r[1] for r in rows], dtype=np.float64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.bool_),
        np.array([since(r[4]) for r in rows], dtype=np.int64),
        np.array([since(r[5]) for r in rows], dtype=np.int64),
        np.array([r[6] for r in rows], dtype=np.bool_),
        np.array([r[7] for r in rows], dtype=np.int64),
        np.array([r[8] for r in rows], dtype=np.int64),
    )


@st.composite
def conditions(draw):
    raise_at = draw(st.one_of(st.sampled_from([0.0, 3.3, 50.0]), st.floats(-100, 100)))
    band = draw(st.one_of(st.sampled_from([0.0, 5.0]), st.floats(0, 50)))
    higher_is_worse = draw(st.booleans())
    clear_at = raise_at - band if higher_is_worse else raise_at + band
    value = draw(
        st.one_of(
            st.just(NAN),
            st.sampled_from([raise_at, clear_at, math.inf, -math.inf]),  # exactly on thresholds
            st.floats(-200, 200),
        )
    )
    # Minutes back from now; None is -1 (no streak); a few negative ones are in the future.
    back = st.one_of(st.none(), st.integers(-2, 30))
    minimum = st.one_of(
        st.sampled_from([0, MINUTE, 5 * MINUTE, 15 * MINUTE]), st.integers(0, 2**31)
    )
    return (
        value,
        raise_at,
        clear_at,
        higher_is_worse,
        draw(back),
        draw(back),
        draw(st.booleans()),
        draw(minimum),
        draw(minimum),
    )


nows = st.integers(0, 86_400_000).map(lambda offset: T0 + offset)


@given(nows, st.lists(conditions(), max_size=40))
def test_evaluate_matches_reference(now, rows):
    arrays = as_arrays(rows, now)
    result = evaluate(now, *arrays)
    expected = [reference_row(now, *row) for row in zip(*(a.tolist() for a in arrays), strict=True)]
    assert result.bad_since_ms.dtype == result.good_since_ms.dtype == np.int64
    assert result.open.dtype == result.clear.dtype == result.active.dtype == np.bool_
    assert result.bad_since_ms.tolist() == [e[0] for e in expected]
    assert result.good_since_ms.tolist() == [e[1] for e in expected]
    assert result.open.tolist() == [e[2] for e in expected]
    assert result.clear.tolist() == [e[3] for e in expected]
    assert result.active.tolist() == [e[4] for e in expected]


@given(nows, st.lists(conditions(), max_size=40))
def test_evaluate_invariants(now, rows):
    arrays = as_arrays(rows, now)
    value, active = arrays[0], arrays[6]
    r = evaluate(now, *arrays)
    assert not (r.open & active).any()  # one alarm at a time
    assert not (r.clear & ~active).any()
    assert not (r.open & r.clear).any()
    assert not ((r.bad_since_ms != -1) & (r.good_since_ms != -1) & ~np.isnan(value)).any()
    nan = np.isnan(value)
    np.testing.assert_array_equal(r.bad_since_ms[nan], arrays[4][nan])
    np.testing.assert_array_equal(r.good_since_ms[nan], arrays[5][nan])
    np.testing.assert_array_equal(r.active[nan], active[nan])


# --- sequences ------------------------------------------------------------------------------


def simulate(values, *, raise_at, clear_at, higher_is_worse=True, min_bad_ms, min_good_ms):
    """Evaluate one condition every minute from T0, feeding the state back.

    ``values`` is a list of per-minute values, or of per-minute lists (one value per row).
    Returns one Evaluation per minute."""
    rows = np.atleast_2d(np.array(values, dtype=np.float64).T).T  # (minutes, rows)
    n = rows.shape[1]

    def full(x, dtype):
        return np.full(n, x, dtype=dtype)

    bad_since = np.full(n, -1, dtype=np.int64)
    good_since = np.full(n, -1, dtype=np.int64)
    active = np.zeros(n, dtype=np.bool_)
    out = []
    for minute, value in enumerate(rows):
        r = evaluate(
            T0 + minute * MINUTE,
            value,
            full(raise_at, np.float64),
            full(clear_at, np.float64),
            full(higher_is_worse, np.bool_),
            bad_since,
            good_since,
            active,
            full(min_bad_ms, np.int64),
            full(min_good_ms, np.int64),
        )
        bad_since, good_since, active = r.bad_since_ms, r.good_since_ms, r.active
        out.append(r)
    return out


def minutes_where(results, field, row=0):
    return [m for m, r in enumerate(results) if getattr(r, field)[row]]


def reference_sequence(values, raise_at, clear_at, min_bad_ms, min_good_ms):
    """Opens and clears of one condition from its history, without since-state: a streak
    starts at the first non-NaN reading of its kind after the last non-NaN reading not of it.
    """
    bad = [not math.isnan(v) and v >= raise_at for v in values]
    good = [not math.isnan(v) and v < clear_at for v in values]

    def streak_start(kind, i):
        start = i
        for j in range(i - 1, -1, -1):
            if math.isnan(values[j]):
                continue
            if not kind[j]:
                break
            start = j
        return start

    active, opens, clears = False, [], []
    for i, v in enumerate(values):
        if math.isnan(v):
            continue
        if not active and bad[i] and (i - streak_start(bad, i)) * MINUTE >= min_bad_ms:
            active = True
            opens.append(i)
        elif active and good[i] and (i - streak_start(good, i)) * MINUTE >= min_good_ms:
            active = False
            clears.append(i)
    return opens, clears


# Bad (>= 50), band, good (< 40) and no data: sequences of every kind of step.
minute_values = st.lists(st.sampled_from([55.0, 50.0, 45.0, 40.0, 39.9, 10.0, NAN]), max_size=90)
minimum_minutes = st.sampled_from([0, 1, 2, 5, 15])


@given(st.lists(minute_values, min_size=1, max_size=4), minimum_minutes, minimum_minutes)
def test_sequences_match_history_reference(sequences, min_bad_min, min_good_min):
    length = min(len(s) for s in sequences)
    sequences = [s[:length] for s in sequences]
    min_bad, min_good = min_bad_min * MINUTE, min_good_min * MINUTE
    if length == 0:
        return
    results = simulate(
        [list(step) for step in zip(*sequences, strict=True)],
        raise_at=50.0,
        clear_at=40.0,
        min_bad_ms=min_bad,
        min_good_ms=min_good,
    )
    for row, values in enumerate(sequences):
        opens, clears = reference_sequence(values, 50.0, 40.0, min_bad, min_good)
        assert minutes_where(results, "open", row) == opens
        assert minutes_where(results, "clear", row) == clears


def test_flapping_value_opens_one_alarm_and_clears_15_min_after_it_settles():
    flapping = [60.0 if m % 2 == 0 else 30.0 for m in range(60)]  # bad, good, ... for an hour
    settled = [30.0] * 30
    results = simulate(
        flapping + settled, raise_at=50.0, clear_at=40.0, min_bad_ms=0, min_good_ms=15 * MINUTE
    )
    assert minutes_where(results, "open") == [0]
    settled_at = 59  # the last bad minute is 58
    assert minutes_where(results, "clear") == [settled_at + 15]
    assert all(r.active[0] for r in results[:74])
    assert not any(r.active[0] for r in results[74:])


def test_flapping_with_a_minimum_bad_duration_opens_nothing():
    flapping = [60.0 if m % 2 == 0 else 30.0 for m in range(60)]
    results = simulate(flapping, raise_at=50.0, clear_at=40.0, min_bad_ms=MINUTE, min_good_ms=0)
    assert minutes_where(results, "open") == []


def test_bad_for_4_min_with_min_bad_5_min_opens_nothing():
    values = [60.0] * 5 + [30.0] * 10  # bad at minutes 0..4: 4 minutes long
    results = simulate(values, raise_at=50.0, clear_at=40.0, min_bad_ms=5 * MINUTE, min_good_ms=0)
    assert minutes_where(results, "open") == []
    assert results[4].bad_since_ms[0] == T0
    assert results[5].bad_since_ms[0] == -1


def test_bad_for_5_min_with_min_bad_5_min_opens_at_minute_5():
    values = [60.0] * 6 + [30.0] * 3
    results = simulate(values, raise_at=50.0, clear_at=40.0, min_bad_ms=5 * MINUTE, min_good_ms=0)
    assert minutes_where(results, "open") == [5]
    assert minutes_where(results, "clear") == [6]  # min_good 0: the first good value clears


def test_min_bad_zero_opens_at_once():
    results = simulate([50.0], raise_at=50.0, clear_at=40.0, min_bad_ms=0, min_good_ms=0)
    assert minutes_where(results, "open") == [0]
    assert results[0].bad_since_ms[0] == T0


def test_value_in_the_hysteresis_band_neither_opens_nor_clears():
    band = [45.0, 40.0, 49.9] * 40
    quiet = simulate(band, raise_at=50.0, clear_at=40.0, min_bad_ms=0, min_good_ms=0)
    assert minutes_where(quiet, "open") == []
    assert all(r.bad_since_ms[0] == r.good_since_ms[0] == -1 for r in quiet)
    raised = simulate([60.0, *band], raise_at=50.0, clear_at=40.0, min_bad_ms=0, min_good_ms=0)
    assert minutes_where(raised, "open") == [0]
    assert minutes_where(raised, "clear") == []
    assert raised[-1].active[0]


def test_band_breaks_a_bad_streak():
    values = [60.0] * 3 + [45.0] + [60.0] * 3  # never 5 minutes bad in a row
    results = simulate(values, raise_at=50.0, clear_at=40.0, min_bad_ms=5 * MINUTE, min_good_ms=0)
    assert minutes_where(results, "open") == []
    assert results[-1].bad_since_ms[0] == T0 + 4 * MINUTE


def test_no_data_keeps_the_streak_but_opens_nothing():
    values = [60.0] + [NAN] * 10 + [60.0]
    results = simulate(values, raise_at=50.0, clear_at=40.0, min_bad_ms=5 * MINUTE, min_good_ms=0)
    assert all(r.bad_since_ms[0] == T0 for r in results)
    assert minutes_where(results, "open") == [11]  # on the next bad value, not during the gap


def test_battery_lower_is_worse():
    # A 3.7 V cell: bad at or below 3.3 V, good again above 3.6 V (a charged cell rests higher).
    values = [3.7, 3.5, 3.3, 3.2, 3.25, 3.3, 3.5, 3.6, 3.61, 3.62, 3.7, 3.7]
    results = simulate(
        values,
        raise_at=3.3,
        clear_at=3.6,
        higher_is_worse=False,
        min_bad_ms=2 * MINUTE,
        min_good_ms=2 * MINUTE,
    )
    assert minutes_where(results, "open") == [4]  # bad since minute 2
    assert minutes_where(results, "clear") == [10]  # good since minute 8; 3.6 is the band
    assert [r.good_since_ms[0] for r in results][6:9] == [-1, -1, T0 + 8 * MINUTE]


def test_acknowledged_is_active_too():
    """The caller passes active=True for open and acknowledged alarms alike: no second one."""

    def one(x, dtype):
        return np.array([x], dtype=dtype)

    r = evaluate(
        T0,
        one(60.0, np.float64),
        one(50.0, np.float64),
        one(40.0, np.float64),
        one(True, np.bool_),
        one(T0 - 60 * MINUTE, np.int64),
        one(-1, np.int64),
        one(True, np.bool_),
        one(0, np.int64),
        one(0, np.int64),
    )
    assert not r.open[0]
    assert not r.clear[0]
    assert r.active[0]


# --- contract -------------------------------------------------------------------------------


def args(n=1, *, raise_at=50.0, clear_at=40.0, higher_is_worse=True, min_bad=0, min_good=0):
    return (
        np.full(n, 45.0),
        np.full(n, raise_at),
        np.full(n, clear_at),
        np.full(n, higher_is_worse),
        np.full(n, -1, dtype=np.int64),
        np.full(n, -1, dtype=np.int64),
        np.zeros(n, dtype=np.bool_),
        np.full(n, min_bad, dtype=np.int64),
        np.full(n, min_good, dtype=np.int64),
    )


def test_empty_input():
    r = evaluate(T0, *args(0))
    assert isinstance(r, Evaluation)
    for field in (r.bad_since_ms, r.good_since_ms, r.open, r.clear, r.active):
        assert field.shape == (0,)


@pytest.mark.parametrize("position", range(9))
def test_misaligned_arrays_are_an_error(position):
    arrays = list(args(2))
    arrays[position] = arrays[position][:1]
    with pytest.raises(ValueError, match="aligned"):
        evaluate(T0, *arrays)


@pytest.mark.parametrize(
    ("raise_at", "clear_at", "higher_is_worse"),
    [(50.0, 50.1, True), (3.3, 3.2, False), (NAN, 40.0, True), (50.0, NAN, False)],
)
def test_clear_on_the_wrong_side_is_an_error(raise_at, clear_at, higher_is_worse):
    with pytest.raises(ValueError, match="clear_at"):
        evaluate(T0, *args(raise_at=raise_at, clear_at=clear_at, higher_is_worse=higher_is_worse))


def test_equal_thresholds_mean_no_band():
    evaluate(T0, *args(raise_at=50.0, clear_at=50.0))
    evaluate(T0, *args(raise_at=3.3, clear_at=3.3, higher_is_worse=False))


@pytest.mark.parametrize(("min_bad", "min_good"), [(-1, 0), (0, -1)])
def test_negative_minimum_is_an_error(min_bad, min_good):
    with pytest.raises(ValueError, match="negative"):
        evaluate(T0, *args(min_bad=min_bad, min_good=min_good))


def test_evaluation_is_frozen():
    r = evaluate(T0, *args())
    with pytest.raises(AttributeError):
        r.active = np.ones(1, dtype=np.bool_)  # type: ignore[misc]


# --- the rule table and evaluate_rules -------------------------------------------------------


@st.composite
def rule_tables(draw):
    """A few rules with random thresholds and durations, as conditions() draws them."""
    table = []
    for i in range(draw(st.integers(1, 4))):
        _, raise_at, clear_at, higher_is_worse, _, _, _, min_bad, min_good = draw(conditions())
        table.append(
            Rule(f"r{i}", "info", raise_at, clear_at, higher_is_worse, min_bad, min_good, "{}")
        )
    return table


@given(
    nows,
    rule_tables().flatmap(
        lambda table: st.tuples(
            st.just(table),
            st.lists(st.tuples(st.integers(0, len(table) - 1), conditions()), max_size=40),
        )
    ),
)
def test_evaluate_rules_matches_reference(now, table_and_rows):
    table, rows = table_and_rows
    # Each row keeps its value, since-times and active flag; thresholds come from its rule.
    arrays = as_arrays([c for _, c in rows], now)
    rule = np.array([r for r, _ in rows], dtype=np.int64)
    result = evaluate_rules(now, table, rule, arrays[0], arrays[4], arrays[5], arrays[6])
    expected = [
        reference_row(
            now, value, table[r].raise_at, table[r].clear_at, table[r].higher_is_worse,
            bad, good, active, table[r].min_bad_ms, table[r].min_good_ms,
        )
        for r, value, bad, good, active in zip(
            rule.tolist(), *(arrays[j].tolist() for j in (0, 4, 5, 6)), strict=True
        )
    ]  # fmt: skip
    assert result.bad_since_ms.tolist() == [e[0] for e in expected]
    assert result.good_since_ms.tolist() == [e[1] for e in expected]
    assert result.open.tolist() == [e[2] for e in expected]
    assert result.clear.tolist() == [e[3] for e in expected]
    assert result.active.tolist() == [e[4] for e in expected]


def test_evaluate_rules_rejects_an_index_outside_the_table():
    table = rules(battery_low_v=3.4)
    one = np.zeros(1, dtype=np.int64)
    with pytest.raises(ValueError, match="rule index"):
        evaluate_rules(T0, table, np.array([len(table)]), np.ones(1), one, one, np.zeros(1, bool))


def test_the_rule_table():
    table = rules(battery_low_v=3.4)
    by_name = {r.name: r for r in table}
    assert len(by_name) == len(table)  # one rule per name
    # Every rule is well formed: evaluate accepts its thresholds and durations.
    evaluate_rules(
        T0, table, np.arange(len(table), dtype=np.int64), np.full(len(table), NAN),
        np.full(len(table), -1), np.full(len(table), -1), np.zeros(len(table), dtype=np.bool_),
    )  # fmt: skip
    # Every anomaly kind the detectors report has its rule.
    assert set(ANOMALY_RULE_KINDS) == set(KIND_NAMES)
    assert {f"anomaly_{k}" for k in KIND_NAMES} <= set(by_name)
    battery = by_name["battery_low"]
    assert (battery.raise_at, battery.clear_at, battery.higher_is_worse) == (3.4, 3.5, False)
    assert rules(battery_low_v=3.2)[1].raise_at == 3.2
    overflow = by_name["bin_overflow"]
    assert (overflow.severity, overflow.raise_at, overflow.clear_at) == ("critical", 100, 90)
    assert (overflow.min_bad_ms, overflow.min_good_ms) == (15 * MINUTE, 30 * MINUTE)
    assert overflow.describe(104.2) == "bin overflowing: 104 % full"
    assert by_name["crowding"].describe(3.6) == "over capacity: 360% of capacity"
    assert by_name["battery_low"].describe(3.312) == "battery low: 3.31 V"
    assert by_name["anomaly_level_shift"].describe(3.0) == (
        "level shift anomalies: 3 in the last 30 minutes"
    )
