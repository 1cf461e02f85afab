"""`pantau demo` the way a newcomer runs it: for days (at high speed, faults on), rerun on its
own state, and interrupted with its output piped into a reader that is gone. Real servers, a
private state directory and free ports each time; every view is read through the real API."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cli.demo_output import Console, RateWindow
from cli.demo_plan import BATCH_S, CATCH_UP_SPEED, DAY_S, HOUR_S, make_plan
from ops.stack.processes import free_port, is_ours, port_open
from simulators.labels import Label, read_csv
from tests.fixtures.commands import pantau_env, run_pantau
from tests.fixtures.stack import make_state_dir

NOW = 1_796_170_000  # 2026-12-02 07:46:40 WIB
LIVE_READY = "Ctrl-C stops the demo."
CATEGORIES = {"Baik", "Sedang", "Tidak Sehat", "Sangat Tidak Sehat", "Berbahaya"}


# -- the timeline, pure ----------------------------------------------------------------------


def simulate_span_s(start: int, end: int) -> int:
    """The span `pantau simulate --backfill DAYS` covers for the DAYS the demo passes it."""
    return int(float(repr((end - start) / 86400)) * 86_400)


@pytest.mark.parametrize("history_days", [0.1, 0.5, 1, 3.3, 29, 90])
def test_history_is_whole_hours_of_days_that_simulate_covers_exactly(history_days: float) -> None:
    plan = make_plan(
        now_s=NOW, history_days=history_days, speed=1, duration_s=None, newest_s=None,
        processed_s=None,
    )  # fmt: skip
    assert plan.backfill, plan
    for (start, end), following in zip(plan.backfill, [*plan.backfill[1:], None], strict=True):
        assert start % BATCH_S == 0  # a batch ends at a whole hour
        assert end % BATCH_S == 0
        assert 0 < end - start <= DAY_S
        assert simulate_span_s(start, end) == end - start  # no second lost to rounding
        if following is not None:
            assert following[0] == end  # no gap, no overlap
    assert plan.backfill[-1][1] == plan.live_start_s == NOW // HOUR_S * HOUR_S
    assert abs(plan.history_s - history_days * DAY_S) <= HOUR_S
    # The job runs at the end of every day, so its 24 hours of tourism rows leave none out.
    assert plan.jobs[-1] == plan.live_start_s
    assert all(b - a == DAY_S for a, b in zip(plan.jobs, plan.jobs[1:], strict=False))
    assert plan.jobs[0] - plan.backfill[0][0] <= DAY_S
    assert plan.live_speed == CATCH_UP_SPEED  # catches up the last part hour, then real time


def test_accelerated_live_starts_where_it_reaches_the_present_at_the_end() -> None:
    plan = make_plan(
        now_s=NOW, history_days=1, speed=1000, duration_s=100, newest_s=None, processed_s=None
    )
    assert plan.live_speed == 1000
    assert NOW - plan.live_start_s == pytest.approx(999 * 100, abs=HOUR_S)
    assert plan.backfill[-1][1] == plan.live_start_s


def test_rerun_backfills_only_the_gap_and_processes_only_what_is_new() -> None:
    newest, processed = NOW - 3 * DAY_S - 1234, NOW - 3 * DAY_S - 1300
    plan = make_plan(
        now_s=NOW, history_days=29, speed=1, duration_s=None, newest_s=newest,
        processed_s=processed,
    )  # fmt: skip
    assert plan.resumed_from_s == newest
    assert plan.backfill[0][0] == newest // HOUR_S * HOUR_S  # its hour again, nothing older
    assert len(plan.jobs) == 4
    assert plan.jobs[0] - processed <= DAY_S


def test_rerun_after_a_short_gap_continues_live_from_the_newest_reading() -> None:
    plan = make_plan(
        now_s=NOW, history_days=29, speed=1, duration_s=None, newest_s=NOW - 600,
        processed_s=NOW - 630,
    )  # fmt: skip
    assert plan.backfill == ()
    assert plan.jobs == ()
    assert plan.live_start_s == NOW - 600


def test_rate_window_is_the_recent_samples_not_since_the_start() -> None:
    window = RateWindow(window_s=10)
    assert window.add(0.0, 0) is None
    for t in range(1, 31):
        rate = window.add(float(t), 1000 * t if t <= 20 else 20_000)  # then nothing new
    assert rate == 0.0  # the last 10 s, though 20,000 came in 30 s


def test_console_goes_quiet_when_its_reader_is_gone(tmp_path: Path) -> None:
    read, write = os.pipe()
    stream = os.fdopen(write, "w")
    console = Console(stream)
    os.close(read)  # the reader is gone: the next write gets EPIPE
    console.line("stopping")
    console.status("still stopping")
    assert console.closed
    stream.write("the interpreter's last flush")
    stream.flush()  # goes to /dev/null now
    stream.close()


# -- running the demo ------------------------------------------------------------------------


@dataclass
class DemoPlace:
    """A private state directory and free ports for `pantau demo`."""

    state_dir: Path
    api_port: int
    metrics_port: int
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def new(cls, prefix: str, **env: str) -> DemoPlace:
        state_dir = make_state_dir(prefix)
        api_port, metrics_port = free_port(), free_port()
        return cls(
            state_dir,
            api_port,
            metrics_port,
            pantau_env(
                PANTAU_STATE_DIR=str(state_dir),
                PANTAU_STACK_MQTT_PORT=str(free_port()),
                PANTAU_STACK_PG_PORT=str(free_port()),
                PANTAU_STACK_FSYNC="false",
                **env,
            ),
        )

    def args(self, *extra: str) -> list[str]:
        return [
            "demo", "--api-port", str(self.api_port), "--metrics-port", str(self.metrics_port),
            *extra,
        ]  # fmt: skip

    def start(self, *extra: str, output: Path) -> subprocess.Popen[bytes]:
        with output.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *self.args(*extra)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def stack_json(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "stack.json").read_text()))

    def demo_json(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "demo.json").read_text()))

    def keys(self) -> dict[str, str]:
        folder = self.state_dir / "api-keys"
        return {p.name: p.read_text().strip() for p in folder.iterdir()}

    def database(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.stack_json()["database_urls"]["grafana"], autocommit=True)

    def cleanup(self) -> None:
        """Stop whatever a failed test left running, then remove the directory."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        with contextlib.suppress(OSError, ValueError, KeyError):
            for pid in [*self.demo_json()["pids"].values(), self.demo_json()["pid"]]:
                if isinstance(pid, int) and is_ours(pid, "cli.main"):
                    os.kill(pid, signal.SIGKILL)
        if (self.state_dir / "stack.json").exists():
            subprocess.run(
                [sys.executable, "-m", "cli.main", "stack", "down"], env=self.env, check=False
            )
        shutil.rmtree(self.state_dir, ignore_errors=True)


