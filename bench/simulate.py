"""Simulator benchmark: how fast the simulator generates readings, without a broker.

    make bench-simulate          # or: python -m bench.simulate [--days 30] [--sensors 100000]

Three figures per fleet, each measured alone, on one core (NumPy's element-wise work is
single-threaded): generation (signal models, schedule, faults, grouping into messages; what
``simulators.scenario.generate_columns`` costs apart from flattening), flattening to aligned
arrays (the columnar API), and JSON serialisation with orjson (what publishing costs on top).
Fleets: the default Jepara fleet over ``--days`` days (a backfill), and a scaled fleet of
``--sensors`` sensors over one simulated hour (a load test). Faults at 0.05 per sensor-day.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.procs import machine
from pantau.registry.fleet import Fleet, load_fleet
from simulators.fleet import FleetSimulator
from simulators.scale import scale_fleet

START = 1_795_798_800  # 2026-11-28T00:00:00+07:00


@dataclass
class Figures:
    name: str
    sensors: int
    simulated_s: int
    messages: int
    readings: int
    generate_s: float
    columns_s: float
    serialise_s: float

    def lines(self) -> list[str]:
        def rate(count: int, seconds: float) -> str:
            return f"{count / seconds:>13,.0f}"

        return [
            f"{self.name}: {self.sensors:,} sensors, {self.simulated_s / 86_400:g} simulated "
            f"days, {self.messages:,} messages, {self.readings:,} readings",
            f"  generation          {rate(self.readings, self.generate_s)} readings/s "
            f"{rate(self.messages, self.generate_s)} messages/s  ({self.generate_s:.2f} s)",
            f"  + columnar arrays   {rate(self.readings, self.columns_s)} readings/s "
            f"{'':>13}              ({self.columns_s:.2f} s)",
            f"  + JSON (orjson)     {rate(self.readings, self.serialise_s)} readings/s "
            f"{rate(self.messages, self.serialise_s)} messages/s  ({self.serialise_s:.2f} s)",
        ]


def measure(name: str, fleet: Fleet, simulated_s: int, window_s: int) -> Figures:
    def simulator() -> FleetSimulator:
        return FleetSimulator(fleet, 20261128, "pantau/v1", fault_rate=0.05)

    figures = Figures(name, len(fleet.sensors), simulated_s, 0, 0, 0.0, 0.0, 0.0)
    sim = simulator()
    t0 = time.perf_counter()
    end = START + simulated_s
    frames = [sim.frame(t, min(t + window_s, end)) for t in range(START, end, window_s)]
    figures.generate_s = time.perf_counter() - t0
    figures.messages = sum(len(f) for f in frames)
    figures.readings = sum(f.readings for f in frames)
    t0 = time.perf_counter()
    for f in frames:
        f.columns()
    figures.columns_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for f in frames:
        f.messages()
    figures.serialise_s = time.perf_counter() - t0
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days for the default fleet")
    parser.add_argument("--sensors", type=int, default=100_000, help="size of the scaled fleet")
    args = parser.parse_args(argv)
    m = machine()
    print(
        f"machine: {m['cpu_model']}, {m['cpu_count']} logical CPUs ({os.cpu_count()} usable), "
        f"{m['ram_gib']} GiB, {m['os']}, Python {m['python']}; one process, one core"
    )
    base = load_fleet()
    runs = [
        measure(f"Jepara fleet, {args.days}-day backfill", base, args.days * 86_400, 3600),
        measure(
            f"scaled fleet ({args.sensors:,} sensors), one hour",
            scale_fleet(base, args.sensors),
            3600,
            300,
        ),
    ]
    for figures in runs:
        print("\n".join(figures.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
