"""`pantau demo`: the whole system on one machine, history first, then live, with a live line.

1. The local stack (unless it runs already), the schema, the Jepara fleet and its broker
   accounts, an API key per role (:mod:`cli.demo_state`: reused by a rerun).
2. `pantau ingest` and `pantau api`.
3. History (:mod:`cli.demo_plan`): one `pantau simulate --backfill` per day, as gateway
   batches, paced by what is stored (a broker queue far ahead of the worker gains nothing), and
   `pantau process --at` at the end of each day once that day is stored.
4. Live: `pantau simulate` from where history ended. While its clock is behind the present
   (catching up, or ``--speed`` N), `pantau process --at <newest stored reading>` runs back to
   back; then `pantau process` itself. Once the job has run on live data, the demo reads each
   user's views through the API (:mod:`cli.demo_views`) and says what they hold.

Ctrl-C, SIGTERM and SIGHUP stop what it started, in order (simulators, the job and the API,
ingest last, then the stack if it started it), also when its output is a pipe that is gone
(:class:`cli.demo_output.Console`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from cli import demo_children, demo_state
from cli.demo_children import Child, spawn, stop_all
from cli.demo_output import (
    Console,
    Counts,
    RateWindow,
    history_line,
    iso,
    live_line,
    plan_lines,
    wib,
)
from cli.demo_plan import BATCH_S, Plan, make_plan
from cli.demo_views import ROLES, hint_lines, report_lines
from ops.credentials import registered_devices
from ops.settings import StackSettings
from ops.stack.local import LocalStack, StackState
from ops.stack.processes import free_port, is_ours, port_open, terminate
from pantau.db.connect import connect
from pantau.db.migrate import migrate
from pantau.errors import ConfigError
from pantau.masking import mask_url
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into

METRICS_PORT = 9464  # the port commonly assigned to Prometheus exporters of this kind
API_PORT = 8080
# Every fault a detector or the job can see; no garbage, so the live line's rejects stay 0.
FAULT_KINDS = "stuck,spike,drift,offline,duplicate,clock_skew,out_of_order"
CAUGHT_UP_S = 120.0  # live is "now" when the newest stored reading is this recent
PROCESS_INTERVAL_S = 10
# Larger batches store history about twice as fast (measured); live batches flush by age.
INGEST_ENV = {"PANTAU_INGEST_BATCH_MAX_READINGS": "50000"}


@dataclass(frozen=True)
class Options:
    history_days: float
    speed: float
    duration_s: float | None
    api_port: int | None
    metrics_port: int | None


class DemoError(Exception):
    """Something the demo started failed; the message says what and where its log is."""


def run_demo(options: Options) -> int:
    demo = Demo(options, Console(sys.stdout), Console(sys.stderr))
    previous = {sig: signal.signal(sig, demo.on_signal) for sig in Demo.SIGNALS}
    try:
        return demo.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Demo:
    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, options: Options, out: Console, err: Console) -> None:
        self.options = options
        self.out, self.err = out, err
        self.stop = threading.Event()
        self.why = ""
        self.stack = LocalStack(StackSettings())
        self.state_dir = self.stack.state_dir
        self.saved = demo_state.DemoState()
        self.children: dict[str, Child] = {}  # long-running: ingest, api, simulate, process
        self.current: dict[str, Child] = {}  # one-shot: a day of backfill, a process --at
        self.db: psycopg.Connection[Any] | None = None
        self.env: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.api_port = self.metrics_port = 0
        self.rate = RateWindow()
        self.live_started = 0.0
        self.service_started = False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stop.is_set():
            name = signal.Signals(signum).name
            self.why = "Ctrl-C" if signum == signal.SIGINT else name
        self.stop.set()

    def run(self) -> int:
        self.saved = demo_state.load_state(self.state_dir)
        if self.saved.pid not in (None, os.getpid()) and is_ours(self.saved.pid, "demo"):
            raise ConfigError(
                f"a demo already runs on {self.state_dir} (pid {self.saved.pid})",
                f"stop it (Ctrl-C there, or `kill {self.saved.pid}`), or set another "
                "PANTAU_STATE_DIR",
            )
        killed = self.saved.pid is not None  # a demo that ended cleanly wrote None
        self._stop_left_behind()
        self.saved.pid = os.getpid()
        was_running = any(line.startswith("running") for line in self.stack.status().values())
        try:
            # The stack is ours to stop if we start it, or if the demo that did was killed.
            self.saved.started_stack = not was_running or (killed and self.saved.started_stack)
            state = self._prepare(was_running)
            if not self.stop.is_set():
                self._start(state)
            if not self.stop.is_set():
                plan = self._plan()
                if self._history(plan):
                    self._live(plan)
            return 0
        except DemoError as exc:
            self.why = "a part failed"
            self.err.line(f"pantau demo: {exc}")
            return 1
        finally:
            self._shutdown()

    def _stop_left_behind(self) -> None:
        """Stop the children of a demo that was killed (SIGKILL gives it no time to stop them):
        a second ingest worker with the same client id would take the session from the first
        one back and forth."""
        for name, pid in self.saved.pids.items():
            if _child_of_this_demo(pid, self.state_dir):
                self.out.line(f"stopping {name} (pid {pid}), left by a demo that was killed")
                terminate(pid, "cli.main", timeout_s=demo_children.KILL_AFTER_S)

    # -- start ---------------------------------------------------------------------------------

    def _prepare(self, was_running: bool) -> StackState:
        """Stack up, schema migrated, fleet loaded, broker accounts written."""
        t0 = time.monotonic()
        state = self.stack.up()
        self.out.line(
            f"stack {'already running' if was_running else 'up'} in "
            f"{time.monotonic() - t0:.1f} s: {mask_url(state.mqtt_url)}, "
            f"{mask_url(state.database_url)}"
        )
        owner = state.database_urls["owner"]
        for m in migrate(owner):
            self.out.line(f"applied migration {m.version:04d}_{m.name}")
        fleet = load_fleet()
        with connect(owner) as conn:
            result = load_into(conn, fleet)
            devices = registered_devices(conn)
            self.keys = demo_state.keep_keys(conn, self.state_dir, ROLES)
            conn.commit()
        self.out.line(f"fleet {fleet.name}: {result.zones} zones, {result.sensors} sensors")
        root = self.stack.settings.topic_root
        self.out.line("broker: " + self.stack.write_devices(root, devices, rotate=False))
        return state

    def _start(self, state: StackState) -> None:
        """`pantau ingest` (subscribed) and `pantau api` (listening)."""
        self.api_port = _port(self.options.api_port, "PANTAU_API_PORT", API_PORT)
        self.metrics_port = _port(
            self.options.metrics_port, "PANTAU_INGEST_METRICS_PORT", METRICS_PORT
        )
        # No URL in the environment: each command takes its own service's login from stack.json.
        dropped = ("PANTAU_DATABASE_URL", "PANTAU_MQTT_URL")
        self.env = {
            **INGEST_ENV,
            **{k: v for k, v in os.environ.items() if k not in dropped},
            "PANTAU_STATE_DIR": state.state_dir,
            "PANTAU_INGEST_METRICS_PORT": str(self.metrics_port),
            "PANTAU_API_PORT": str(self.api_port),
        }
        self.db = connect(state.database_urls["api"], autocommit=True)  # a read-only login
        self._child("ingest", ["ingest"])
        self._child("api", ["api"])
        # Until the worker has subscribed once, the broker keeps nothing for it.
        ingest = self.children["ingest"]
        self._wait_for(lambda: "subscribed to" in ingest.log_text(), "`pantau ingest` to subscribe")
        self._wait_for(lambda: port_open(self.api_port), f"`pantau api` on port {self.api_port}")

    def _plan(self) -> Plan:
        counts = self.counts()
        newest = None if counts.newest_s is None else int(counts.newest_s)
        processed = self.saved.processed_until_s
        if newest is not None and processed is None and counts.last_run_s is not None:
            processed = newest  # stored and processed before this demo kept track
        plan = make_plan(
            now_s=time.time(),
            history_days=self.options.history_days,
            speed=self.options.speed,
            duration_s=self.options.duration_s,
            newest_s=newest,
            processed_s=processed,
        )
        self.saved.processed_until_s = processed
        for line in plan_lines(plan):
            self.out.line(line)
        return plan

    # -- history -------------------------------------------------------------------------------

    def _history(self, plan: Plan) -> bool:
        """Publish the history, paced by what is stored, and run the job over it; the live
        simulator starts as soon as the last day is published. False when stopped."""
        chunks, jobs = list(plan.backfill), list(plan.jobs)
        published: list[tuple[int, int]] = []
        first = chunks[0][0] if chunks else 0
        t0 = time.monotonic()
        last_tenth = -1
        while not self.stop.is_set():
            self._check_children()
            counts = self.counts()
            newest = counts.newest_s or 0.0
            if self._finished("backfill") is not None:
                published.append(chunks.pop(0))
            # At most the day being stored and the one being published wait in the broker.
            queue_ok = not published or newest >= published[-1][0]
            if chunks and "backfill" not in self.current and queue_ok:
                self._backfill(*chunks[0])
            if not chunks and "backfill" not in self.current and "simulate" not in self.children:
                self._live_simulator(plan)
            done = self._finished("process")
            if done is not None:
                jobs.pop(0)
                self._processed(done.at_s)
            # A reading after the job's time is stored: so is everything before it.
            if jobs and "process" not in self.current and newest >= jobs[0] + 60:
                self._process_at(jobs[0])
            if plan.backfill:
                done_s = min(max(newest - first, 0.0), plan.history_s)
                tenth = int(10 * done_s / plan.history_s)
                if self.out.tty or tenth != last_tenth:
                    last_tenth = tenth
                    self.out.status(
                        history_line(
                            done_s=done_s, total_s=plan.history_s, stored=counts.stored,
                            rate=self.rate.add(time.monotonic(), counts.stored),
                            jobs_done=len(plan.jobs) - len(jobs), jobs=len(plan.jobs),
                            started=t0, now=time.monotonic(),
                        )
                    )  # fmt: skip
            if not chunks and not jobs and not self.current:
                if plan.backfill:
                    self.out.line(
                        f"history stored and processed in {time.monotonic() - t0:.0f} s: "
                        f"{counts.stored:,} readings, {counts.anomalies:,} anomalies, "
                        f"{counts.alarms_open + counts.alarms_cleared:,} alarms"
                    )
                demo_state.merge_labels(self.state_dir)
                return True
            self.stop.wait(0.5)
        return False

    def _backfill(self, start: int, end: int) -> None:
        labels = demo_state.labels_path(self.state_dir, f"backfill-{start}")
        self.current["backfill"] = spawn(
            "backfill",
            [
                "simulate", "--backfill", repr((end - start) / 86400), "--start", iso(start),
                "--payload", "batch", "--batch-s", str(BATCH_S), "--fault-kinds", FAULT_KINDS,
                "--labels", str(labels),
            ],
            self.env,
            self.state_dir / "backfill.log",
        )  # fmt: skip
        self._save()

    def _process_at(self, at_s: int) -> None:
        self.current["process"] = spawn(
            "process --at",
            ["process", "--at", iso(at_s)],
            self.env,
            self.state_dir / "process-at.log",
            at_s=at_s,
        )
        self._save()

    def _processed(self, at_s: int | None) -> None:
        if at_s is not None:
            self.saved.processed_until_s = max(self.saved.processed_until_s or 0, at_s)
        self._save()

    def _finished(self, name: str) -> Child | None:
        """The one-shot child ``name`` once it has exited 0 (then it is forgotten)."""
        child = self.current.get(name)
        if child is None or child.running():
            return None
        del self.current[name]
        if child.popen.returncode != 0:
            raise DemoError(_failure(child, f"exited with {child.popen.returncode}"))
        return child

    # -- live ----------------------------------------------------------------------------------

    def _live_simulator(self, plan: Plan) -> None:
        labels = demo_state.labels_path(self.state_dir, f"live-{plan.live_start_s}")
        self._child(
            "simulate",
            [
                "simulate", "--speed", f"{plan.live_speed:g}", "--start", iso(plan.live_start_s),
                "--fault-kinds", FAULT_KINDS, "--labels", str(labels),
            ],
        )  # fmt: skip
        self.live_started = time.monotonic()

    def _live(self, plan: Plan) -> None:
        """Live until the duration is over or a signal."""
        self.out.line(
            f"live: the simulator runs from {wib(plan.live_start_s)} at {plan.live_speed:g}x "
            "until it reaches the present, then in real time"
        )
        hints = hint_lines(
            state_dir=self.state_dir,
            api_url=f"http://127.0.0.1:{self.api_port}",
            keys=self.keys,
            metrics_url=f"http://127.0.0.1:{self.metrics_port}/metrics",
        )
        for line in hints:
            self.out.line(line)
        self.out.line("Ctrl-C stops the demo.")
        self.rate = RateWindow()  # the live line's rate: live traffic, not the history's
        wall_start = time.time()
        views_done = False
        duration = self.options.duration_s
        deadline = None if duration is None else self.live_started + duration
        last_status = last_labels = 0.0
        while not self.stop.is_set():
            self._check_children()
            counts = self.counts()
            behind = time.time() - (counts.newest_s or 0.0)
            if not self.service_started:
                self._job_while_behind(counts, behind)
            now = time.monotonic()
            rate = self.rate.add(now, counts.stored)
            if now - last_status >= (2.0 if self.out.tty else 10.0):
                self.out.status(live_line(counts, rate, behind_s=behind, speed=plan.live_speed))
                last_status = now
            if not views_done and (counts.last_run_s or 0.0) > wall_start:
                views_done = True
                for line in report_lines(f"http://127.0.0.1:{self.api_port}", self.keys):
                    self.out.line(line)
            if now - last_labels >= 10:
                demo_state.merge_labels(self.state_dir)
                last_labels = now
            if deadline is not None and now >= deadline:
                self.why = f"--duration {duration:g} s is over"
                return
            self.stop.wait(0.5)

    def _job_while_behind(self, counts: Counts, behind_s: float) -> None:
        """`pantau process --at <newest>` back to back while live is behind; then the service."""
        done = self._finished("process")
        if done is not None:
            self._processed(done.at_s)
        if "process" in self.current or counts.newest_s is None:
            return
        if behind_s > CAUGHT_UP_S:
            if int(counts.newest_s) > (self.saved.processed_until_s or 0):
                self._process_at(int(counts.newest_s))
            return
        self._child("process", ["process", "--interval", str(PROCESS_INTERVAL_S)])
        self.service_started = True

    # -- children and the database -------------------------------------------------------------

    def _child(self, name: str, args: list[str]) -> None:
        self.children[name] = spawn(name, args, self.env, self.state_dir / f"{name}.log")
        self._save()

    def _check_children(self) -> None:
        for child in self.children.values():
            if not child.running():
                code = child.popen.returncode
                raise DemoError(_failure(child, f"stopped unexpectedly (exit {code})"))

    def _wait_for(self, ready: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready() and not self.stop.wait(0.2):
            self._check_children()
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {timeout_s:g} s waiting for {what}")

    def counts(self) -> Counts:
        assert self.db is not None
        try:
            row = self.db.execute(_COUNTS).fetchone()
        except psycopg.OperationalError as exc:
            raise DemoError(f"the database stopped answering: {exc}") from exc
        assert row is not None
        return Counts(
            newest_s=None if row[0] is None else float(row[0]),
            stored=int(row[1]), rejects=int(row[2]), anomalies=int(row[3]),
            alarms_open=int(row[4]), alarms_cleared=int(row[5]),
            last_run_s=None if row[6] is None else float(row[6]),
        )  # fmt: skip

    def _save(self) -> None:
        every = {**self.children, **{c.name: c for c in self.current.values()}}
        self.saved.pids = {name: child.pid for name, child in every.items()}
        demo_state.save_state(self.state_dir, self.saved)

    # -- the end -------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop every child (simulators first, ingest last), then the stack if it was ours."""
        every = [*self.current.values(), *self.children.values()]
        ours = self.saved.started_stack and self.stack.read_state() is not None
        if every or ours:
            self.out.line(f"stopping ({self.why or 'done'})")
        stopped = stop_all(
            [
                [c for c in every if c.name in ("simulate", "backfill")],
                [c for c in every if c.name in ("process", "process --at", "api")],
                [c for c in every if c.name == "ingest"],
            ]
        )
        if self.db is not None:
            if self.service_started:
                try:
                    last = self.counts().last_run_s
                except DemoError:
                    last = None
                if last is not None:
                    self._processed(int(last))
            self.db.close()
        if every:
            demo_state.merge_labels(self.state_dir)
            self.out.line("stopped: " + ", ".join(stopped))
        self.children.clear()
        self.current.clear()
        self.saved.pid = None
        self._save()
        if ours:
            self.out.line("stopped: " + ", ".join(self.stack.down()))


def _failure(child: Child, what: str) -> str:
    tail = "\n".join("  " + line for line in child.tail())
    return f"`{child.command()}` {what}; the end of its log ({child.log}):\n{tail}"


def _child_of_this_demo(pid: int, state_dir: Path) -> bool:
    """Whether ``pid`` is a `pantau` command run on ``state_dir`` (never a recycled pid)."""
    if not is_ours(pid, "cli.main"):
        return False
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"PANTAU_STATE_DIR={state_dir}".encode() in environ


def _port(option: int | None, variable: str, default: int) -> int:
    if option:
        return option
    if os.environ.get(variable, "").isdigit():
        return int(os.environ[variable])
    return default if not port_open(default) else free_port()


_COUNTS = """
SELECT (SELECT extract(epoch FROM max(ts)) FROM latest),
       (SELECT coalesce(sum(n), 0) FROM rollup_1d),
       (SELECT count(*) FROM rejects),
       (SELECT count(*) FROM anomalies),
       (SELECT count(*) FROM alarms WHERE state <> 'cleared'),
       (SELECT count(*) FROM alarms WHERE state = 'cleared'),
       (SELECT extract(epoch FROM last_run_at) FROM job_runs WHERE job = 'process')"""
