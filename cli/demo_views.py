"""Each user's views, read through the running API as that user would, and what the demo tells
each user to open.

The demo checks its own work here: once the job has run on live data it reads the collection
plan, the air stations, the villages (DLH), the tourist zones (tourism office), the anomalies
and alarms (engineers) with the keys it made, and says what is there and what is missing.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.demo_state import KEY_DIR, LABELS_FILE

ROLES = ("dlh", "tourism", "engineer", "admin")  # api.apikeys.ROLES
ROLE_SEES = {
    "dlh": "waste bins, collection plan, villages, air quality; their alarms",
    "tourism": "tourist zones: occupancy, density, crowding, today vs typical; crowding alarms",
    "engineer": "sensors, readings, anomalies, rejects; sensor alarms",
    "admin": "everything",
}
PAGE = 1000  # PANTAU_API_MAX_PAGE's default: the largest page


def get_json(base_url: str, path: str, key: str, timeout_s: float = 15.0) -> Any:
    if not base_url.startswith("http://"):
        raise ValueError(f"not the demo's API: {base_url}")
    request = urllib.request.Request(  # noqa: S310 (http only, checked above)
        base_url + path, headers={"X-API-Key": key, "Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        return json.load(response)


def items(base_url: str, path: str, key: str) -> list[dict[str, Any]]:
    """Every item of a list endpoint, page by page."""
    out: list[dict[str, Any]] = []
    sep = "&" if "?" in path else "?"
    while True:
        page = get_json(base_url, f"{path}{sep}limit={PAGE}&offset={len(out)}", key)
        out.extend(page["items"])
        if page["count"] < PAGE:
            return out


@dataclass
class Views:
    """What each user's views hold, as the API serves them."""

    plan_stops: int = 0
    plan_in_order: bool = False
    plan_km: float = 0.0
    stations: int = 0
    stations_with_ispu: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    villages: int = 0
    villages_with_collections: int = 0
    zones: int = 0
    zones_with_density: int = 0
    zones_vs_typical: int = 0
    zones_typical_zero: int = 0  # typical visitors by this hour is 0 (closed, not yet open)
    zones_no_typical: int = 0  # no past weeks to compare with
    anomalies: Counter[str] = field(default_factory=Counter)
    alarms: Counter[str] = field(default_factory=Counter)  # by state

    def missing(self) -> list[str]:
        """The views that are empty."""
        out = []
        if not self.plan_stops:
            out.append("collection plan (no bin needs collection)")
        if self.stations_with_ispu < self.stations or not self.stations:
            out.append(f"ISPU ({self.stations - self.stations_with_ispu} stations without one)")
        if not self.villages:
            out.append("village figures")
        if self.zones_with_density < self.zones or not self.zones:
            out.append(f"zone density ({self.zones - self.zones_with_density} zones without)")
        if not self.anomalies:
            out.append("anomalies")
        if not self.alarms:
            out.append("alarms")
        return out


def read_views(base_url: str, keys: dict[str, str]) -> Views:
    """Each view through the API, with the key of the role it is for."""
    v = Views()
    plan = get_json(base_url, "/v1/waste/collection-plan", keys["dlh"])
    stops = plan["stops"]
    v.plan_stops = len(stops)
    v.plan_in_order = [s["order"] for s in stops] == list(range(1, len(stops) + 1))
    v.plan_km = plan["total_m"] / 1000
    stations = items(base_url, "/v1/air/stations", keys["dlh"])
    v.stations = len(stations)
    current = [s["current"] for s in stations if s["current"] and s["current"]["category"]]
    v.stations_with_ispu = len(current)
    v.categories = Counter(c["category"] for c in current)
    villages = items(base_url, "/v1/waste/villages", keys["dlh"])
    v.villages = len(villages)
    v.villages_with_collections = sum(1 for x in villages if x["collections"])
    zones = items(base_url, "/v1/tourism/zones", keys["tourism"])
    v.zones = len(zones)
    v.zones_with_density = sum(1 for z in zones if z["density_ppm2"] is not None)
    v.zones_vs_typical = sum(1 for z in zones if z["vs_typical"] is not None)
    v.zones_typical_zero = sum(1 for z in zones if z["typical_to_date"] == 0)
    v.zones_no_typical = sum(1 for z in zones if z["typical_to_date"] is None)
    anomalies = items(base_url, "/v1/anomalies", keys["engineer"])
    v.anomalies = Counter(a["kind"] for a in anomalies)
    alarms = items(base_url, "/v1/alarms", keys["admin"])
    v.alarms = Counter(a["state"] for a in alarms)
    return v


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {c:,}" for k, c in counter.most_common()) or "none"


