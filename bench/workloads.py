"""The messages a run publishes: single readings, or gateway batches of many readings.

Every reading is a ``fill_pct`` of a waste bin. Within a chunk (one publisher process, one
topic, so one sensor) the timestamps are one second apart and end a minute before now, so that
every reading is valid, no two share a key, and they fall in one or two daily chunks of the
``readings`` hypertable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.clients import Chunk, write_chunk

STEP_MS = 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Workload:
    """``messages`` messages of ``per_message`` readings, ``chunk_messages`` per publisher."""

    name: str
    messages: int
    per_message: int
    chunk_messages: int

    @property
    def readings(self) -> int:
        return self.messages * self.per_message

    @property
    def chunks(self) -> int:
        return -(-self.messages // self.chunk_messages)


def fill_pct(i: int) -> float:
    """A valid, varied fill level for reading number ``i``."""
    return (i * 37 % 1000) / 10


def message_lines(count: int, per_message: int, end_ms: int) -> list[str]:
    """``count`` payloads; a single reading is an object, several are an array of objects."""
    first = end_ms - count * per_message * STEP_MS
    lines = []
    for m in range(count):
        items = [
            {"ts": first + i * STEP_MS, "fill_pct": fill_pct(i)}
            for i in range(m * per_message, (m + 1) * per_message)
        ]
        lines.append(orjson.dumps(items[0] if per_message == 1 else items).decode())
    return lines


def write_workload(
    directory: Path, topics: Sequence[str], workload: Workload, end_ms: int | None = None
) -> list[Chunk]:
    """The publisher input files of ``workload``: chunk ``i`` goes to ``topics[i]``.

    Each chunk needs a topic (a sensor) of its own: two on one sensor would repeat timestamps.
    """
    if len(topics) < workload.chunks:
        raise ValueError(f"{workload.chunks} chunks need as many topics, got {len(topics)}")
    end = (end_ms if end_ms is not None else now_ms()) - 60_000
    chunks = []
    left = workload.messages
    for i in range(workload.chunks):
        count = min(workload.chunk_messages, left)
        left -= count
        lines = message_lines(count, workload.per_message, end)
        chunks.append(write_chunk(directory, topics[i], lines))
    return chunks
