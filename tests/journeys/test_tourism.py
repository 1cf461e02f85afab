"""The tourism office's first day, through the real API server with the office board's key:
every zone now against its capacity, today against the typical same hour of the week, and
its crowding alarms.

Monday 23 March 2026, 12:00 WIB, the fourth day of Idul Fitri: families are out (Lebaran
week), a week after a quiet Ramadan Monday; yesterday the crowds filled the museum.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from tests.fixtures.journeys import JourneyData
from tests.journeys.truth import (
    DAY_S,
    HOUR_S,
    Faults,
    arrivals_between,
    counters,
    group,
    local_midnight_s,
    offline_now,
    wib,
    zone_counts,
)
from tests.journeys.walk import Api, Notebook

WEEK_S = 7 * DAY_S
HARMLESS = ("duplicate",)  # a message sent twice is stored once: the counts are the same
CLOSING_MIN = 18 * 60  # PANTAU_PROCESS_CLOSING_TIME's default; a zone's params.closing wins
# Fruin's walkway levels of service (Pedestrian Planning and Design, 1971): the least area
# per person (m²) of levels A..E; below the last, F.
FRUIN_M2 = (("A", 3.24), ("B", 2.32), ("C", 1.39), ("D", 0.93), ("E", 0.46))

pytestmark = pytest.mark.integration


def seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def fruin(density: float) -> str:
    area = math.inf if density == 0 else 1 / density
    return next((level for level, least in FRUIN_M2 if area >= least * (1 - 1e-9)), "F")


def crowding(ratio: float) -> str:
    if ratio > 1.0:
        return "over capacity"
    return "crowded" if ratio >= 0.9 else "busy" if ratio >= 0.7 else "normal"


def closing_s(d: JourneyData, zone_id: str, before_s: int) -> int:
    """The zone's last closing time (registered, else the default) before ``before_s``."""
    text = str(d.zone(zone_id).params.get("closing", ""))
    minute = int(text[:2]) * 60 + int(text[3:5]) if text else CLOSING_MIN
    at = local_midnight_s(before_s) + minute * 60
    return at if at < before_s else at - DAY_S


def test_tourism_first_day(journey_data: JourneyData) -> None:
    d = journey_data
    note = Notebook("tourism")
    with Api(d.api, d.keys["tourism"]) as api:
        zones = {z["zone_id"]: z for z in api.items("/tourism/zones")}
        faulted = zones_now(d, note, zones)
        typical(d, note, zones, faulted)
        crowding_alarms(d, note, api)
        note.see(f"{api.requests} requests to {d.api}")
    note.done()


