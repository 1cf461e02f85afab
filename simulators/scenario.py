"""In-memory API: a whole simulated run as messages, or as aligned arrays, plus its labels.

Stable API for detector benchmarks (tested in ``tests/simulators/test_scenario.py``)::

    from pantau.registry.fleet import load_fleet
    from simulators.scenario import generate, generate_columns

    fleet = load_fleet()  # or simulators.scale.scale_fleet(load_fleet(), 10)
    messages, labels = generate(fleet, seed=7, start_s=1_795_798_800, duration_s=86_400,
                                fault_rate=0.2)
    columns, labels = generate_columns(fleet, seed=7, start_s=1_795_798_800,
                                       duration_s=86_400, fault_rate=0.2)

- The run covers messages *published* in (start_s, start_s + duration_s] (Unix seconds).
- ``messages``: :class:`simulators.payloads.Message` (``topic``, ``payload`` bytes, ``ts_ms``
  = publish time, ``readings``, ``retain``, ``sensor_id``), in publish order, status messages
  (``<root>/<kind>/<sensor_id>/status``, retained ``offline``/``online``) included.
- ``columns``: :class:`simulators.fleet.Columns`, aligned NumPy arrays ``sensor_idx``
  (into ``columns.sensor_ids``, the fleet's order), ``metric_id`` (into
  ``columns.metric_names``), ``ts_ms`` (as published), ``value``, ``publish_ms``; clean and
  faulted readings exactly as the ingest decodes them from ``messages`` (garbage excluded).
- ``labels``: :class:`simulators.labels.Label` tuples ``(sensor_id, metric, start_ms,
  end_ms, kind)``, ``metric`` empty for whole-device and message faults, kinds from
  :data:`simulators.metrics.FAULT_KINDS`: ``stuck``, ``spike``, ``drift``, ``offline``,
  ``garbage``, ``duplicate``, ``clock_skew``, ``out_of_order``.
- ``fault_rate`` is the expected number of faults per sensor per simulated day (0: none);
  ``fault_kinds`` restricts the kinds. The same fleet, seed and arguments give byte-identical
  messages and identical labels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pantau.registry.fleet import Fleet
from simulators.fleet import Columns, FleetSimulator, Frame
from simulators.labels import Label
from simulators.metrics import FAULT_KINDS
from simulators.payloads import Message

WINDOW_S = 3600


def frames(
    sim: FleetSimulator, start_s: int, end_s: int, window_s: int = WINDOW_S
) -> Iterator[Frame]:
    """The run (start_s, end_s] of ``sim`` as consecutive windows of ``window_s`` seconds."""
    t = start_s
    while t < end_s:
        t1 = min(t + window_s, end_s)
        yield sim.frame(t, t1)
        t = t1


def _simulator(
    fleet: Fleet,
    seed: int,
    fault_rate: float,
    fault_kinds: Sequence[str],
    payload: str,
    batch_s: int,
    topic_root: str,
) -> FleetSimulator:
    return FleetSimulator(
        fleet,
        seed,
        topic_root,
        fault_rate=fault_rate,
        fault_kinds=fault_kinds,
        payload=payload,
        batch_s=batch_s,
    )


def generate(
    fleet: Fleet,
    *,
    seed: int,
    start_s: int,
    duration_s: int,
    fault_rate: float = 0.0,
    fault_kinds: Sequence[str] = FAULT_KINDS,
    payload: str = "json",
    batch_s: int = 0,
    topic_root: str = "pantau/v1",
) -> tuple[list[Message], list[Label]]:
    """Every message of the run, in publish order, and the labels of its faults."""
    sim = _simulator(fleet, seed, fault_rate, fault_kinds, payload, batch_s, topic_root)
    messages: list[Message] = []
    for frame in frames(sim, start_s, start_s + duration_s):
        messages.extend(frame.messages())
    return messages, sim.labels()


def generate_columns(
    fleet: Fleet,
    *,
    seed: int,
    start_s: int,
    duration_s: int,
    fault_rate: float = 0.0,
    fault_kinds: Sequence[str] = FAULT_KINDS,
    payload: str = "json",
    batch_s: int = 0,
) -> tuple[Columns, list[Label]]:
    """Every reading of the run as aligned arrays (no JSON is built), and the labels."""
    sim = _simulator(fleet, seed, fault_rate, fault_kinds, payload, batch_s, "pantau/v1")
    parts = [frame.columns() for frame in frames(sim, start_s, start_s + duration_s)]
    return Columns.concat(parts, sim.fleet_ids), sim.labels()