@contextlib.contextmanager
def demo_place(**env: str) -> Iterator[DemoPlace]:
    place = DemoPlace.new("pantau-demo-", **env)
    try:
        yield place
    finally:
        place.cleanup()


@pytest.fixture
def place() -> Iterator[DemoPlace]:
    with demo_place() as found:
        yield found


def wait_for_text(path: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        out = path.read_text(errors="replace")
        if text in out:
            return out
        assert proc.poll() is None, f"the demo exited with {proc.returncode}:\n{out}"
        assert time.monotonic() < deadline, f"no {text!r} after {timeout_s} s:\n{out}"
        time.sleep(0.5)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def api(place: DemoPlace, role: str, path: str) -> Any:
    response = httpx.get(
        f"http://127.0.0.1:{place.api_port}{path}",
        headers={"X-API-Key": place.keys()[role]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def every(place: DemoPlace, role: str, path: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        sep = "&" if "?" in path else "?"
        page = api(place, role, f"{path}{sep}limit=1000&offset={len(out)}")
        out.extend(page["items"])
        if page["count"] < 1000:
            return out


def stopped_lines(out: str) -> dict[str, str]:
    """How each child ended, from the demo's ``stopped: NAME (pid P, HOW), ...`` line."""
    found = re.findall(r"([a-z -]+) \(pid \d+, ([^)]*)\)", out)
    return {name.strip(): how for name, how in found}


# -- the long run ----------------------------------------------------------------------------

SPEED = 1500
DURATION_S = 130
HISTORY_DAYS = 1.5  # + (SPEED - 1) x DURATION_S of live = 3.75 simulated days


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_days_at_high_speed_fill_every_users_view(tmp_path: Path) -> None:
    with demo_place(PANTAU_SIM_FAULT_RATE="0.5") as place:  # ten times the default
        long_run(place, tmp_path / "demo.out")


def long_run(place: DemoPlace, output: Path) -> None:
    t0 = time.monotonic()
    proc = place.start(
        "--history", str(HISTORY_DAYS), "--speed", str(SPEED), "--duration", str(DURATION_S),
        output=output,
    )  # fmt: skip
    wait_for_text(output, LIVE_READY, proc, timeout_s=240)
    live_at = time.monotonic()
    live_pids = dict(place.demo_json()["pids"])
    assert {"ingest", "api", "simulate"} <= set(live_pids), live_pids
    # Near the end of the run, every user's view through the API.
    time.sleep(max(DURATION_S - 25 - (time.monotonic() - live_at), 0))
    assert proc.poll() is None, output.read_text()
    views = read_and_check_views(place)
    with place.database() as db:
        figures = database_figures(db)
    still = place.demo_json()["pids"]
    for name in ("ingest", "api", "simulate"):  # the same processes from the start of live
        assert still[name] == live_pids[name], (name, still, live_pids)
        assert alive(still[name]), name

    assert proc.wait(timeout=180) == 0, output.read_text()
    wall_s = time.monotonic() - t0
    out = output.read_text()
    assert "stopped unexpectedly" not in out, out
    assert "exited with" not in out, out
    ended = stopped_lines(out)
    for name in ("simulate", "api", "ingest"):  # stopped by the demo, none by a failure
        assert ended[name] in ("exit 0", "ended by SIGTERM"), ended
    assert not port_open(place.api_port)
    assert not (place.state_dir / "stack.json").exists()  # the demo started the stack: stopped

    labels = read_csv(place.state_dir / "labels.csv")
    matched = match_labels(labels, views["anomalies"])
    print(
        f"\ndemo long run: {figures['days']:.2f} simulated days, {figures['stored']:,} readings, "
        f"{figures['anomalies']:,} anomalies ({dict(figures['kinds'])}), {len(labels):,} "
        f"labelled faults ({dict(Counter(x.kind for x in labels))}); spike/stuck anomalies "
        f"inside a label {matched['inside']}/{matched['flagged']}, labelled spikes found "
        f"{matched['found']}/{matched['spikes']}; alarms {dict(figures['alarms'])}; "
        f"collection plan {views['stops']} bins; wall time {wall_s:.0f} s"
    )
    assert figures["days"] >= 3.0, figures
    assert figures["rejects"] == 0
    assert matched["flagged"] >= 20, matched
    assert matched["inside"] >= 0.8 * matched["flagged"], matched
    assert matched["spikes"] >= 20, matched
    assert matched["found"] >= 0.8 * matched["spikes"], matched
    assert figures["alarms"]["cleared"] >= 1, figures
    assert sum(figures["alarms"].values()) >= 5, figures


def read_and_check_views(place: DemoPlace) -> dict[str, Any]:
    """Each user's view through the API, checked for being filled and plausible."""
    plan = api(place, "dlh", "/v1/waste/collection-plan")
    stops = plan["stops"]
    assert stops, plan
    assert [s["order"] for s in stops] == list(range(1, len(stops) + 1))
    for stop in stops:
        assert stop["fill_pct"] >= 80 or stop["collection_reason"] in ("predicted_full", "overflow")
    legs = sum(s["leg_m"] for s in stops) + plan["last_leg_m"]
    assert plan["total_m"] == pytest.approx(legs, rel=1e-6)
    assert plan["total_m"] <= plan["nearest_neighbour_m"] + 1e-6  # 2-opt only shortens

    stations = every(place, "dlh", "/v1/air/stations")
    assert len(stations) == 7
    for station in stations:
        current = station["current"]
        assert current is not None, station
        assert current["category"] in CATEGORIES, station
        assert 0 <= current["ispu"] <= 500, station

    villages = every(place, "dlh", "/v1/waste/villages")
    assert villages
    assert any(v["collections"] > 0 for v in villages), villages
    assert all(v["bins"] > 0 and v["period_days"] == 28 for v in villages)

    zones = every(place, "tourism", "/v1/tourism/zones")
    assert len(zones) == 12
    for zone in zones:
        assert zone["occupancy"] >= 0, zone
        assert zone["density_ppm2"] is not None, zone
        assert zone["density_ppm2"] == pytest.approx(zone["occupancy"] / zone["area_m2"])
        assert zone["fruin_level"] in tuple("ABCDEF"), zone

    anomalies = every(place, "engineer", "/v1/anomalies")
    assert anomalies
    alarms = every(place, "admin", "/v1/alarms")
    assert alarms
    assert any(a["state"] == "cleared" for a in alarms), Counter(a["state"] for a in alarms)
    return {"stops": len(stops), "anomalies": anomalies}


def database_figures(db: psycopg.Connection[Any]) -> dict[str, Any]:
    row = db.execute(
        "SELECT extract(epoch FROM max(bucket) - min(bucket)) / 86400, sum(n), "
        "(SELECT count(*) FROM rejects), (SELECT count(*) FROM anomalies) FROM rollup_1h"
    ).fetchone()
    assert row is not None
    kinds = Counter(dict(db.execute("SELECT kind, count(*) FROM anomalies GROUP BY 1")))
    alarms = Counter(dict(db.execute("SELECT state, count(*) FROM alarms GROUP BY 1")))
    return {
        "days": float(row[0]) + 1 / 24, "stored": int(row[1]), "rejects": int(row[2]),
        "anomalies": int(row[3]), "kinds": kinds, "alarms": alarms,
    }  # fmt: skip


def match_labels(labels: list[Label], anomalies: list[dict[str, Any]]) -> dict[str, int]:
    """Spike and stuck anomalies inside a labelled fault of their sensor (and metric), and the
    labelled spikes found (the kinds the detectors are scored on; see bench/detection.py)."""
    by_sensor: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_sensor[label.sensor_id].append(label)

    def inside(a: dict[str, Any], label: Label) -> bool:
        ts_ms = int(datetime.fromisoformat(a["ts"]).timestamp() * 1000)
        same_metric = not label.metric or label.metric == a["metric"]
        return same_metric and label.start_ms <= ts_ms <= label.end_ms

    flagged = [a for a in anomalies if a["kind"] in ("spike", "stuck")]
    spikes = [x for x in labels if x.kind == "spike"]
    spike_anomalies = defaultdict(list)
    for a in anomalies:
        if a["kind"] == "spike":
            spike_anomalies[a["sensor_id"]].append(a)
    return {
        "flagged": len(flagged),
        "inside": sum(any(inside(a, x) for x in by_sensor[a["sensor_id"]]) for a in flagged),
        "spikes": len(spikes),
        "found": sum(any(inside(a, x) for a in spike_anomalies[x.sensor_id]) for x in spikes),
    }


# -- a rerun ---------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(400)
def test_rerun_continues_where_it_was_without_a_second_backfill(
    place: DemoPlace, tmp_path: Path
) -> None:
    args = place.args("--history", "0.5", "--duration", "25")
    first = run_pantau(*args, env=place.env, timeout=240)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "history [" in first.stdout
    assert "history stored and processed" in first.stdout
    backfills = sorted((place.state_dir / "labels.d").glob("backfill-*.csv"))
    assert backfills
    backfill_log = (place.state_dir / "backfill.log").stat().st_size
    processed = place.demo_json()["processed_until_s"]
    assert processed is not None

    # The stack up by hand this time: the second run leaves it running, so it can be read after.
    assert run_pantau("stack", "up", env=place.env).returncode == 0
    with place.database() as db:
        newest, stored = db.execute(
            "SELECT extract(epoch FROM max(ts))::int8, (SELECT sum(n) FROM rollup_1d) FROM latest"
        ).fetchone()  # type: ignore[misc]
    output = tmp_path / "second.out"
    ingest_log = place.state_dir / "ingest.log"
    offset = ingest_log.stat().st_size
    proc = place.start("--history", "0.5", output=output)
    out = wait_for_text(output, LIVE_READY, proc, timeout_s=120)
    assert "resuming after the newest stored reading" in out, out
    assert "history: already stored, nothing to backfill" in out, out
    assert "history [" not in out, out
    assert sorted((place.state_dir / "labels.d").glob("backfill-*.csv")) == backfills
    assert (place.state_dir / "backfill.log").stat().st_size == backfill_log
    # The simulator continues from the newest stored reading.
    pids = place.demo_json()["pids"]
    simulate = Path(f"/proc/{pids['simulate']}/cmdline").read_bytes().split(b"\0")
    start = simulate[simulate.index(b"--start") + 1].decode()
    assert datetime.fromisoformat(start).timestamp() == newest, (start, newest)
    time.sleep(20)
    with place.database() as db:
        (stored_after,) = db.execute("SELECT sum(n) FROM rollup_1d").fetchone()  # type: ignore[misc]
    assert stored_after > stored
    # What the worker received was new, not the stored readings once more.
    second = ingest_log.read_bytes()[offset:].decode(errors="replace")
    summary = re.findall(r"(\d+) readings \((\d+) new\)", second)
    received, new = (int(x) for x in summary[-1])
    assert new > 0, summary[-3:]
    assert new >= 0.5 * received, summary[-3:]

    # The terminal closes: SIGHUP stops everything the demo started; the stack was not its own.
    pids = place.demo_json()["pids"]
    assert {"ingest", "api", "simulate", "process"} <= set(pids), pids
    os.kill(proc.pid, signal.SIGHUP)
    assert proc.wait(timeout=120) == 0, output.read_text()
    out = output.read_text()
    assert "stopping (SIGHUP)" in out, out
    for name, pid in pids.items():
        assert not alive(pid), (name, pid)
    assert (place.state_dir / "stack.json").exists()  # not the demo's: left running
    assert run_pantau("stack", "down", env=place.env).returncode == 0


# -- Ctrl-C with the output piped --------------------------------------------------------------

READER = f"""
import sys
for line in sys.stdin:
    sys.stdout.write(line)
    sys.stdout.flush()
    if {LIVE_READY!r} in line:
        break
"""  # `pantau demo | head`-like: reads until the demo is live, then exits


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_ctrl_c_with_the_output_piped_into_a_reader_that_is_gone_stops_everything(
    place: DemoPlace, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.out"
    demo = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *place.args("--history", "0.25")],
        env=place.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert demo.stdout is not None
    with seen.open("wb") as out:
        reader = subprocess.Popen([sys.executable, "-c", READER], stdin=demo.stdout, stdout=out)
    place.procs += [demo, reader]
    demo.stdout.close()  # the reader holds the pipe's only read end
    assert reader.wait(timeout=240) == 0, seen.read_text()
    assert LIVE_READY in seen.read_text()
    # The reader is gone; the demo's next line goes into a pipe nobody reads (EPIPE).
    pids = [*place.demo_json()["pids"].values()]
    stack = place.stack_json()
    servers = [stack["mosquitto_pid"], stack["postgres_pid"]]
    assert pids
    assert all(alive(p) for p in [*pids, *servers])
    time.sleep(12)  # a live line or two written into the broken pipe
    os.killpg(demo.pid, signal.SIGINT)  # as the terminal's Ctrl-C does
    assert demo.wait(timeout=150) == 0  # not 120: the interpreter's last flush did not fail
    for pid in [*pids, *servers]:
        assert not alive(pid), (pid, pids, servers)
    assert not port_open(place.api_port)
    assert not port_open(stack["mqtt_port"])
    assert not port_open(stack["pg_port"])
    assert not (place.state_dir / "stack.json").exists()
    assert place.demo_json()["pid"] is None
    assert place.demo_json()["pids"] == {}