def zones_now(d: JourneyData, note: Notebook, zones: dict[str, dict[str, Any]]) -> set[str]:
    """Every zone now: plausible, self-consistent, and the simulated crowd where no fault hid
    it. Returns the zones whose counters had a fault since their session began."""
    now_s = d.now_ms // 1000
    faults = Faults(d.labels)
    offline = offline_now(d)
    gates: dict[str, list[str]] = {}
    for s in d.fleet.sensors:
        if s.kind == "footfall" and s.zone:
            gates.setdefault(s.zone, []).append(s.id)
    note.check(set(zones) == set(gates), f"zones {sorted(zones)} != {sorted(gates)}")
    faulted = set()
    for zone_id, z in sorted(zones.items()):
        if zone_id not in gates:
            continue
        opened = closing_s(d, zone_id, now_s)
        truth = zone_counts(d, zone_id, opened, now_s)
        hits = [
            f"{f.kind} {f.metric or 'device'} {f.sensor_id} {wib(f.start_ms / 1000)}"
            for c in gates[zone_id]
            for f in faults.touching(c, (opened - HOUR_S) * 1000, d.now_ms)
            if f.kind not in HARMLESS
        ]
        if hits:
            faulted.add(zone_id)
        cap, area = z["capacity_persons"], z["area_m2"]
        note.see(
            f"{zone_id} {z['name']} at {z['ts'][11:16]}: {z['occupancy']:.0f} inside "
            f"(simulated {truth.occupancy:.0f}) of {cap}, {z['crowding']}, density "
            f"{z['density_ppm2']} /m² ({z['fruin_level']}), {z['visitors_today']:.0f} visitors "
            f"today (simulated {truth.visitors:.0f}); faults since opening: {hits or 'none'}"
        )
        occupancy, visitors = z["occupancy"], z["visitors_today"]
        note.check(0 <= occupancy <= visitors, f"{zone_id}: {occupancy} inside of {visitors}")
        note.check(cap is None or occupancy <= 2 * cap, f"{zone_id}: {occupancy} inside, {cap}")
        if cap:
            note.check(
                math.isclose(z["capacity_ratio"], occupancy / cap, rel_tol=1e-9),
                f"{zone_id}: capacity ratio {z['capacity_ratio']}",
            )
            note.check(
                z["crowding"] == crowding(occupancy / cap),
                f"{zone_id}: {occupancy / cap:.2f} of capacity is {z['crowding']}",
            )
        if area:
            density = occupancy / area
            note.check(
                z["density_ppm2"] is not None and math.isclose(z["density_ppm2"], density),
                f"{zone_id}: density {z['density_ppm2']} is not {occupancy} / {area} m²",
            )
            note.check(
                z["fruin_level"] == fruin(density),
                f"{zone_id}: Fruin level {z['fruin_level']} for {density} /m²",
            )
        else:
            note.check(z["density_ppm2"] is None, f"{zone_id}: density without an area")
        silent = [c for c in gates[zone_id] if c in offline]
        if silent and len(silent) == len(gates[zone_id]):
            since = min(offline[c][1] for c in silent) // 1000
            note.check(
                seconds(z["ts"]) == zone_counts(d, zone_id, opened, since).ts_s,
                f"{zone_id}: its counters are offline since {wib(since)}, its newest count "
                f"is {z['ts']}",
            )
        else:
            note.check(seconds(z["ts"]) >= now_s - 16 * 60, f"{zone_id}: stale at {z['ts']}")
        if not hits:
            note.check(
                (occupancy, visitors, seconds(z["ts"]))
                == (truth.occupancy, truth.visitors, truth.ts_s),
                f"{zone_id}: {occupancy:.0f} inside and {visitors:.0f} visitors at {z['ts']}, "
                f"the simulated counters say {truth.occupancy:.0f} and {truth.visitors:.0f} at "
                f"{wib(truth.ts_s)}",
            )
        # "Today" starts when the zone opens: nobody may come between its registered closing
        # and midnight, or yesterday evening's visitors are counted as today's.
        evening = arrivals_between(d, zone_id, opened, local_midnight_s(now_s))
        note.check(
            evening == 0,
            f"{zone_id}: {evening} of today's {visitors:.0f} visitors came yesterday after "
            f"{wib(opened)}, the closing Pantau knows for it (params.closing "
            f"{d.zone(zone_id).params.get('closing')!r}); the simulated site is open later",
        )
    return faulted


def typical(
    d: JourneyData, note: Notebook, zones: dict[str, dict[str, Any]], faulted: set[str]
) -> None:
    """Today against the same hour of last week: the figure, and the simulated week."""
    now_s = d.now_ms // 1000
    faults = Faults(d.labels)
    g = group(d.sims["footfall"])
    today, last_week = (now_s + 7 * HOUR_S) // DAY_S, (now_s - WEEK_S + 7 * HOUR_S) // DAY_S
    model = counters(d.sims["footfall"])
    expected_today, expected_then = model.expected(today), model.expected(last_week)
    end_of_hour = now_s - now_s % HOUR_S + HOUR_S
    for zone_id, z in sorted(zones.items()):
        opened = closing_s(d, zone_id, now_s)
        then = zone_counts(d, zone_id, opened - WEEK_S, now_s - WEEK_S).visitors
        by_end = zone_counts(d, zone_id, opened - WEEK_S, end_of_hour - WEEK_S).visitors
        mine = [i for i, c in enumerate(g.ids) if d.zone_of(c) == zone_id]
        ratio = float(np.sum(expected_today[mine]) / np.sum(expected_then[mine]))
        hits = [
            f"{f.kind} {f.metric or 'device'} {f.sensor_id} {wib(f.start_ms / 1000)}"
            for i in mine
            for f in faults.touching(
                g.ids[i], (opened - WEEK_S - HOUR_S) * 1000, (end_of_hour - WEEK_S) * 1000
            )
            if f.kind not in HARMLESS
        ]
        typ, vs = z["typical_to_date"], z["vs_typical"]
        note.see(
            f"{zone_id}: {z['visitors_today']:.0f} visitors vs typical {typ} -> "
            f"{vs and round(vs, 2)}; last week by {wib(now_s - WEEK_S)} {then:.0f} (by "
            f"{wib(end_of_hour - WEEK_S)}: {by_end:.0f}), expected ratio {ratio:.1f}; "
            f"faults then: {hits or 'none'}"
        )
        if not note.check(typ is not None, f"{zone_id}: no typical after a week of counts"):
            continue
        note.check(
            vs is None
            if typ == 0
            else vs is not None and math.isclose(vs, z["visitors_today"] / typ, rel_tol=1e-9),
            f"{zone_id}: vs typical {vs} is not {z['visitors_today']} / {typ}",
        )
        if hits:
            continue
        note.check(
            typ == then,
            f"{zone_id}: typical {typ:.0f} by {wib(now_s)}, but last week the zone had "
            f"{then:.0f} visitors by {wib(now_s - WEEK_S)} ({by_end:.0f} by the end of that "
            f"hour)",
        )
        if zone_id not in faulted and typ >= 20 and vs is not None:
            note.check(
                ratio / 2 <= vs <= ratio * 2,
                f"{zone_id}: {vs:.2f} x typical, the simulated Lebaran Monday against a Ramadan "
                f"Monday is {ratio:.1f} x",
            )


