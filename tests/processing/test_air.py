"""processing.air against plain-Python references built from the literal tables.

The references use exact rational arithmetic (fractions.Fraction) on the tables as written in
/work/shared/reference/ispu.md, with the same documented tolerances (half up with 1e-9, and
truncation to 0.1 with 1e-9), so they check float error in the vectorized code too.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from processing.air import (
    ISPU_CATEGORIES,
    METRIC_OF,
    POLLUTANTS,
    US_AQI_CATEGORIES,
    ispu_category,
    ispu_overall,
    ispu_subindex,
    trailing_mean,
    us_aqi_category,
    us_aqi_pm25,
)

HOUR = 3_600_000
TOL = Fraction(1, 10**9)

# Permen LHK P.14/2020, Lampiran: upper concentration (ug/m3) of bands 0-50, 51-100, 101-200,
# 201-300, >300 (interpolated to 500).
ISPU_TABLE: dict[str, list[str]] = {
    "pm10": ["50", "150", "350", "420", "500"],
    "pm25": ["15.5", "55.4", "150.4", "250.4", "500"],
    "so2": ["52", "180", "400", "800", "1200"],
    "co": ["4000", "8000", "15000", "30000", "45000"],
    "o3": ["120", "235", "400", "800", "1000"],
    "no2": ["80", "200", "1130", "2260", "3000"],
    "hc": ["45", "100", "215", "432", "648"],
}
ISPU_BOUNDS = [0, 50, 100, 200, 300, 500]

# US EPA AQI, PM2.5, 2024: (C_lo, C_hi, I_lo, I_hi).
US_TABLE = [
    ("0.0", "9.0", 0, 50),
    ("9.1", "35.4", 51, 100),
    ("35.5", "55.4", 101, 150),
    ("55.5", "125.4", 151, 200),
    ("125.5", "225.4", 201, 300),
    ("225.5", "325.4", 301, 500),
]


def half_up(x: Fraction) -> float:
    return float(math.floor(x + Fraction(1, 2) + TOL))


def ref_ispu(pollutant: str, x: float) -> tuple[float, bool]:
    if math.isnan(x) or x < 0:
        return math.nan, False
    uppers = [Fraction(0)] + [Fraction(u) for u in ISPU_TABLE[pollutant]]
    if x > uppers[-1]:
        return 500.0, True
    c = Fraction(x)
    for k in range(1, len(uppers)):
        if c <= uppers[k]:
            ia, ib = ISPU_BOUNDS[k], ISPU_BOUNDS[k - 1]
            xa, xb = uppers[k], uppers[k - 1]
            return half_up((ia - ib) / (xa - xb) * (c - xb) + ib), False
    raise AssertionError("unreachable")


def ref_us_aqi(x: float) -> tuple[float, bool]:
    if math.isnan(x) or x < 0:
        return math.nan, False
    if math.isinf(x):
        return 500.0, True
    c = Fraction(math.floor(Fraction(x) * 10 + TOL), 10)
    for c_lo, c_hi, i_lo, i_hi in US_TABLE:
        lo, hi = Fraction(c_lo), Fraction(c_hi)
        if lo <= c <= hi:
            return half_up((i_hi - i_lo) / (hi - lo) * (c - lo) + i_lo), False
    assert c > Fraction("325.4")
    return 500.0, True


def ref_ispu_category(v: float) -> int:
    if math.isnan(v):
        return -1
    for code, upper in enumerate((50, 100, 200, 300)):
        if v <= upper:
            return code
    return 4


def ref_us_category(v: float) -> int:
    if math.isnan(v):
        return -1
    for code, upper in enumerate((50, 100, 150, 200, 300)):
        if v <= upper:
            return code
    return 5


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def edges_of(values: list[Fraction]) -> list[float]:
    """Each edge and its float neighbours."""
    out = []
    for v in values:
        f = float(v)
        out += [f, math.nextafter(f, -math.inf), math.nextafter(f, math.inf)]
    return out


ISPU_EDGES = {
    p: edges_of([Fraction(0)] + [Fraction(u) for u in us]) for p, us in ISPU_TABLE.items()
}
US_EDGES = edges_of(
    [Fraction(c) for row in US_TABLE for c in row[:2]]
    + [Fraction(c) + Fraction(1, 20) for row in US_TABLE for c in row[:2]]
)


def conc_arrays(edges: list[float], top: float) -> st.SearchStrategy[np.ndarray]:
    element = st.one_of(
        st.floats(-10.0, top * 1.2),
        st.sampled_from(edges),
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, -1e-300]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(0, int(top * 10) + 20).map(lambda i: i / 10),
    )
    return hnp.arrays(np.float64, st.integers(0, 40), elements=element)


# --- ISPU sub-index -------------------------------------------------------------------------


@given(
    st.sampled_from(POLLUTANTS).flatmap(
        lambda p: st.tuples(
            st.just(p), conc_arrays(ISPU_EDGES[p], float(Fraction(ISPU_TABLE[p][-1])))
        )
    )
)
def test_ispu_subindex_matches_reference(case):
    pollutant, conc = case
    index, beyond = ispu_subindex(pollutant, conc)
    assert index.dtype == np.float64
    assert beyond.dtype == np.bool_
    assert index.shape == beyond.shape == conc.shape
    for x, i, b in zip(conc.tolist(), index.tolist(), beyond.tolist(), strict=True):
        exp_i, exp_b = ref_ispu(pollutant, x)
        assert same(i, exp_i), (x, i, exp_i)
        assert b == exp_b, x


@pytest.mark.parametrize("pollutant", POLLUTANTS)
def test_ispu_band_edges(pollutant):
    uppers = [float(Fraction(u)) for u in ISPU_TABLE[pollutant]]
    index, beyond = ispu_subindex(pollutant, np.array([0.0, *uppers]))
    assert index.tolist() == [0.0, 50.0, 100.0, 200.0, 300.0, 500.0]
    assert not beyond.any()
    # On the upper bound the concentration belongs to the lower band (category of that band).
    assert ispu_category(index).tolist() == [0, 0, 1, 2, 3, 4]


@pytest.mark.parametrize("pollutant", POLLUTANTS)
def test_ispu_above_table(pollutant):
    top = float(ISPU_TABLE[pollutant][-1])
    conc = np.array([math.nextafter(top, math.inf), top * 2, math.inf, top])
    index, beyond = ispu_subindex(pollutant, conc)
    assert index.tolist() == [500.0, 500.0, 500.0, 500.0]
    assert beyond.tolist() == [True, True, True, False]


def test_ispu_nan_and_negative():
    index, beyond = ispu_subindex("so2", np.array([math.nan, -1.0, -math.inf, -0.0]))
    assert np.isnan(index[:3]).all()
    assert index[3] == 0.0
    assert not beyond.any()


def test_ispu_worked_example():
    # ispu.md section 3: (100-50)/(55.4-15.5) * (40-15.5) + 50 = 80.7 -> 81, Sedang.
    index, _ = ispu_subindex("pm25", np.array([40.0]))
    assert index.tolist() == [81.0]
    assert ispu_category(index).tolist() == [1]
    assert ISPU_CATEGORIES[1].name_id == "Sedang"


def test_ispu_rounds_half_up():
    # PM10 first band is the identity; CO first band is x / 80: 40 -> 0.5 -> 1.
    assert ispu_subindex("pm10", np.array([20.5, 20.4999]))[0].tolist() == [21.0, 20.0]
    assert ispu_subindex("co", np.array([40.0]))[0].tolist() == [1.0]


def test_ispu_unknown_pollutant():
    with pytest.raises(ValueError, match=r"unknown pollutant 'pm1'.*pm25, pm10, so2"):
        ispu_subindex("pm1", np.array([1.0]))


def test_ispu_vs_us_aqi_comparison_table():
    # ispu.md section 5. The table gives ISPU 100 for 55 ug/m3 ("99.5"), but under convention
    # (a) it is 50/39.9 * 39.5 + 50 = 99.4987... -> 99. (100 is convention (b)'s value:
    # 49/39.8 * 39.4 + 51 = 99.5075 -> 100.) The other nine values agree.
    conc = np.array([10.0, 35.0, 55.0, 100.0, 200.0])
    ispu, _ = ispu_subindex("pm25", conc)
    aqi, _ = us_aqi_pm25(conc)
    assert ispu.tolist() == [32.0, 74.0, 99.0, 147.0, 250.0]
    assert ispu_category(ispu).tolist() == [0, 1, 1, 2, 3]
    assert aqi.tolist() == [53.0, 99.0, 149.0, 182.0, 275.0]
    assert us_aqi_category(aqi).tolist() == [1, 1, 2, 3, 4]


# --- Overall ISPU ---------------------------------------------------------------------------


@given(
    st.integers(0, 12).flatmap(
        lambda n: hnp.arrays(
            np.float64,
            (len(POLLUTANTS), n),
            elements=st.one_of(
                st.just(math.nan),
                st.integers(0, 4).map(lambda i: float(i * 125)),  # frequent ties
                st.integers(0, 500).map(float),
                st.floats(0.0, 500.0),
            ),
        )
    )
)
def test_ispu_overall_matches_reference(sub):
    index, dominant = ispu_overall(sub)
    assert index.dtype == np.float64
    assert dominant.dtype == np.int64
    for j in range(sub.shape[1]):
        best, pos = math.nan, -1
        for p in range(len(POLLUTANTS)):
            v = float(sub[p, j])
            if not math.isnan(v) and (pos == -1 or v > best):
                best, pos = v, p
        assert same(float(index[j]), best)
        assert int(dominant[j]) == pos


def test_ispu_overall_examples():
    nan = math.nan
    sub = np.full((len(POLLUTANTS), 3), nan)
    sub[:, 0] = [81, 40, nan, 12, 81, nan, 3]
    sub[2, 1] = 7
    index, dominant = ispu_overall(sub)
    assert index[:2].tolist() == [81.0, 7.0]
    assert math.isnan(index[2])
    assert dominant.tolist() == [0, 2, -1]


def test_ispu_overall_shape():
    with pytest.raises(ValueError, match="shape"):
        ispu_overall(np.zeros((6, 2)))
    with pytest.raises(ValueError, match="shape"):
        ispu_overall(np.zeros(7))
    index, dominant = ispu_overall(np.zeros((7, 0)))
    assert index.shape == dominant.shape == (0,)


# --- Categories -----------------------------------------------------------------------------

index_arrays = hnp.arrays(
    np.float64,
    st.integers(0, 40),
    elements=st.one_of(
        st.integers(-1, 501).map(float),
        st.floats(-1.0, 600.0),
        st.sampled_from([math.nan, math.inf, 50.5, 100.5, 150.5, 200.5, 300.5]),
    ),
)


@given(index_arrays)
def test_ispu_category_matches_reference(index):
    codes = ispu_category(index)
    assert codes.dtype == np.int8
    assert codes.tolist() == [ref_ispu_category(v) for v in index.tolist()]


@given(index_arrays)
def test_us_aqi_category_matches_reference(index):
    codes = us_aqi_category(index)
    assert codes.dtype == np.int8
    assert codes.tolist() == [ref_us_category(v) for v in index.tolist()]


@pytest.mark.parametrize(
    ("categories", "classify"),
    [(ISPU_CATEGORIES, ispu_category), (US_AQI_CATEGORIES, us_aqi_category)],
)
def test_category_tables_agree_with_functions(categories, classify):
    assert [c.code for c in categories] == list(range(len(categories)))
    assert categories[0].lower == 0
    assert categories[-1].upper == 500
    for prev, cur in itertools.pairwise(categories):
        assert cur.lower == prev.upper + 1
    for c in categories:
        assert c.hex.startswith("#")
        assert len(c.hex) == 7
        span = np.arange(c.lower, c.upper + 1, dtype=np.float64)
        assert (classify(span) == c.code).all()


def test_ispu_category_names():
    assert [c.name_id for c in ISPU_CATEGORIES] == [
        "Baik",
        "Sedang",
        "Tidak Sehat",
        "Sangat Tidak Sehat",
        "Berbahaya",
    ]
    assert [c.colour for c in ISPU_CATEGORIES] == ["hijau", "biru", "kuning", "merah", "hitam"]


def test_metric_names():
    assert POLLUTANTS == ("pm25", "pm10", "so2", "co", "o3", "no2", "hc")
    assert METRIC_OF == {
        "pm25": "pm25_ugm3",
        "pm10": "pm10_ugm3",
        "so2": "so2_ugm3",
        "co": "co_ugm3",
        "o3": "o3_ugm3",
        "no2": "no2_ugm3",
        "hc": "hc_ugm3",
    }


# --- US AQI ---------------------------------------------------------------------------------


@given(conc_arrays(US_EDGES, 330.0))
def test_us_aqi_matches_reference(conc):
    aqi, beyond = us_aqi_pm25(conc)
    assert aqi.dtype == np.float64
    assert aqi.shape == beyond.shape == conc.shape
    for x, a, b in zip(conc.tolist(), aqi.tolist(), beyond.tolist(), strict=True):
        exp_a, exp_b = ref_us_aqi(x)
        assert same(a, exp_a), (x, a, exp_a)
        assert b == exp_b, x


def test_us_aqi_edges_and_truncation():
    conc = np.array([0.0, 9.0, 9.09, 9.1, 35.4, 35.49, 35.5, 55.4, 55.5, 125.4, 125.5])
    aqi, beyond = us_aqi_pm25(conc)
    assert aqi.tolist() == [0, 50, 50, 51, 100, 100, 101, 150, 151, 200, 201]
    assert not beyond.any()
    conc = np.array([225.4, 225.5, 325.4, 325.49, 325.5, 1e308, math.inf])
    aqi, beyond = us_aqi_pm25(conc)
    assert aqi.tolist() == [300, 301, 500, 500, 500, 500, 500]
    assert beyond.tolist() == [False, False, False, False, True, True, True]


def test_us_aqi_truncation_is_robust_to_float_error():
    # One ulp below each tenth, as arithmetic (e.g. averaging) produces: a naive
    # floor(x * 10) / 10 would drop 0.1 and, on a band edge, the category.
    below = [math.nextafter(k / 10, 0.0) for k in range(1, 3255)]
    assert sum(math.floor(x * 10) < round(x * 10) for x in below) > 1000
    aqi, _ = us_aqi_pm25(np.array(below))
    assert aqi.tolist() == [ref_us_aqi(x)[0] for x in below]
    # 9.1 - 1 ulp is still 9.1: Moderate (51), not Good (50).
    assert us_aqi_pm25(np.array([math.nextafter(9.1, 0.0)]))[0].tolist() == [51.0]


def test_us_aqi_nan_and_negative():
    aqi, beyond = us_aqi_pm25(np.array([math.nan, -0.01, -math.inf]))
    assert np.isnan(aqi).all()
    assert not beyond.any()


# --- Trailing mean --------------------------------------------------------------------------


def ref_trailing_mean(rows, targets, window_h, min_hours):
    merged: dict[tuple[int, int], list[float]] = {}
    for s, h, total, n in rows:
        if n == 0 or not math.isfinite(total):
            continue
        acc = merged.setdefault((s, h), [0.0, 0])
        acc[0] += total
        acc[1] += n
    out = []
    for s, h in targets:
        means = [
            merged[(s, h - k)][0] / merged[(s, h - k)][1]
            for k in range(window_h)
            if (s, h - k) in merged
        ]
        mean = math.fsum(means) / len(means) if len(means) >= min_hours else math.nan
        out.append((mean, len(means)))
    return out


@st.composite
def trailing_cases(draw):
    base = draw(st.one_of(st.just(0), st.integers(-(10**6), 10**7)))  # hours since epoch
    window_h = draw(st.integers(1, 30))
    min_hours = draw(st.integers(1, window_h))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(-1, 3),
                st.integers(-3, 40).map(lambda h: h + base),
                st.one_of(
                    st.floats(-1e4, 1e4),
                    st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
                ),
                st.integers(0, 5),
            ),
            max_size=80,
        )
    )
    targets = draw(
        st.lists(
            st.tuples(st.integers(-2, 5), st.integers(-10, 50).map(lambda h: h + base)),
            max_size=30,
        )
    )
    return rows, targets, window_h, min_hours


def run_trailing(rows, targets, window_h, min_hours):
    return trailing_mean(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] * HOUR for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.int64),
        np.array([t[0] for t in targets], dtype=np.int64),
        np.array([t[1] * HOUR for t in targets], dtype=np.int64),
        window_h=window_h,
        min_hours=min_hours,
    )


@given(trailing_cases())
def test_trailing_mean_matches_reference(case):
    rows, targets, window_h, min_hours = case
    mean, hours = run_trailing(rows, targets, window_h, min_hours)
    assert mean.dtype == np.float64
    assert hours.dtype == np.int64
    expected = ref_trailing_mean(rows, targets, window_h, min_hours)
    assert hours.tolist() == [e[1] for e in expected]
    for got, (exp, _) in zip(mean.tolist(), expected, strict=True):
        if math.isnan(exp):
            assert math.isnan(got)
        else:
            assert math.isclose(got, exp, rel_tol=1e-9, abs_tol=1e-7), (got, exp)


def test_trailing_mean_example():
    # Hour 0: one reading 10; hour 1 split over two rows, (4 + 8) / 3 readings = 4; hour 2 empty.
    rows = [(7, 1, 4.0, 1), (7, 0, 10.0, 1), (7, 1, 8.0, 2), (7, 2, 99.0, 0), (8, 1, 1.0, 1)]
    targets = [(7, 1), (7, 2), (7, 3), (7, 0), (7, -1), (9, 1)]
    mean, hours = run_trailing(rows, targets, 3, 2)
    assert hours.tolist() == [2, 2, 1, 1, 0, 0]
    assert mean[:2].tolist() == [7.0, 7.0]  # mean of hourly means (10 + 4) / 2, not 18 / 4
    assert np.isnan(mean[2:]).all()


def test_trailing_mean_empty():
    mean, hours = run_trailing([], [], 24, 18)
    assert mean.shape == hours.shape == (0,)
    mean, hours = run_trailing([], [(1, 5)], 24, 18)
    assert np.isnan(mean).all()
    assert hours.tolist() == [0]


def test_trailing_mean_huge_window():
    rows = [(1, -(2**40), 2.0, 1), (1, 2**40, 4.0, 1)]
    mean, hours = run_trailing(rows, [(1, 2**40)], 2**62, 1)
    assert hours.tolist() == [2]
    assert mean.tolist() == [3.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hour_ms": [1]}, "multiples"),
        ({"at_hour_ms": [HOUR + 60_000]}, "multiples"),
        ({"value_n": [-1]}, "value_n"),
        ({"value_sum": [1.0, 2.0]}, "equal length"),
        ({"at_series": [1, 2]}, "equal length"),
        ({"window_h": 0, "min_hours": 0}, "window_h"),
        ({"min_hours": 0}, "min_hours"),
        ({"window_h": 24, "min_hours": 25}, "min_hours"),
    ],
)
def test_trailing_mean_rejects(kwargs, match):
    args = {
        "series": [1],
        "hour_ms": [HOUR],
        "value_sum": [1.0],
        "value_n": [1],
        "at_series": [1],
        "at_hour_ms": [HOUR],
        "window_h": 24,
        "min_hours": 18,
    } | kwargs
    arrays = {
        k: np.array(v, dtype=np.float64 if k == "value_sum" else np.int64)
        for k, v in args.items()
        if isinstance(v, list)
    }
    with pytest.raises(ValueError, match=match):
        trailing_mean(**arrays, window_h=args["window_h"], min_hours=args["min_hours"])
