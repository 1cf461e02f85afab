"""monitor.tourism: a zone's closing time, from its params or the setting."""

from __future__ import annotations

from datetime import time

from monitor.tourism import closing_minute


def test_closing_minute_from_the_setting_or_the_zone():
    assert closing_minute({}, time(18, 0)) == 18 * 60
    assert closing_minute({}, time(0, 0)) == 0
    assert closing_minute({"capacity_note": "x"}, time(17, 45)) == 17 * 60 + 45
    # A zone's params.closing (the fleet file's HH:MM text) overrides the setting.
    assert closing_minute({"closing": "21:30"}, time(18, 0)) == 21 * 60 + 30
    assert closing_minute({"closing": "02:00"}, time(18, 0)) == 2 * 60


def test_a_closing_that_is_no_time_of_day_falls_back_to_the_setting(caplog):
    # A zone's params are free JSON in the registry: a value the job cannot read as HH:MM
    # must not stop the tourism figures (the session day would refuse minute 1500).
    for closing in ("25:00", "24:00", "18", "late", "", "-1:30", "18:60", 1800):
        assert closing_minute({"closing": closing}, time(18, 0)) == 18 * 60
    assert closing_minute({"closing": "7:05"}, time(18, 0)) == 7 * 60 + 5
    for _ in range(3):  # the job runs every 30 s: warned once per value, not every run
        closing_minute({"closing": "half past six"}, time(17, 0))
    warned = [r.getMessage() for r in caplog.records if "'half past six'" in r.getMessage()]
    assert len(warned) == 1