def crowding_alarms(d: JourneyData, note: Notebook, api: Api) -> None:
    """Only crowding alarms, and one for each zone the crowds filled yesterday."""
    now_s = d.now_ms // 1000
    listed = api.items("/alarms")
    rules = {a["rule"] for a in listed}
    note.see(
        f"alarms: {[(a['zone_id'], a['state'], a['opened_at'], a['cleared_at']) for a in listed]}"
    )
    note.check(rules <= {"crowding"}, f"alarms of other roles shown: {sorted(rules)}")
    for rule in ("bin_overflow", "sensor_offline"):
        status, _ = api.call("GET", "/alarms", rule=rule)
        note.check(status == 403, f"the tourism office asking for {rule} got {status}, not 403")
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for a in listed:
        by_zone.setdefault(a["zone_id"], []).append(a)
    for zone_id in sorted({s.zone for s in d.fleet.sensors if s.kind == "footfall" and s.zone}):
        yesterday_close = closing_s(d, zone_id, now_s)
        y = zone_counts(d, zone_id, yesterday_close - DAY_S, yesterday_close)
        cap = d.zone(zone_id).capacity_persons or math.inf
        seen = [
            a
            for a in by_zone.get(zone_id, [])
            if yesterday_close - DAY_S <= seconds(a["opened_at"]) <= yesterday_close
        ]
        if y.over_capacity_min:
            note.see(
                f"{zone_id} yesterday: over capacity for {y.over_capacity_min} min from "
                f"{wib(y.first_over_s)}, peak {y.peak:.0f} of {cap}; crowding alarms "
                f"{[(a['state'], a['opened_at'], a['cleared_at']) for a in seen]}"
            )
        if y.over_capacity_min >= 45:
            if note.check(
                len(seen) == 1,
                f"{zone_id} was over capacity for {y.over_capacity_min} min yesterday from "
                f"{wib(y.first_over_s)}: {len(seen)} crowding alarms, not one",
            ):
                opened = seconds(seen[0]["opened_at"])
                note.check(
                    y.first_over_s <= opened <= y.first_over_s + y.over_capacity_min * 60 + 1800,
                    f"{zone_id}: crowding alarm opened {seen[0]['opened_at']}, the crowd came "
                    f"{wib(y.first_over_s)}",
                )
                note.check(
                    seen[0]["state"] == "cleared",
                    f"{zone_id}: yesterday's alarm is still {seen[0]['state']} this noon",
                )
        elif y.peak < 0.9 * cap:
            note.check(not seen, f"{zone_id}: crowding alarms {seen} at a peak of {y.peak:.0f}")
    today = [a for a in listed if seconds(a["opened_at"]) > now_s - 12 * HOUR_S]
    note.check(not today, f"crowding alarms this morning, when no zone was full: {today}")
