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
