"""Air-quality indices, vectorized: Indonesia's ISPU and the US EPA AQI for PM2.5.

ISPU (Indeks Standar Pencemar Udara) follows Permen LHK No. P.14/MENLHK/SETJEN/KUM.1/7/2020,
Lampiran "Batas/Konversi Nilai Konsentrasi Parameter ISPU". The regulation lists only the upper
concentration of each band; this module uses contiguous segments (each band starts where the
previous one ends, the first at 0 ug/m3 / ISPU 0) and linear interpolation

    I = (Ia - Ib) / (Xa - Xb) * (Xx - Xb) + Ib

rounded half up to an integer. Concentrations are in ug/m3 and are expected to be averages over
the regulation's averaging period (24 h in the circulated table); ``trailing_mean`` computes
such averages from hourly partial aggregates. The per-site index is the maximum of the
sub-indices (practice; the regulation does not state it explicitly).

The US AQI uses the EPA PM2.5 breakpoints revised on 7 February 2024 (gapped segments,
concentration truncated to 0.1 ug/m3, AQI rounded to an integer).

Throughout, NaN means "not available": missing or invalid input gives NaN out, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.arrays import BoolArray, F64Array, I8Array, I64Array

POLLUTANTS: tuple[str, ...] = ("pm25", "pm10", "so2", "co", "o3", "no2", "hc")
METRIC_OF: dict[str, str] = {p: f"{p}_ugm3" for p in POLLUTANTS}

# Rounding half up tolerates float error: an exact x.5 computed as x.4999999999999 still rounds
# up. Index values are <= 500, where float error is ~1e-13, far below this tolerance.
_HALF_UP_TOL = 1e-9

# --- ISPU (Permen LHK P.14/2020) -------------------------------------------------------------

# ISPU value at the upper end of each band: bands 0-50, 51-100, 101-200, 201-300, >300.
# The ">300" band is interpolated 300 -> 500 at its listed concentration (common practice).
_ISPU_INDEX = np.array([0.0, 50.0, 100.0, 200.0, 300.0, 500.0])

# Upper concentration of each band (ug/m3), Lampiran of P.14/2020, in band order; a leading 0
# is the lower end of the first band (convention (a): contiguous segments).
_ISPU_CONC: dict[str, F64Array] = {
    "pm25": np.array([0.0, 15.5, 55.4, 150.4, 250.4, 500.0]),
    "pm10": np.array([0.0, 50.0, 150.0, 350.0, 420.0, 500.0]),
    "so2": np.array([0.0, 52.0, 180.0, 400.0, 800.0, 1200.0]),
    "co": np.array([0.0, 4000.0, 8000.0, 15000.0, 30000.0, 45000.0]),
    "o3": np.array([0.0, 120.0, 235.0, 400.0, 800.0, 1000.0]),
    "no2": np.array([0.0, 80.0, 200.0, 1130.0, 2260.0, 3000.0]),
    "hc": np.array([0.0, 45.0, 100.0, 215.0, 432.0, 648.0]),
}


@dataclass(frozen=True)
class Category:
    """One category of an index.

    ``colour`` is the colour named by the regulation (ISPU) or by the EPA (US AQI). ``hex`` is a
    UI choice: for ISPU OpenAQ aqi-hub's values (the regulation names colours, not codes), for
    the US AQI the EPA's published RGB. ``lower``/``upper`` are the inclusive integer index range.
    """

    code: int
    name_id: str
    name_en: str
    colour: str
    hex: str
    lower: int
    upper: int


# P.14/2020 categories and colour names. ">300" is capped at 500, the top of the index here.
ISPU_CATEGORIES: tuple[Category, ...] = (
    Category(0, "Baik", "Good", "hijau", "#34cc33", 0, 50),
    Category(1, "Sedang", "Moderate", "biru", "#0070c0", 51, 100),
    Category(2, "Tidak Sehat", "Unhealthy", "kuning", "#ffc100", 101, 200),
    Category(3, "Sangat Tidak Sehat", "Very Unhealthy", "merah", "#ff0000", 201, 300),
    Category(4, "Berbahaya", "Hazardous", "hitam", "#000000", 301, 500),
)

# US EPA AQI categories (Indonesian names are our translation, not an official one).
US_AQI_CATEGORIES: tuple[Category, ...] = (
    Category(0, "Baik", "Good", "green", "#00e400", 0, 50),
    Category(1, "Sedang", "Moderate", "yellow", "#ffff00", 51, 100),
    Category(
        2,
        "Tidak Sehat bagi Kelompok Sensitif",
        "Unhealthy for Sensitive Groups",
        "orange",
        "#ff7e00",
        101,
        150,
    ),
    Category(3, "Tidak Sehat", "Unhealthy", "red", "#ff0000", 151, 200),
    Category(4, "Sangat Tidak Sehat", "Very Unhealthy", "purple", "#8f3f97", 201, 300),
    Category(5, "Berbahaya", "Hazardous", "maroon", "#7e0023", 301, 500),
)


def _round_half_up(x: F64Array) -> F64Array:
    return np.floor(x + (0.5 + _HALF_UP_TOL))


def _category(index: F64Array, uppers: tuple[int, ...]) -> I8Array:
    """Category code: the first band whose upper bound is >= index; -1 for NaN."""
    idx = np.asarray(index, dtype=np.float64)
    nan = np.isnan(idx)
    code = np.searchsorted(np.array(uppers, dtype=np.float64), np.where(nan, 0.0, idx), "left")
    return np.where(nan, -1, code).astype(np.int8)


def ispu_subindex(pollutant: str, conc_ugm3: F64Array) -> tuple[F64Array, BoolArray]:
    """ISPU sub-index of one pollutant (P.14/2020), element-wise.

    ``conc_ugm3``: concentrations in ug/m3, any shape, averaged over the averaging period.
    Returns ``(index, beyond)`` of the same shape. ``index`` is integer-valued float64 (rounded
    half up, 80.7 -> 81). A concentration exactly on a band's upper bound belongs to that band
    (contiguous segments give the same value either way). Above the ">300" column's
    concentration the index is undefined: 500 with ``beyond`` True (our convention). NaN or a
    negative concentration gives NaN with ``beyond`` False.

    Note that contiguous segments round concentrations just above a band's bound to that bound's
    index (PM2.5 15.6 -> 50.1 -> 50, Baik).

    Raises ValueError for a pollutant not in ``POLLUTANTS``.
    """
    if pollutant not in _ISPU_CONC:
        raise ValueError(f"unknown pollutant {pollutant!r}; known: {', '.join(POLLUTANTS)}")
    xb = _ISPU_CONC[pollutant]
    x = np.asarray(conc_ugm3, dtype=np.float64)
    valid = ~np.isnan(x) & (x >= 0.0)
    beyond = valid & (x > xb[-1])
    inside = valid & ~beyond
    xs = np.where(inside, x, 0.0)
    # Band k covers (xb[k-1], xb[k]]; 0 falls in the first band.
    k = np.clip(np.searchsorted(xb, xs, "left"), 1, xb.shape[0] - 1)
    i_lo, i_hi = _ISPU_INDEX[k - 1], _ISPU_INDEX[k]
    x_lo, x_hi = xb[k - 1], xb[k]
    # I = (Ia - Ib) / (Xa - Xb) * (Xx - Xb) + Ib, multiplied first for accuracy.
    index = _round_half_up((i_hi - i_lo) * (xs - x_lo) / (x_hi - x_lo) + i_lo)
    out = np.where(inside, index, np.where(beyond, 500.0, np.nan))
    return out, beyond


def ispu_overall(subindex: F64Array) -> tuple[F64Array, I64Array]:
    """Overall ISPU and dominant pollutant from the sub-indices.

    ``subindex``: shape ``(len(POLLUTANTS), n)``, rows in ``POLLUTANTS`` order, NaN where a
    pollutant is not measured. Returns ``(index, dominant)`` of shape ``(n,)``: the maximum
    over pollutants ignoring NaN (NaN where all are NaN), and the row of the maximum in
    ``POLLUTANTS`` (-1 where all are NaN; ties go to the first in ``POLLUTANTS`` order).
    The maximum rule is practice, not stated explicitly by P.14/2020.
    """
    sub = np.asarray(subindex, dtype=np.float64)
    if sub.ndim != 2 or sub.shape[0] != len(POLLUTANTS):
        raise ValueError(f"subindex must have shape ({len(POLLUTANTS)}, n), got {sub.shape}")
    nan = np.isnan(sub)
    filled = np.where(nan, -np.inf, sub)
    dominant = np.argmax(filled, axis=0).astype(np.int64)  # first maximum on ties
    none = nan.all(axis=0)
    index = np.where(none, np.nan, filled[dominant, np.arange(sub.shape[1])])
    return index, np.where(none, -1, dominant).astype(np.int64)


def ispu_category(index: F64Array) -> I8Array:
    """ISPU category code (``ISPU_CATEGORIES``) of each index, int8.

    0 Baik (<= 50), 1 Sedang (<= 100), 2 Tidak Sehat (<= 200), 3 Sangat Tidak Sehat (<= 300),
    4 Berbahaya (> 300); -1 for NaN. On integer indices this is 0-50, 51-100, 101-200, ...
    """
    return _category(index, tuple(c.upper for c in ISPU_CATEGORIES[:-1]))


# --- US EPA AQI, PM2.5, 2024 revision ---------------------------------------------------------

# Gapped segments in tenths of ug/m3 (integers, so the lookup is exact after truncation):
# 0.0-9.0, 9.1-35.4, 35.5-55.4, 55.5-125.4, 125.5-225.4, 225.5-325.4.
_US_C_LO = np.array([0, 91, 355, 555, 1255, 2255], dtype=np.int64)
_US_C_HI = np.array([90, 354, 554, 1254, 2254, 3254], dtype=np.int64)
_US_I_LO = np.array([0, 51, 101, 151, 201, 301], dtype=np.int64)
_US_I_HI = np.array([50, 100, 150, 200, 300, 500], dtype=np.int64)
# Truncation to 0.1 tolerates float error: 35.4 stored as 35.39999... stays 35.4.
_TRUNC_TOL = 1e-9


def us_aqi_pm25(conc_ugm3: F64Array) -> tuple[F64Array, BoolArray]:
    """US EPA AQI from PM2.5 (2024 breakpoints), element-wise.

    ``conc_ugm3``: PM2.5 in ug/m3 (24-h means for the regulatory AQI), any shape. The
    concentration is truncated to 0.1 ug/m3 (``floor(x * 10 + 1e-9) / 10``) before the lookup,
    then ``I = (Ihi - Ilo) / (Chi - Clo) * (C - Clo) + Ilo`` is rounded half up. Returns
    ``(aqi, beyond)``: integer-valued float64, and True where the truncated concentration is
    above 325.4 (AQI set to 500). NaN or a negative concentration gives NaN, beyond False.
    """
    x = np.asarray(conc_ugm3, dtype=np.float64)
    valid = ~np.isnan(x) & (x >= 0.0)
    # Clip before scaling so that huge values and +inf neither overflow nor cast badly.
    tenths = np.floor(np.minimum(np.where(valid, x, 0.0), 1e4) * 10.0 + _TRUNC_TOL)
    beyond = valid & (tenths > _US_C_HI[-1])
    inside = valid & ~beyond
    t = np.where(inside, tenths, 0.0).astype(np.int64)
    k = np.searchsorted(_US_C_HI, t, "left")  # first segment whose upper bound >= t
    c_lo, c_hi = _US_C_LO[k], _US_C_HI[k]
    i_lo, i_hi = _US_I_LO[k], _US_I_HI[k]
    aqi = _round_half_up((i_hi - i_lo) * (t - c_lo) / (c_hi - c_lo) + i_lo)
    out = np.where(inside, aqi, np.where(beyond, 500.0, np.nan))
    return out, beyond


def us_aqi_category(aqi: F64Array) -> I8Array:
    """US AQI category code (``US_AQI_CATEGORIES``) of each AQI, int8.

    0 Good (<= 50), 1 Moderate (<= 100), 2 Unhealthy for Sensitive Groups (<= 150),
    3 Unhealthy (<= 200), 4 Very Unhealthy (<= 300), 5 Hazardous (> 300); -1 for NaN.
    """
    return _category(aqi, tuple(c.upper for c in US_AQI_CATEGORIES[:-1]))


# --- Averaging --------------------------------------------------------------------------------

HOUR_MS = 3_600_000
# Windows longer than the whole int64 millisecond range (~5.1e12 h) are all the same.
_MAX_SPAN_H = 1 << 44


def trailing_mean(
    series: I64Array,
    hour_ms: I64Array,
    value_sum: F64Array,
    value_n: I64Array,
    at_series: I64Array,
    at_hour_ms: I64Array,
    *,
    window_h: int,
    min_hours: int,
) -> tuple[F64Array, I64Array]:
    """Trailing mean of hourly means, for each target (series, hour).

    Input rows are hourly partial aggregates: ``value_sum`` and ``value_n`` of the readings of
    ``series`` in the hour starting at ``hour_ms`` (Unix ms, a multiple of 3 600 000), in any
    order. Rows of the same (series, hour) merge (sums and counts add); rows with
    ``value_n == 0`` or a non-finite ``value_sum`` are ignored.

    For target ``i`` the window is the hours ``at_hour_ms[i] - (window_h - 1) h`` to
    ``at_hour_ms[i]`` inclusive, in series ``at_series[i]``. Returns ``(mean, hours)``: the mean
    of the hourly means of the window's hours with data (each hour weighs the same, whatever its
    reading count), and how many hours had data; ``mean`` is NaN where ``hours < min_hours``.
    ISPU uses 24 h; the 75 % coverage rule (min_hours 18) is our assumption, not P.14/2020's.

    Raises ValueError for misaligned hours, negative counts, mismatched lengths,
    ``window_h < 1`` or ``min_hours`` outside ``1..window_h``.
    """
    series, hour_ms = np.asarray(series, np.int64), np.asarray(hour_ms, np.int64)
    value_sum, value_n = np.asarray(value_sum, np.float64), np.asarray(value_n, np.int64)
    at_series, at_hour_ms = np.asarray(at_series, np.int64), np.asarray(at_hour_ms, np.int64)
    if window_h < 1:
        raise ValueError(f"window_h must be >= 1, got {window_h}")
    if not 1 <= min_hours <= window_h:
        raise ValueError(f"min_hours must be in 1..window_h ({window_h}), got {min_hours}")
    n_rows = series.shape[0]
    if any(a.ndim != 1 or a.shape[0] != n_rows for a in (hour_ms, value_sum, value_n)):
        raise ValueError("series, hour_ms, value_sum and value_n must be 1-D of equal length")
    if at_series.ndim != 1 or at_hour_ms.shape != at_series.shape:
        raise ValueError("at_series and at_hour_ms must be 1-D of equal length")
    if np.any(hour_ms % HOUR_MS) or np.any(at_hour_ms % HOUR_MS):
        raise ValueError("hour_ms and at_hour_ms must be multiples of 3 600 000 ms")
    if np.any(value_n < 0):
        raise ValueError("value_n must be >= 0")

    keep = (value_n > 0) & np.isfinite(value_sum)
    d_series, d_hour = series[keep], hour_ms[keep] // HOUR_MS
    t_hi = at_hour_ms // HOUR_MS
    t_lo = t_hi - min(window_h - 1, _MAX_SPAN_H)
    n_t = at_series.shape[0]

    # Dense ranks make (series, hour) one sortable int64 key without overflow.
    _, s_rank = np.unique(np.concatenate([d_series, at_series]), return_inverse=True)
    hours, h_rank = np.unique(np.concatenate([d_hour, t_lo, t_hi]), return_inverse=True)
    width = np.int64(hours.shape[0])
    n_d = d_series.shape[0]
    d_key = s_rank[:n_d] * width + h_rank[:n_d]
    t_series = s_rank[n_d:]
    t_key_lo = t_series * width + h_rank[n_d : n_d + n_t]
    t_key_hi = t_series * width + h_rank[n_d + n_t :]

    # Merge duplicate (series, hour) rows; the unique keys come out sorted.
    key, inverse = np.unique(d_key, return_inverse=True)
    sums = np.bincount(inverse, weights=value_sum[keep], minlength=key.shape[0])
    counts = np.zeros(key.shape[0], dtype=np.int64)
    np.add.at(counts, inverse, value_n[keep])
    hourly = sums / np.maximum(counts, 1)

    # Prefix sums of hourly means, centred per series so errors do not grow across series.
    k_series = key // width
    n_series = np.int64(np.max(s_rank, initial=-1) + 1)
    per_series_n = np.bincount(k_series, minlength=n_series)
    centre = np.bincount(k_series, weights=hourly, minlength=n_series) / np.maximum(per_series_n, 1)
    prefix = np.concatenate([[0.0], np.cumsum(hourly - centre[k_series])])

    lo = np.searchsorted(key, t_key_lo, "left")
    hi = np.searchsorted(key, t_key_hi, "right")
    n_hours = (hi - lo).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = centre[t_series] + (prefix[hi] - prefix[lo]) / n_hours
    return np.where(n_hours >= min_hours, mean, np.nan), n_hours
