"""Fleet files: the zones and sensors of a deployment, as TOML.

A fleet file has ``[[zones]]`` (places), ``[[sensors]]`` (devices listed one by one) and
``[[groups]]`` (``count`` devices of one kind per zone, placed deterministically around the zone's
point, for placeholder fleets and load tests). Parsing and expansion are pure; the same file
always gives the same sensors, ids and coordinates.

Example::

    [[zones]]
    id = "T-KARTINI"
    name = "Pantai Kartini"
    kind = "tourism"
    lat = -6.589444
    lon = 110.646389
    capacity_persons = 3500

    [[groups]]
    kind = "footfall"
    id_prefix = "FF"
    zones = ["T-KARTINI"]
    count = 2
    spread_m = 150
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pantau.errors import ConfigError

ZONE_KINDS = ("tourism", "village", "kecamatan", "disposal", "air_site")
SENSOR_KINDS = {"waste_bin": 900, "air_quality": 300, "footfall": 60}
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    kind: str
    lat: float | None = None
    lon: float | None = None
    kecamatan: str | None = None
    area_m2: float | None = None
    capacity_persons: int | None = None
    notes: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sensor:
    id: str
    kind: str
    zone: str | None
    lat: float | None
    lon: float | None
    interval_s: int
    name: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fleet:
    name: str
    zones: tuple[Zone, ...]
    sensors: tuple[Sensor, ...]


def default_fleet_path() -> Path:
    """The Jepara fleet shipped with Pantau."""
    return Path(str(resources.files("pantau.registry").joinpath("jepara.toml")))


def load_fleet(path: Path | None = None) -> Fleet:
    """Read and expand a fleet file (default: the Jepara fleet)."""
    path = path or default_fleet_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"fleet file {path} does not exist", "pass the path of a fleet TOML file"
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"fleet file {path} is not valid TOML: {exc}", "fix the syntax") from exc
    return parse_fleet(doc, source=str(path))


def _require(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}: missing key {key!r}", f"add {key} = ... to it")
    return table[key]


def parse_fleet(doc: Mapping[str, Any], source: str = "<fleet>") -> Fleet:
    """Build a :class:`Fleet` from a parsed TOML document; errors name the entry at fault."""
    zones = []
    for i, z in enumerate(doc.get("zones", [])):
        where = f"{source}: zones[{i}]"
        kind = _require(z, "kind", where)
        if kind not in ZONE_KINDS:
            raise ConfigError(f"{where}: zone kind {kind!r} is unknown", f"use one of {ZONE_KINDS}")
        zones.append(
            Zone(
                id=str(_require(z, "id", where)),
                name=str(_require(z, "name", where)),
                kind=kind,
                lat=z.get("lat"),
                lon=z.get("lon"),
                kecamatan=z.get("kecamatan"),
                area_m2=z.get("area_m2"),
                capacity_persons=z.get("capacity_persons"),
                notes=z.get("notes"),
                params=z.get("params", {}),
            )
        )
    by_id = {z.id: z for z in zones}
    if len(by_id) != len(zones):
        raise ConfigError(f"{source}: duplicate zone ids", "give every zone its own id")

    sensors: list[Sensor] = []
    for i, s in enumerate(doc.get("sensors", [])):
        where = f"{source}: sensors[{i}]"
        kind = _sensor_kind(_require(s, "kind", where), where)
        zone_id = s.get("zone")
        zone = _zone_of(by_id, zone_id, where)
        sensors.append(
            Sensor(
                id=str(_require(s, "id", where)),
                kind=kind,
                zone=zone_id,
                lat=s.get("lat", zone.lat if zone else None),
                lon=s.get("lon", zone.lon if zone else None),
                interval_s=int(s.get("interval_s", SENSOR_KINDS[kind])),
                name=s.get("name"),
                params=s.get("params", {}),
            )
        )
    for i, g in enumerate(doc.get("groups", [])):
        sensors.extend(_expand_group(g, by_id, f"{source}: groups[{i}]"))

    ids = [s.id for s in sensors]
    if len(set(ids)) != len(ids):
        dupes = sorted({x for x in ids if ids.count(x) > 1})[:5]
        raise ConfigError(f"{source}: duplicate sensor ids {dupes}", "give every sensor its own id")
    return Fleet(
        name=str(doc.get("fleet", {}).get("name", source)),
        zones=tuple(zones),
        sensors=tuple(sensors),
    )


def _sensor_kind(kind: str, where: str) -> str:
    if kind not in SENSOR_KINDS:
        raise ConfigError(
            f"{where}: sensor kind {kind!r} is unknown", f"use one of {sorted(SENSOR_KINDS)}"
        )
    return kind


def _zone_of(by_id: Mapping[str, Zone], zone_id: str | None, where: str) -> Zone | None:
    if zone_id is None:
        return None
    if zone_id not in by_id:
        raise ConfigError(f"{where}: zone {zone_id!r} is not defined", "add it under [[zones]]")
    return by_id[zone_id]


def _expand_group(g: Mapping[str, Any], by_id: Mapping[str, Zone], where: str) -> list[Sensor]:
    kind = _sensor_kind(_require(g, "kind", where), where)
    prefix = str(_require(g, "id_prefix", where))
    count = int(_require(g, "count", where))
    spread_m = float(g.get("spread_m", 0.0))
    out = []
    for zone_id in _require(g, "zones", where):
        zone = _zone_of(by_id, zone_id, where)
        assert zone is not None
        if zone.lat is None or zone.lon is None:
            raise ConfigError(f"{where}: zone {zone_id} has no coordinates", "add lat and lon")
        for n in range(1, count + 1):
            sensor_id = f"{prefix}-{zone_id}-{n:03d}"
            lat, lon = scatter(zone.lat, zone.lon, spread_m, sensor_id)
            out.append(
                Sensor(
                    id=sensor_id,
                    kind=kind,
                    zone=zone_id,
                    lat=lat,
                    lon=lon,
                    interval_s=int(g.get("interval_s", SENSOR_KINDS[kind])),
                    name=f"{zone.name} #{n}",
                    params=g.get("params", {}),
                )
            )
    return out


def scatter(lat: float, lon: float, spread_m: float, key: str) -> tuple[float, float]:
    """A point within ``spread_m`` metres of (lat, lon), fixed by ``key``, uniform on the disc."""
    digest = hashlib.sha256(key.encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    v = int.from_bytes(digest[8:16], "big") / 2**64
    r = spread_m * math.sqrt(u)
    theta = 2 * math.pi * v
    dlat = r * math.cos(theta) / METRES_PER_DEGREE
    dlon = r * math.sin(theta) / (METRES_PER_DEGREE * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)
