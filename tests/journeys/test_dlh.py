"""DLH's first day, through the real API server with the DLH field app's key: the bins to
collect today and the route, the villages compared, the air now and over the last day, its
own alarms, and acknowledging one.

Monday 23 March 2026, 12:00 WIB, the first working day after Idul Fitri: no round ran from
Thursday to Sunday (*cuti bersama*), and this morning's round is under way.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from tests.fixtures.journeys import JourneyData
from tests.journeys.truth import (
    DAY_S,
    HOUR_S,
    Faults,
    bin_values,
    collections,
    haversine_m,
    ispu_tables,
    local_midnight_s,
    overflow_hours,
    pm25_trailing_mean,
    report_slots,
    wib,
)
from tests.journeys.walk import Api, Notebook

DLH_RULES = {"bin_overflow", "bin_predicted_full", "bin_fire_risk", "ispu_unhealthy"}
REASONS = {"over_threshold", "predicted_full", "overflow"}
FILL_METRICS = ("fill_pct", "distance_cm")
# Faults that lose, delay or freeze the report showing an emptying.
LOSSES = ("offline", "garbage", "clock_skew", "out_of_order", "stuck", "drift")
POLLUTANTS = ("pm25", "pm10", "so2", "co", "o3", "no2")

pytestmark = pytest.mark.integration


def at(text: str) -> float:
    """Unix seconds of an API time."""
    return datetime.fromisoformat(text).timestamp()


def maybe_at(text: str | None) -> float | None:
    return None if text is None else at(text)


def when(t_s: float | None) -> str:
    return "never" if t_s is None else wib(t_s)


def test_dlh_first_day(journey_data: JourneyData) -> None:
    d = journey_data
    note = Notebook("DLH")
    with Api(d.api, d.keys["dlh"]) as api:
        bins = {b["sensor_id"]: b for b in api.items("/waste/bins")}
        collection_plan(d, note, api, bins, bins_today(d, note, bins))
        villages(d, note, api)
        air(d, note, api)
        alarm_id = alarms(d, note, api, bins)
        acknowledge(d, note, api, alarm_id)
        note.see(f"{api.requests} requests to {d.api}")
    note.done()


def bins_today(d: JourneyData, note: Notebook, bins: dict[str, dict[str, Any]]) -> list[str]:
    """Each bin's fill and reason, as the simulated bin was; returns the bins the simulation
    says are at 80 % or more (where no fault hides their fill)."""
    now_s = d.now_ms // 1000
    faults = Faults(d.labels)
    registered = {s.id: s for s in d.fleet.sensors if s.kind == "waste_bin"}
    note.check(set(bins) == set(registered), f"bins listed {sorted(bins)} != registered")
    next_round_s = local_midnight_s(now_s) + DAY_S + 7 * HOUR_S  # tomorrow's round, 07:00 WIB
    truth_due, wrong_fill = [], []
    for sensor_id, b in sorted(bins.items()):
        fill, reason, ts = b["fill_pct"], b["collection_reason"], at(b["ts"])
        expected = "overflow" if fill >= 100 else "over_threshold" if fill >= 80 else None
        if expected:
            note.check(reason == expected, f"{sensor_id} at {fill} % has reason {reason}")
        else:
            # Full before the next round; the job measures the wait from the bin's last
            # reading, the round from now: between the two, either reason is right.
            full_at = maybe_at(b["predicted_full_at"])
            surely = full_at is not None and full_at <= next_round_s - (now_s - ts)
            maybe = full_at is not None and full_at <= next_round_s
            right = (
                {"predicted_full"} if surely else {"none", "predicted_full"} if maybe else {"none"}
            )
            note.check(
                reason in right,
                f"{sensor_id} at {fill} %, predicted full {b['predicted_full_at']}, has "
                f"reason {reason} (next round {wib(next_round_s)})",
            )
        note.check(b["needs_collection"] == (reason != "none"), f"{sensor_id}: {b}")
        note.check(b["overflowing"] == (fill >= 100), f"{sensor_id} overflowing at {fill} %?")
        # The reading behind the figure is the simulated bin's, unless a fault changed it.
        last = report_slots(d, sensor_id, now_s - 3 * HOUR_S, now_s)
        hit = faults.touching(sensor_id, int(ts * 1000) - 1, d.now_ms, metrics=FILL_METRICS)
        clean = float(bin_values(d, sensor_id, np.array([int(ts)]))[0, 0])
        if not hit and last.size and int(ts) == int(last[-1]):
            if abs(clean - fill) > 0.05:
                wrong_fill.append(f"{sensor_id} {fill} % (simulated {clean} %)")
            if clean >= 80:
                truth_due.append(sensor_id)
    note.check(not wrong_fill, f"fill differs from the simulated bins: {wrong_fill}")
    since_s = d.installed_ms["waste_bin"] // 1000
    emptied: dict[str, float] = {}
    for c in collections(d, since_s, now_s):
        emptied[c.sensor_id] = max(emptied.get(c.sensor_id, 0.0), c.at_s)
    wrong_emptied = []
    for sensor_id, b in sorted(bins.items()):
        shown, real = maybe_at(b["last_emptied_at"]), emptied.get(sensor_id)
        interval = registered[sensor_id].interval_s
        if real is not None and faults.touching(
            sensor_id, int(real * 1000), int(real + interval) * 1000, metrics=FILL_METRICS,
            kinds=LOSSES,
        ):  # fmt: skip
            interval = 7 * HOUR_S  # the report that would show it was lost: a later one does
        if real is None and shown is None:
            continue
        if real is None or shown is None or not real <= shown < real + interval:
            wrong_emptied.append(f"{sensor_id} {when(shown)} (emptied {when(real)})")
    note.see(
        f"bins: {len(bins)}, {sum(b['overflowing'] for b in bins.values())} overflowing; "
        f"last emptied as shown vs by the rounds, where they differ: {wrong_emptied}"
    )
    note.check(not wrong_emptied, f"last emptied differs from the rounds: {wrong_emptied}")
    return truth_due


def collection_plan(
    d: JourneyData, note: Notebook, api: Api, bins: dict[str, dict[str, Any]], truth_due: list[str]
) -> None:
    """The bins to collect today and the truck's route: right bins, right reasons, a real path."""
    plan = api.get("/waste/collection-plan")
    stops = plan["stops"]
    disposal = next(z for z in d.fleet.zones if z.kind == "disposal")
    site = (disposal.lat, disposal.lon)
    reasons = Counter(s["collection_reason"] for s in stops)
    note.see(
        f"collection plan: {len(stops)} stops of {len(bins)} bins ({dict(reasons)}), "
        f"{plan['total_m'] / 1000:.1f} km from the depot {plan['depot']} to "
        f"{disposal.name} (nearest neighbour alone {plan['nearest_neighbour_m'] / 1000:.1f} km)"
    )
    for s in stops:
        note.see(
            f"  stop {s['order']}: {s['sensor_id']} ({s['zone_id']}) {s['fill_pct']} % "
            f"{s['collection_reason']}, leg {s['leg_m'] / 1000:.2f} km"
        )
    note.check(bool(stops), "the plan is empty on the first day after four days without rounds")
    note.check([s["order"] for s in stops] == list(range(1, len(stops) + 1)), "stop order")
    due = {k for k, b in bins.items() if b["needs_collection"]}
    note.check(
        {s["sensor_id"] for s in stops} == due,
        f"stops {sorted(s['sensor_id'] for s in stops)} are not the bins needing collection "
        f"{sorted(due)}",
    )
    note.check(
        set(truth_due) <= {s["sensor_id"] for s in stops},
        f"simulated bins at 80 % or more missing from the plan: "
        f"{sorted(set(truth_due) - {s['sensor_id'] for s in stops})}",
    )
    for s in stops:
        b = bins[s["sensor_id"]]
        note.check(s["collection_reason"] in REASONS, f"stop reason {s['collection_reason']}")
        note.check(
            (s["collection_reason"], s["fill_pct"]) == (b["collection_reason"], b["fill_pct"]),
            f"stop {s} disagrees with /waste/bins {b}",
        )
    note.check(
        tuple(plan["depot"]) == site and tuple(plan["disposal_site"]) == site,
        f"depot {plan['depot']} / disposal {plan['disposal_site']} are not {site}",
    )
    points = [tuple(plan["depot"]), *((s["lat"], s["lon"]) for s in stops), site]
    legs = [haversine_m(a, b) for a, b in itertools.pairwise(points)]
    got = [s["leg_m"] for s in stops] + [plan["last_leg_m"]]
    note.check(
        all(math.isclose(a, b, rel_tol=1e-6, abs_tol=0.5) for a, b in zip(legs, got, strict=True)),
        f"legs {got} are not the distances between the stops {legs}",
    )
    note.check(math.isclose(plan["total_m"], sum(got), rel_tol=1e-9), "total is not the legs")
    note.check(plan["total_m"] <= plan["nearest_neighbour_m"] + 1e-6, "2-opt made it longer")
    # 2-opt has converged: no reversal of a stretch of stops shortens the route.
    better = [
        (i, j)
        for i in range(1, len(points) - 2)
        for j in range(i + 1, len(points) - 1)
        if haversine_m(points[i - 1], points[j]) + haversine_m(points[i], points[j + 1])
        < haversine_m(points[i - 1], points[i]) + haversine_m(points[j], points[j + 1]) - 1e-3
    ]
    note.check(not better, f"reversing stops {better} would shorten the route")


