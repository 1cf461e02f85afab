"""A simulated month of the Jepara fleet (March 2026: Ramadan, Idul Fitri on the 20th, Lomban
on the 27th): the statistics each model promises, and labels that match what was published.

The same seed is run twice, with faults and without. Faults never touch the clean signal
(noise is keyed by sensor and time), so the difference between the two runs is exactly what the
faults changed, and every difference must be covered by a label of the right kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pytest

from pantau.registry.fleet import Fleet, load_fleet
from simulators.calendar import day_number, day_start_s, local_day, local_hour
from simulators.fleet import Columns
from simulators.labels import Label
from simulators.metrics import KIND_METRICS, METRIC_NAMES
from simulators.scenario import generate_columns

START = int(day_start_s(day_number(date(2026, 3, 1))))
DAYS = 31
SEED = 11


@dataclass
class Month:
    fleet: Fleet
    clean: Columns
    faulty: Columns
    labels: list[Label]

    def series(self, cols: Columns, sensor: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        s = cols.sensor_ids.index(sensor)
        sel = (cols.sensor_idx == s) & (cols.metric_id == METRIC_NAMES.index(metric))
        order = np.argsort(cols.ts_ms[sel], kind="stable")
        return cols.ts_ms[sel][order], cols.value[sel][order]


@pytest.fixture(scope="module")
def month() -> Month:
    fleet = load_fleet()
    kwargs = {"seed": SEED, "start_s": START, "duration_s": DAYS * 86_400}
    clean, none = generate_columns(fleet, fault_rate=0.0, **kwargs)
    faulty, labels = generate_columns(fleet, fault_rate=0.3, **kwargs)
    assert none == []
    return Month(fleet, clean, faulty, labels)


def metric(cols: Columns, name: str) -> np.ndarray:
    return cols.metric_id == METRIC_NAMES.index(name)


def sensors_of(fleet: Fleet, kind: str) -> list[str]:
    return [s.id for s in fleet.sensors if s.kind == kind]


# -- waste bins ------------------------------------------------------------------------------


def test_bins_stay_within_physical_bounds(month):
    c = month.clean
    fill = c.value[metric(c, "fill_pct")]
    assert fill.min() >= 0
    assert fill.max() <= 120
    depth = {
        s.id: float(s.params["depth_cm"]) for s in month.fleet.sensors if "depth_cm" in s.params
    }
    dist = metric(c, "distance_cm")
    bins = np.array([depth[c.sensor_ids[i]] for i in c.sensor_idx[dist]])
    assert (c.value[dist] >= 0).all()
    assert (c.value[dist] <= bins).all()
    battery = c.value[metric(c, "battery_v")]
    assert battery.min() > 3.2
    assert battery.max() < 4.25


def test_bins_fill_between_collections_and_tilt_when_emptied(month):
    rises = drops = tipped_after_drop = 0
    for sensor in sensors_of(month.fleet, "waste_bin")[::7]:
        _, fill = month.series(month.clean, sensor, "fill_pct")
        _, tilt = month.series(month.clean, sensor, "tilt")
        step = np.diff(fill)
        rises += int((step > -3).sum())
        dropped = step < -15  # an emptying
        drops += int(dropped.sum())
        tipped_after_drop += int((tilt[1:][dropped] > 90).sum())
    assert drops > 100
    assert rises > 0.97 * (rises + drops)
    assert tipped_after_drop == drops  # the report after an emptying shows the tipping


def test_bins_overflow_when_rounds_are_missed_around_idul_fitri(month):
    c = month.clean
    fill = metric(c, "fill_pct")
    day = local_day(c.ts_ms[fill] // 1000)
    lebaran = (day >= day_number(date(2026, 3, 20))) & (day <= day_number(date(2026, 3, 23)))
    early = day < day_number(date(2026, 3, 10))
    overflowing = c.value[fill] > 100
    assert overflowing[lebaran].mean() > 3 * overflowing[early].mean()
    assert overflowing[lebaran].mean() > 0.1


# -- air quality -----------------------------------------------------------------------------


def test_pm25_never_exceeds_pm10_except_labelled(month):
    for cols, labelled in ((month.clean, False), (month.faulty, True)):
        pm25, pm10 = metric(cols, "pm25_ugm3"), metric(cols, "pm10_ugm3")
        key25 = dict(
            zip(
                zip(cols.sensor_idx[pm25].tolist(), cols.ts_ms[pm25].tolist(), strict=True),
                cols.value[pm25].tolist(),
                strict=True,
            )
        )
        bad = [
            (cols.sensor_ids[s], ts)
            for s, ts, v in zip(
                cols.sensor_idx[pm10].tolist(),
                cols.ts_ms[pm10].tolist(),
                cols.value[pm10].tolist(),
                strict=True,
            )
            if key25.get((s, ts), 0.0) > v
        ]
        if not labelled:
            assert bad == []
        for sensor, ts in bad:
            assert any(
                x.sensor_id == sensor
                and x.metric in ("pm25_ugm3", "pm10_ugm3")
                and x.start_ms <= ts <= x.end_ms
                for x in month.labels
            )


def test_air_has_traffic_peaks_correlated_stations_and_episodes(month):
    c = month.clean
    pm25 = metric(c, "pm25_ugm3")
    hour = local_hour(c.ts_ms[pm25] // 1000)
    roadside = c.sensor_idx[pm25] == c.sensor_ids.index("AQ-PECANGAAN")
    rush = roadside & (hour >= 6.5) & (hour < 8)
    midday = roadside & (hour >= 12) & (hour < 14)
    assert c.value[pm25][rush].mean() > 1.3 * c.value[pm25][midday].mean()
    daily = {}
    for station in ("AQ-CENTRE", "AQ-KARIMUNJAWA"):
        ts, v = month.series(c, station, "pm25_ugm3")
        day = local_day(ts // 1000)
        daily[station] = np.bincount(day - day.min(), v) / np.bincount(day - day.min())
    assert np.corrcoef(daily["AQ-CENTRE"], daily["AQ-KARIMUNJAWA"])[0, 1] > 0.5
    _, so2_tjb = month.series(c, "AQ-TJB", "so2_ugm3")
    _, so2_town = month.series(c, "AQ-CENTRE", "so2_ugm3")
    assert so2_tjb.max() > 100 > so2_town.max()
    for name, lo, hi in (("no2_ugm3", 0.5, 400), ("o3_ugm3", 2, 250), ("co_ugm3", 50, 10_000)):
        v = c.value[metric(c, name)]
        assert v.min() >= lo, name
        assert v.max() <= hi, name


# -- footfall --------------------------------------------------------------------------------


def daily_in(month: Month, sensor: str) -> dict[int, float]:
    ts, v = month.series(month.clean, sensor, "count_in")
    day = local_day(ts // 1000)
    return {int(d): float(v[day == d].sum()) for d in np.unique(day)}


def test_footfall_peaks_on_lomban_lebaran_and_weekends(month):
    kartini = daily_in(month, "FF-T-KARTINI-001")
    lomban = day_number(date(2026, 3, 27))  # 8 Syawal 1447
    assert max(kartini, key=kartini.__getitem__) == lomban
    lebaran = [kartini[d] for d in range(lomban - 6, lomban)]
    ramadan = [
        kartini[d] for d in range(day_number(date(2026, 3, 2)), day_number(date(2026, 3, 19)))
    ]
    assert min(lebaran) > max(ramadan)
    # All gates together: weekends against Monday-Thursday, in the two ordinary Ramadan weeks.
    total: dict[int, float] = {}
    for sensor in sensors_of(month.fleet, "footfall"):
        for d, v in daily_in(month, sensor).items():
            total[d] = total.get(d, 0.0) + v
    mondays = range(day_number(date(2026, 3, 2)), day_number(date(2026, 3, 16)), 7)
    weekdays = np.mean([total[m + i] for m in mondays for i in range(4)])
    weekends = np.mean([total[m + i] for m in mondays for i in (5, 6)])
    assert weekends > 1.5 * weekdays


def test_occupancy_never_negative_and_empty_after_closing(month):
    for sensor in sensors_of(month.fleet, "footfall"):
        ts, count_in = month.series(month.clean, sensor, "count_in")
        _, count_out = month.series(month.clean, sensor, "count_out")
        day = local_day(ts // 1000)
        for d in np.unique(day):
            occupancy = np.cumsum(count_in[day == d] - count_out[day == d])
            assert occupancy.min() >= 0, sensor
            assert occupancy[-1] == 0, sensor


# -- faults and labels -----------------------------------------------------------------------


def keys(cols: Columns) -> np.ndarray:
    """One int64 per reading: (sensor, metric) in the high bits, ts_ms in the low 42."""
    return ((cols.sensor_idx * 16 + cols.metric_id) << 42) | cols.ts_ms


@dataclass
class Index:
    key: np.ndarray  # sorted
    value: np.ndarray

    @classmethod
    def of(cls, cols: Columns) -> Index:
        k = keys(cols)
        order = np.argsort(k, kind="stable")
        return cls(k[order], cols.value[order])

    def span(self, sensor: int, metric_id: int, lo_ms: int, hi_ms: int) -> slice:
        base = (sensor * 16 + metric_id) << 42
        a, b = np.searchsorted(self.key, [base | lo_ms, base | hi_ms], side="left")
        b = np.searchsorted(self.key, base | hi_ms, side="right")
        return slice(int(a), int(b))


@pytest.fixture(scope="module")
def index(month):
    return Index.of(month.clean), Index.of(month.faulty)


def covered(month: Month, key: np.ndarray, kinds: set[str], late_ms: int = 0) -> np.ndarray:
    """Whether each reading key lies in a label of one of ``kinds`` (metric or whole device),
    or up to ``late_ms`` after its end."""
    ids = {sid: i for i, sid in enumerate(month.clean.sensor_ids)}
    order = np.argsort(key >> 46, kind="stable")
    sensor = (key >> 46)[order]
    metric_id, ts = ((key >> 42) & 15)[order], (key & ((1 << 42) - 1))[order]
    hit = np.zeros(key.shape[0], dtype=bool)
    for x in month.labels:
        if x.kind not in kinds:
            continue
        lo, hi = np.searchsorted(sensor, [ids[x.sensor_id], ids[x.sensor_id] + 1])
        inside = (ts[lo:hi] >= x.start_ms) & (ts[lo:hi] <= x.end_ms + late_ms)
        if x.metric:
            inside &= metric_id[lo:hi] == METRIC_NAMES.index(x.metric)
        hit[lo:hi] |= inside
    out = np.zeros(key.shape[0], dtype=bool)
    out[order] = hit
    return out


def test_every_kind_is_injected(month):
    kinds = {x.kind for x in month.labels}
    assert kinds == {
        "stuck", "spike", "drift", "offline", "garbage", "duplicate", "clock_skew", "out_of_order"
    }  # fmt: skip


def member(a: np.ndarray, sorted_b: np.ndarray) -> np.ndarray:
    """``np.isin(a, sorted_b)`` for a sorted ``sorted_b`` (much faster on millions of keys)."""
    i = np.minimum(np.searchsorted(sorted_b, a), sorted_b.shape[0] - 1)
    found: np.ndarray = sorted_b[i] == a
    return found


def test_nothing_unlabelled_is_faulty(month, index):
    clean, faulty = index
    unique, counts = np.unique(faulty.key, return_counts=True)
    assert covered(month, unique[counts > 1], {"duplicate"}).all()
    extra = unique[~member(unique, clean.key)]
    assert covered(month, extra, {"clock_skew", "out_of_order"}).all()
    missing = clean.key[~member(clean.key, faulty.key)]
    # A message an out-of-order fault delays past the end of the run is not in the run.
    missing = missing[(missing & ((1 << 42) - 1)) < (START + DAYS * 86_400 - 6 * 3600) * 1000]
    # A skewed reading is labelled by the time it carries, less than an interval (at most
    # 900 s here) before its true time: the last true time lies just after the label.
    gone = covered(month, missing, {"offline", "garbage"})
    assert (gone | covered(month, missing, {"clock_skew"}, late_ms=900_000)).all()
    both = member(clean.key, faulty.key)
    first = np.searchsorted(faulty.key, clean.key[both])
    changed = clean.key[both][faulty.value[first] != clean.value[both]]
    assert changed.size > 100
    assert covered(month, changed, {"stuck", "spike", "drift"}).all()
    late = month.faulty.publish_ms - month.faulty.ts_ms > 3_600_000 + 1000
    assert late.any()
    assert covered(month, keys(month.faulty)[late], {"out_of_order"}).all()


def test_each_label_covers_exactly_the_readings_it_changed(month, index):
    clean, faulty = index
    ids = {sid: i for i, sid in enumerate(month.clean.sensor_ids)}
    kind_of = {s.id: s.kind for s in month.fleet.sensors}
    for x in month.labels:
        s = ids[x.sensor_id]
        m = METRIC_NAMES.index(x.metric or KIND_METRICS[kind_of[x.sensor_id]][0].name)
        c = clean.span(s, m, x.start_ms, x.end_ms)
        f = faulty.span(s, m, x.start_ms, x.end_ms)
        if x.kind in ("stuck", "spike", "drift"):
            assert c.stop - c.start == f.stop - f.start > 0, x
            diff = faulty.value[f] != clean.value[c]
            assert diff[0], x
            assert diff[-1], x
        elif x.kind in ("offline", "garbage"):
            assert c.stop > c.start, x
            assert f.stop == f.start, x
        elif x.kind == "clock_skew":
            # Inside the window only skewed readings (odd milliseconds), none left on time.
            assert f.stop > f.start, x
            assert (faulty.key[f] % 1000 != 0).all(), x
        elif x.kind == "duplicate":
            assert f.stop - f.start == 2 * (c.stop - c.start) > 0, x
        else:  # out_of_order: the readings are unchanged, only delivered late
            before_run = x.start_ms < START * 1000  # published late into the run
            assert (
                f.stop - f.start
                == (0 if before_run else c.stop - c.start) + (f.stop - f.start if before_run else 0)
                > 0
            ), x


def robust_sd(values: np.ndarray) -> float:
    d = np.diff(values)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


def test_faults_are_recognisable_by_design(month, index):
    clean, faulty = index
    ids = {sid: i for i, sid in enumerate(month.clean.sensor_ids)}
    checked = {"stuck": 0, "spike": 0, "drift": 0}
    for x in month.labels:
        if x.kind not in checked:
            continue
        s, m = ids[x.sensor_id], METRIC_NAMES.index(x.metric)
        c = clean.span(s, m, x.start_ms, x.end_ms)
        series = clean.value[clean.span(s, m, 0, (1 << 42) - 1)]
        changed, truth = faulty.value[faulty.span(s, m, x.start_ms, x.end_ms)], clean.value[c]
        if x.kind == "spike":
            assert changed.size == 1
            resolution = 10.0 ** -next(
                sp.decimals for k in KIND_METRICS.values() for sp in k if sp.name == x.metric
            )
            assert abs(changed[0] - truth[0]) >= 8 * max(robust_sd(series), resolution), x
        elif x.kind == "stuck":
            before = clean.value[c.start - 1]  # the reading just before the window
            assert (changed == before).all(), x
        else:
            offset = changed - truth
            assert (np.diff(offset) > 0).all() or (np.diff(offset) < 0).all(), x
            spec = next(sp for k in KIND_METRICS.values() for sp in k if sp.name == x.metric)
            assert abs(offset[-1]) >= 0.7 * abs(spec.drift), x
        checked[x.kind] += 1
    assert min(checked.values()) >= 5, checked


def test_stuck_sensors_repeat_a_value_at_least_eight_times(month, index):
    _, faulty = index
    ids = {sid: i for i, sid in enumerate(month.clean.sensor_ids)}
    end_ms = (START + DAYS * 86_400) * 1000
    runs = []
    for x in month.labels:
        if x.kind != "stuck" or x.end_ms > end_ms - 86_400_000:
            continue  # a fault cut by the end of the run may be short
        whole = faulty.span(ids[x.sensor_id], METRIC_NAMES.index(x.metric), 0, (1 << 42) - 1)
        window = faulty.span(ids[x.sensor_id], METRIC_NAMES.index(x.metric), x.start_ms, x.end_ms)
        values = faulty.value[whole]
        lo, hi = window.start - whole.start, window.stop - whole.start - 1
        value = values[lo]
        while lo > 0 and values[lo - 1] == value:
            lo -= 1
        while hi + 1 < values.size and values[hi + 1] == value:
            hi += 1
        runs.append(hi - lo + 1)
    assert runs
    assert min(runs) >= 9