def view_lines(v: Views) -> list[str]:
    """What each user sees now, one line per user."""
    typical = f"{v.zones_vs_typical}/{v.zones} with today vs typical"
    why = []
    if v.zones_typical_zero:
        why.append(f"{v.zones_typical_zero} with a typical of 0 visitors by this hour")
    if v.zones_no_typical:
        why.append(f"{v.zones_no_typical} without past weeks to compare")
    if why:
        typical += f" ({'; '.join(why)})"
    return [
        f"  DLH        collection plan: {v.plan_stops} bins, {v.plan_km:.1f} km; ISPU at "
        f"{v.stations_with_ispu}/{v.stations} stations ({_counts(v.categories)}); "
        f"{v.villages} villages compared",
        f"  tourism    {v.zones_with_density}/{v.zones} zones with occupancy and density, "
        f"{typical}",
        f"  engineers  {sum(v.anomalies.values()):,} anomalies ({_counts(v.anomalies)})",
        f"  alarms     {_counts(v.alarms)}",
    ]


def report_lines(api_url: str, keys: dict[str, str]) -> list[str]:
    """Each user's views, read through the API: what they hold and what is still empty."""
    try:
        views = read_views(api_url, keys)
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        return [f"views: could not read them through the API: {exc}"]
    missing = views.missing()
    return [
        "each user's views, read through the API:",
        *view_lines(views),
        *(["  still empty: " + "; ".join(missing)] if missing else []),
    ]


def pantau_command() -> str:
    """The `pantau` script as a path that works in a new shell (which has no venv on PATH)."""
    script = Path(os.path.abspath(sys.executable)).parent / "pantau"
    return str(script) if script.exists() else shutil.which("pantau") or "pantau"


def hint_lines(
    *, state_dir: Path, api_url: str, keys: dict[str, str], metrics_url: str
) -> list[str]:
    """What each user should open, as commands that work in a new shell: keys from the files
    ``<state>/api-keys/<role>``, absolute paths, the state directory spelt out."""
    key_dir = state_dir / KEY_DIR
    repo = Path(__file__).resolve().parents[1]
    env = f"PANTAU_STATE_DIR={shlex.quote(str(state_dir))} {shlex.quote(pantau_command())}"

    def curl(role: str, path: str) -> str:
        header = f'"X-API-Key: $(cat {shlex.quote(str(key_dir / role))})"'
        return f"curl -s -H {header} {shlex.quote(api_url + path)}"

    return [
        f"API docs (every role): {api_url}/docs   (Authorize with a key below)",
        f"API keys, shown once (each also in {key_dir}/<role>, mode 0600):",
        *(f"  {role:<9} {keys[role]}   {ROLE_SEES[role]}" for role in ROLES),
        "DLH:",
        f"  {curl('dlh', '/v1/waste/collection-plan?format=csv')}",
        f"  {curl('dlh', '/v1/air/stations?format=csv')}",
        f"  {curl('dlh', '/v1/waste/villages?format=csv')}",
        "tourism office:",
        f"  {curl('tourism', '/v1/tourism/zones?format=csv')}",
        "engineers:",
        f"  {curl('engineer', '/v1/anomalies?limit=20&format=csv')}",
        f"  {curl('engineer', '/v1/alarms?state=open&format=csv')}",
        f"  {curl('engineer', '/v1/sensors?status=offline&format=csv')}",
        f"  ingest metrics: curl -s {metrics_url}",
        "Grafana needs Docker: docker-compose.yml runs the deployment, with a database and "
        "broker of its own, and Grafana on http://127.0.0.1:3000 (user admin):",
        f"  cd {shlex.quote(str(repo))} && cp -n .env.example .env   "
        "# then replace every CHANGE-ME in .env",
        f"  cd {shlex.quote(str(repo))} && docker compose up -d && "
        "docker compose --profile sim up -d   # with simulated traffic",
        f"  the dashboards' queries on this demo's database: {env} dashboards check",
        f"more keys: {env} api key create --name NAME --role dlh|tourism|engineer|admin",
        f"logs: {state_dir}/{{ingest,simulate,process,api}}.log; the injected faults: "
        f"{state_dir / LABELS_FILE}",
    ]