def villages(d: JourneyData, note: Notebook, api: Api) -> None:
    """Villages compared, against what the simulated rounds really did since the bins came."""
    now_s, since_s = d.now_ms // 1000, d.installed_ms["waste_bin"] // 1000
    faults = Faults(d.labels)
    figures = {v["zone_id"]: v for v in api.items("/waste/villages")}
    truth = collections(d, since_s, now_s)
    members: dict[str, list[str]] = {}
    for s in d.fleet.sensors:
        if s.kind == "waste_bin" and s.zone:
            members.setdefault(s.zone, []).append(s.id)
    note.check(set(figures) == set(members), f"villages {sorted(figures)} != {sorted(members)}")
    days = (now_s - since_s) / DAY_S
    expected = {}
    for zone_id, ids in sorted(members.items()):
        mine = [c for c in truth if c.sensor_id in ids]
        fills = [c.fill_before_pct for c in mine]
        expected[zone_id] = {
            "collections": len(mine),
            "per_week": len(mine) / days * 7,
            "mean_fill": float(np.mean(fills)) if fills else math.nan,
            "wasted": sum(f < 40 for f in fills),
            "overflow_h": sum(overflow_hours(d, i, since_s, now_s) for i in ids),
        }
    note.see(f"villages compared ({days:.1f} days of bins; simulated rounds in brackets):")
    for zone_id, v in sorted(figures.items()):
        e = expected.get(zone_id)
        if e is None:
            continue
        note.see(
            f"  {zone_id} {v['name']}: {v['bins']} bins, {v['collections']} collections "
            f"[{e['collections']}], {v['collections_per_week']:.2f}/week [{e['per_week']:.2f}] "
            f"over {v['period_days']} days, fill at collection "
            f"{v['mean_fill_at_collection_pct'] or math.nan:.1f} % [{e['mean_fill']:.1f}], "
            f"wasted trips {v['wasted_trips']} [{e['wasted']}], overflow "
            f"{v['overflow_hours']:.1f} h [{e['overflow_h']:.1f}]"
        )
        note.check(v["bins"] == len(members[zone_id]), f"{zone_id} bins {v['bins']}")
        spikes = [
            f"{f.sensor_id} {wib(f.start_ms / 1000)}"
            for i in members[zone_id]
            for f in faults.touching(i, since_s * 1000, d.now_ms, metrics=("fill_pct",))
            if f.kind == "spike"
        ]
        note.check(
            v["collections"] == e["collections"],
            f"{zone_id}: {v['collections']} collections, but the rounds emptied its bins "
            f"{e['collections']} times; injected fill_pct spikes there: {spikes}",
        )
        note.check(
            math.isclose(v["collections_per_week"], e["per_week"], rel_tol=0.15),
            f"{zone_id}: {v['collections_per_week']:.2f} collections a week, but its bins were "
            f"emptied {e['per_week']:.2f} times a week in the {days:.1f} days they have reported "
            f"(the figure divides by the {v['period_days']}-day period)",
        )
        if v["mean_fill_at_collection_pct"] is not None and not math.isnan(e["mean_fill"]):
            note.check(
                abs(v["mean_fill_at_collection_pct"] - e["mean_fill"]) <= 5,
                f"{zone_id}: fill at collection {v['mean_fill_at_collection_pct']:.1f} %, "
                f"simulated {e['mean_fill']:.1f} %",
            )
        note.check(v["wasted_trips"] <= v["collections"], f"{zone_id} wasted > collections")
        note.check(
            abs(v["wasted_trips"] - e["wasted"]) <= 1,
            f"{zone_id}: {v['wasted_trips']} wasted trips, simulated {e['wasted']}",
        )
        note.check(
            math.isclose(v["overflow_hours"], e["overflow_h"], rel_tol=0.1, abs_tol=2),
            f"{zone_id}: {v['overflow_hours']:.1f} overflow hours, simulated {e['overflow_h']:.1f}",
        )
    # The ranking a DLH officer makes (who collects fullest, who overflows most) must be the
    # one the simulated villages have, wherever the villages differ clearly.
    for field, key, margin in (
        ("mean_fill_at_collection_pct", "mean_fill", 5.0),
        ("overflow_hours", "overflow_h", 10.0),
    ):
        for a, b in itertools.combinations(sorted(set(figures) & set(expected)), 2):
            ta, tb = expected[a][key], expected[b][key]
            fa, fb = figures[a][field], figures[b][field]
            if None in (fa, fb) or math.isnan(ta) or math.isnan(tb) or abs(ta - tb) < margin:
                continue
            note.check(
                (fa > fb) == (ta > tb),
                f"by {field}, {a} ({fa:.1f}) vs {b} ({fb:.1f}) is ranked the other way round "
                f"from the simulated villages ({ta:.1f} vs {tb:.1f})",
            )


