"""Jepara's calendar for the signal models: local time, weekdays, pasaran, holidays, seasons.

Jepara keeps Western Indonesian Time (WIB, UTC+7, no daylight saving). Days are numbered as
local days since 1970-01-01 (WIB), so that everything daily is an integer array. All functions
are pure and vectorized.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from processing.arrays import BoolArray, F64Array, I64Array

WIB_OFFSET_S = 7 * 3600
DAY_S = 86_400
_EPOCH = date(1970, 1, 1).toordinal()


def day_number(d: date) -> int:
    """The local day number of a calendar date."""
    return d.toordinal() - _EPOCH


def local_day(t_s: I64Array | F64Array) -> I64Array:
    """Local (WIB) day number of Unix times in seconds."""
    day: I64Array = np.floor_divide(np.asarray(t_s) + WIB_OFFSET_S, DAY_S).astype(np.int64)
    return day


def day_start_s(day: I64Array | int) -> I64Array:
    """Unix time (s) of local midnight starting ``day``."""
    start: I64Array = np.asarray(day, dtype=np.int64) * DAY_S - WIB_OFFSET_S
    return start


def local_hour(t_s: I64Array | F64Array) -> F64Array:
    """Hour of the local day, in [0, 24)."""
    hour: F64Array = np.mod(np.asarray(t_s, dtype=np.float64) + WIB_OFFSET_S, DAY_S) / 3600.0
    return hour


def weekday(day: I64Array) -> I64Array:
    """0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday)."""
    wd: I64Array = np.mod(day + 3, 7)
    return wd


def pasaran(day: I64Array) -> I64Array:
    """Day of the Javanese five-day market week: 0 Legi, 1 Pahing, 2 Pon, 3 Wage, 4 Kliwon.

    Anchored on 17 August 1945, a Jumat Legi; 1970-01-01 is then Kamis Wage. Village markets
    (pasar) in Central Java still open on their pasaran day.
    """
    p: I64Array = np.mod(day + 3, 5)
    return p


def month_and_doy(day: I64Array) -> tuple[I64Array, I64Array]:
    """Calendar month (1-12) and day of year (0-365) of local days."""
    d = np.asarray(day, dtype=np.int64).astype("datetime64[D]")
    month: I64Array = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    doy: I64Array = (d - d.astype("datetime64[Y]")).astype(np.int64)
    return month, doy


# 1 Syawal (Idul Fitri) as observed in Indonesia. 2024 and 2025 are the government's sidang isbat
# decisions. 2026 is the first day of the 20-21 March holiday in the 2026 joint ministerial decree
# (SKB 3 Menteri); conjunction is 19 March 08:25 WIB, so the MABIMS criterion (altitude 3 deg,
# elongation 6.4 deg) may put 1 Syawal on the 21st. 2027 and 2028 are computed, not decreed:
# conjunction (Meeus, Astronomical Algorithms ch. 49) on 8 March 2027 16:31 WIB and 25 February
# 2028 17:38 WIB, both before or at sunset, so the crescent is first seen the next evening and
# 1 Syawal is the day after that. Treat 2027-2028 as +-1 day.
IDUL_FITRI = tuple(
    day_number(date.fromisoformat(d))
    for d in ("2024-04-10", "2025-03-31", "2026-03-20", "2027-03-10", "2028-02-27")
)
# Outside 2024-2028 the date is extrapolated by whole Islamic years of 354.367 days from the
# nearest known one (about +-1 day): good enough for traffic patterns, not for a calendar.
ISLAMIC_YEAR_D = 354.367
_KNOWN = np.array(IDUL_FITRI, dtype=np.int64)

# Fixed national holidays (Keppres / UU 24/1953 and later): New Year, Labour Day, Pancasila Day,
# Independence Day, Christmas. Moving ones other than Idul Fitri (Idul Adha, Nyepi, Waisak, ...)
# are not modelled.
FIXED_HOLIDAYS = ((1, 1), (5, 1), (6, 1), (8, 17), (12, 25))


def idul_fitri_offset(day: I64Array) -> I64Array:
    """Days since the nearest Idul Fitri (negative before it), within about +-177 days."""
    day = np.asarray(day, dtype=np.int64)
    nearest_known = _KNOWN[np.abs(day[..., None] - _KNOWN).argmin(axis=-1)]
    years = np.rint((day - nearest_known) / ISLAMIC_YEAR_D)
    fitri = nearest_known + np.rint(years * ISLAMIC_YEAR_D).astype(np.int64)
    offset: I64Array = day - fitri
    return offset


def day_of_month(day: I64Array) -> I64Array:
    """Day of the month (1-31) of local days."""
    d = np.asarray(day, dtype=np.int64).astype("datetime64[D]")
    dom: I64Array = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return dom


def is_fixed_holiday(day: I64Array) -> BoolArray:
    """Whether each day is one of the fixed national holidays."""
    month, _ = month_and_doy(day)
    dom = day_of_month(day)
    out = np.zeros(month.shape, dtype=bool)
    for m, dd in FIXED_HOLIDAYS:
        out |= (month == m) & (dom == dd)
    return out


def is_public_holiday(day: I64Array) -> BoolArray:
    """Fixed national holidays and the two days of Idul Fitri."""
    offset = idul_fitri_offset(day)
    holiday: BoolArray = is_fixed_holiday(day) | ((offset >= 0) & (offset <= 1))
    return holiday


def dryness(doy: I64Array | F64Array) -> F64Array:
    """Seasonal dryness in [0, 1]: 1 at the height of the dry season (early August), 0 in
    the wettest weeks (early February). Jepara's dry season runs June to September, the west
    monsoon rains December to March."""
    d: F64Array = 0.5 + 0.5 * np.cos(2 * np.pi * (np.asarray(doy, dtype=np.float64) - 213) / 365.25)
    return d
