"""What the demo keeps in the state directory between runs.

- ``demo.json``: the demo's pid and its children's (a second demo on the same directory is
  refused; a test checks that none survives), and the time the job has processed up to, so a
  rerun processes only what came after.
- ``api-keys/<role>``: one API key per role (mode 0600), reused while it is valid, so the curl
  commands the demo printed keep working after a rerun.
- ``labels.d/*.csv``: the injected faults of each simulator run; ``labels.csv`` merges them.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from api import apikeys
from ops.credentials import write_private
from simulators.labels import read_csv, save_csv

STATE_FILE = "demo.json"
KEY_DIR = "api-keys"
LABELS_DIR = "labels.d"
LABELS_FILE = "labels.csv"


@dataclass
class DemoState:
    pid: int | None = None
    pids: dict[str, int] = field(default_factory=dict)
    started_stack: bool = False
    processed_until_s: int | None = None


def load_state(state_dir: Path) -> DemoState:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
        return DemoState(**data)
    except (OSError, ValueError, TypeError):
        return DemoState()


def save_state(state_dir: Path, state: DemoState) -> None:
    with contextlib.suppress(OSError):
        (state_dir / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n")


def keep_keys(
    conn: psycopg.Connection[Any], state_dir: Path, roles: tuple[str, ...]
) -> dict[str, str]:
    """One key per role: the one kept from a previous run while it is valid, else a new one
    (written to ``api-keys/<role>``). The caller commits."""
    folder = state_dir / KEY_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    keys = {}
    for role in roles:
        path = folder / role
        key = path.read_text().strip() if path.exists() else ""
        if not _valid(conn, key, role):
            key = apikeys.create(conn, f"demo {role}", role).key
            write_private(path, key + "\n")
        keys[role] = key
    return keys


def _valid(conn: psycopg.Connection[Any], key: str, role: str) -> bool:
    parsed = apikeys.parse(key)
    if parsed is None:
        return False
    row = conn.execute(
        "SELECT secret_sha256 FROM api_keys WHERE key_id = %s AND role = %s AND revoked_at IS NULL",
        (parsed[0], role),
    ).fetchone()
    return row is not None and apikeys.matches(parsed[1], bytes(row[0]))


def labels_path(state_dir: Path, run: str) -> Path:
    """Where one simulator run writes its labels."""
    folder = state_dir / LABELS_DIR
    folder.mkdir(exist_ok=True)
    return folder / f"{run}.csv"


def merge_labels(state_dir: Path) -> int:
    """``labels.csv``: the faults of every simulator run of this state directory. Returns how
    many."""
    merged = set()
    for path in sorted((state_dir / LABELS_DIR).glob("*.csv")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            merged.update(read_csv(path))
    labels = sorted(merged, key=lambda x: (x.start_ms, x.sensor_id, x.metric, x.kind))
    save_csv(labels, state_dir / LABELS_FILE)
    return len(labels)