def air(d: JourneyData, note: Notebook, api: Api) -> None:
    """ISPU now at every station and over the last 24 hours, by the tables of ispu.md."""
    tables = ispu_tables()
    now_s = d.now_ms // 1000
    stations = api.items("/air/stations")
    registered = sorted(s.id for s in d.fleet.sensors if s.kind == "air_quality")
    note.check(sorted(s["sensor_id"] for s in stations) == registered, "stations listed")
    for station in stations:
        sid, current = station["sensor_id"], station["current"]
        if not note.check(current is not None, f"{sid} has no ISPU now"):
            continue
        history = api.get(f"/air/stations/{sid}/history")["hours"]
        hours = [at(h["hour"]) for h in history]
        truth = pm25_trailing_mean(d, sid, now_s)
        ispus = [h["ispu"] for h in history]
        note.see(
            f"{sid}: ISPU {current['ispu']:.0f} {current['category']} ({current['dominant']}) "
            f"at {current['hour'][11:16]}, PM2.5 {current['pm25_ugm3']:.1f} µg/m³ (simulated "
            f"{truth:.1f}), US AQI {current['us_aqi']:.0f}; last 24 h {min(ispus):.0f}-"
            f"{max(ispus):.0f}, {dict(Counter(h['category'] for h in history))}"
        )
        note.check(at(current["hour"]) == now_s, f"{sid} current hour {current['hour']}")
        note.check(len(history) == 24, f"{sid}: {len(history)} hours of history, not 24")
        note.check(
            all(b == a + HOUR_S for a, b in itertools.pairwise(hours)) and history[-1] == current,
            f"{sid}: history hours {[h['hour'][5:16] for h in history]} are not the 24 hours "
            f"up to the current one",
        )
        note.check(
            math.isclose(current["pm25_ugm3"], truth, rel_tol=0.05, abs_tol=0.5),
            f"{sid}: PM2.5 {current['pm25_ugm3']:.2f} µg/m³, the simulated station's 24-hour "
            f"mean is {truth:.2f}",
        )
        for h in history:
            subs = {p: h[f"{p}_ispu"] for p in POLLUTANTS if h[f"{p}_ispu"] is not None}
            where = f"{sid} at {h['hour'][5:16]}"
            note.check(
                bool(subs) and h["ispu"] == max(subs.values()),
                f"{where}: ISPU {h['ispu']} is not the largest sub-index {subs}",
            )
            note.check(subs.get(h["dominant"]) == h["ispu"], f"{where}: dominant {h['dominant']}")
            note.check(
                h["category"] == tables.category(h["ispu"]),
                f"{where}: ISPU {h['ispu']} is {tables.category(h['ispu'])} by ispu.md, the API "
                f"says {h['category']}",
            )
            if h["pm25_ugm3"] is not None:
                note.check(
                    h["pm25_ispu"] == tables.subindex("pm25", h["pm25_ugm3"]),
                    f"{where}: PM2.5 {h['pm25_ugm3']:.2f} µg/m³ is ISPU "
                    f"{tables.subindex('pm25', h['pm25_ugm3'])} by ispu.md, not {h['pm25_ispu']}",
                )
                note.check(
                    h["us_aqi"] is not None
                    and abs(h["us_aqi"] - tables.us_aqi(h["pm25_ugm3"])) <= 1,
                    f"{where}: US AQI {h['us_aqi']}, by ispu.md {tables.us_aqi(h['pm25_ugm3'])}",
                )


