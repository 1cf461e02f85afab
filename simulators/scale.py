"""Fleets of any size from a real one: replicate its sensors over its real zones.

``scale_fleet(fleet, n)`` keeps the kind mix of ``fleet`` (at least one sensor of each kind when
``n`` allows) and spreads each kind's sensors over the original ones in turn: copy 0 keeps the
original id, copy ``k`` is ``<id>-R<k>`` placed deterministically around the same zone. A fleet
smaller than the original takes evenly spaced sensors of each kind. :func:`fleet_toml` writes a
fleet back as a fleet file, so that ``pantau registry load`` can register a scaled fleet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pantau.errors import ConfigError
from pantau.registry.fleet import Fleet, Sensor, scatter

SPREAD_M = 300.0


def _shares(counts: Mapping[str, int], n: int) -> dict[str, int]:
    """``n`` split across kinds in proportion to ``counts`` (largest remainder), each >= 1."""
    total = sum(counts.values())
    kinds = sorted(counts)
    floor = {k: max(1, n * counts[k] // total) for k in kinds}
    while sum(floor.values()) > n:
        biggest = max(kinds, key=lambda k: floor[k])
        floor[biggest] -= 1
    order = sorted(kinds, key=lambda k: (-(n * counts[k] % total), k))
    for k in order[: n - sum(floor.values())]:
        floor[k] += 1
    return floor


def scale_fleet(fleet: Fleet, n: int) -> Fleet:
    """A fleet of ``n`` sensors over the zones of ``fleet`` (see the module docstring)."""
    by_kind: dict[str, list[Sensor]] = {}
    for s in fleet.sensors:
        by_kind.setdefault(s.kind, []).append(s)
    if n < len(by_kind):
        raise ConfigError(
            f"--sensors {n} is fewer than the fleet's {len(by_kind)} kinds of sensor",
            f"ask for at least {len(by_kind)}",
        )
    out: list[Sensor] = []
    for kind, count in _shares({k: len(v) for k, v in by_kind.items()}, n).items():
        base = by_kind[kind]
        for i in range(count):
            if count <= len(base):
                out.append(base[i * len(base) // count])
                continue
            original, copy = base[i % len(base)], i // len(base)
            if copy == 0:
                out.append(original)
                continue
            sensor_id = f"{original.id}-R{copy}"
            lat, lon = original.lat, original.lon
            if lat is not None and lon is not None:
                lat, lon = scatter(lat, lon, SPREAD_M, sensor_id)
            out.append(
                Sensor(
                    id=sensor_id,
                    kind=kind,
                    zone=original.zone,
                    lat=lat,
                    lon=lon,
                    interval_s=original.interval_s,
                    name=f"{original.name or original.id} (copy {copy})",
                    params=original.params,
                )
            )
    order = {s.id: i for i, s in enumerate(fleet.sensors)}
    out.sort(key=lambda s: (order.get(s.id, len(order)), s.id))
    return Fleet(name=f"{fleet.name}-x{n}", zones=fleet.zones, sensors=tuple(out))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _table(header: str, fields: Mapping[str, Any]) -> list[str]:
    lines = [header]
    lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items() if v is not None and v != {}]
    return [*lines, ""]


def fleet_toml(fleet: Fleet) -> str:
    """``fleet`` as a fleet file, every sensor listed; ``load_fleet`` reads it back unchanged."""
    lines = [
        "# Written by `pantau simulate --write-fleet`; load it with `pantau registry load FILE`.",
        "",
        *_table("[fleet]", {"name": fleet.name}),
    ]
    for z in fleet.zones:
        lines += _table(
            "[[zones]]",
            {
                "id": z.id,
                "name": z.name,
                "kind": z.kind,
                "kecamatan": z.kecamatan,
                "lat": z.lat,
                "lon": z.lon,
                "area_m2": z.area_m2,
                "capacity_persons": z.capacity_persons,
                "notes": z.notes,
                "params": dict(z.params),
            },
        )
    for s in fleet.sensors:
        lines += _table(
            "[[sensors]]",
            {
                "id": s.id,
                "kind": s.kind,
                "zone": s.zone,
                "lat": s.lat,
                "lon": s.lon,
                "interval_s": s.interval_s,
                "name": s.name,
                "params": dict(s.params),
            },
        )
    return "\n".join(lines)