def alarms(d: JourneyData, note: Notebook, api: Api, bins: dict[str, dict[str, Any]]) -> int:
    """DLH's own alarms, each explained by what the bins and stations really did; returns the
    alarm the officer acknowledges."""
    now_s = d.now_ms // 1000
    faults = Faults(d.labels)
    listed = api.items("/alarms")
    note.see(f"alarms: {dict(Counter((a['rule'], a['state']) for a in listed))}")
    note.check(
        {a["rule"] for a in listed} <= DLH_RULES,
        f"alarms of other roles shown: {sorted({a['rule'] for a in listed} - DLH_RULES)}",
    )
    for rule in ("crowding", "sensor_offline"):
        status, _ = api.call("GET", "/alarms", rule=rule)
        note.check(status == 403, f"DLH asking for {rule} alarms got {status}, not 403")
    active = [a for a in listed if a["state"] != "cleared"]
    above_clearing = {k for k, b in bins.items() if b["fill_pct"] >= 90}  # clears below 90 %
    overflowing = set()
    for sensor_id in bins:
        slots = report_slots(d, sensor_id, now_s - HOUR_S, now_s)
        if (bin_values(d, sensor_id, slots)[:, 0] >= 100).all():
            overflowing.add(sensor_id)
    alarmed = {a["sensor_id"] for a in active if a["rule"] == "bin_overflow"}
    note.see(
        f"overflow alarms open for {sorted(alarmed)}; simulated bins over 100 % all the last "
        f"hour: {sorted(overflowing)}"
    )
    note.check(
        alarmed == overflowing,
        f"bin_overflow alarms {sorted(alarmed)} are not the overflowing bins {sorted(overflowing)}",
    )
    note.check(
        alarmed <= above_clearing,
        f"overflow alarms open for bins below 90 %: {sorted(alarmed - above_clearing)}",
    )
    for a in (a for a in listed if a["rule"] == "bin_fire_risk"):
        opened = at(a["opened_at"])
        slots = report_slots(d, a["sensor_id"], int(opened) - 2 * HOUR_S, int(opened))
        hottest = float(bin_values(d, a["sensor_id"], slots)[:, 3].max())
        glitch = faults.touching(
            a["sensor_id"], int(opened - 2 * HOUR_S) * 1000, int(opened) * 1000, metrics=("temp_c",)
        )
        note.see(
            f"fire risk alarm {a['alarm_id']} on {a['sensor_id']} {wib(opened)} "
            f"({a['state']}): the bin was at most {hottest:.1f} °C in the 2 hours before; "
            f"injected: {[(f.kind, f.metric, wib(f.start_ms / 1000)) for f in glitch]}"
        )
        note.check(
            hottest >= 45,
            f"critical fire-risk alarm {a['alarm_id']} on {a['sensor_id']} at {wib(opened)}, "
            f"but the bin was never above {hottest:.1f} °C; injected temp_c faults before it: "
            f"{[(f.kind, wib(f.start_ms / 1000)) for f in glitch if f.metric == 'temp_c']}",
        )
    stations = {s["sensor_id"]: s["current"] for s in api.items("/air/stations")}
    unhealthy = {k for k, c in stations.items() if c and c["ispu"] >= 101}
    note.check(
        {a["sensor_id"] for a in active if a["rule"] == "ispu_unhealthy"} == unhealthy,
        f"ispu_unhealthy alarms do not match the stations at 101 or more {sorted(unhealthy)}",
    )
    waiting = sorted((a for a in active if a["state"] == "open"), key=lambda a: a["opened_at"])
    assert waiting, f"no open DLH alarm to acknowledge: {listed}"
    return int(waiting[0]["alarm_id"])


def acknowledge(d: JourneyData, note: Notebook, api: Api, alarm_id: int) -> None:
    """The officer acknowledges an alarm and sees it acknowledged by the app's key name."""
    status, body = api.call("POST", f"/alarms/{alarm_id}/acknowledge")
    assert status == 200, f"acknowledging alarm {alarm_id}: {status} {body}"
    name = d.key_names["dlh"]
    note.see(f"acknowledged alarm {alarm_id} ({body['rule']} {body['sensor_id']}): {body}")
    note.check(
        (body["state"], body["acknowledged_by"]) == ("acknowledged", name)
        and body["acknowledged_at"] is not None,
        f"the acknowledgement answered {body}",
    )
    acked = {a["alarm_id"]: a for a in api.items("/alarms", state="acknowledged")}
    note.check(
        alarm_id in acked and acked[alarm_id]["acknowledged_by"] == name,
        f"alarm {alarm_id} is not listed as acknowledged by {name!r}: {acked}",
    )
    still_open = {a["alarm_id"] for a in api.items("/alarms", state="open")}
    note.check(alarm_id not in still_open, f"alarm {alarm_id} is still listed open")
    again, body = api.call("POST", f"/alarms/{alarm_id}/acknowledge")
    note.check(again == 409, f"acknowledging it again answered {again}, not 409: {body}")
