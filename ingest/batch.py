"""Columnar batches: messages accumulate here until a flush turns them into aligned arrays.

A batch remembers, per message, what must be acknowledged after the commit, and per reading,
which message it came from (so that a rejected reading can be stored with its topic and payload).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ingest.decoded import Decoded
from processing.arrays import BoolArray, F64Array, I16Array, I32Array, I64Array, U8Array

PAYLOAD_KEEP_BYTES = 1024  # rejects keep at most this much of the raw payload
TEXT_KEEP_CHARS = 200  # ... and of each text field


def clean_text(text: str | None) -> str | None:
    """Text that PostgreSQL can store (no NUL) and bounded in length."""
    if text is None:
        return None
    return text[:TEXT_KEEP_CHARS].replace("\x00", "\\0")


@dataclass(frozen=True)
class RejectRow:
    """One row of the ``rejects`` table."""

    received_ms: int
    topic: str
    payload: bytes
    payload_len: int
    reason: str
    detail: str
    sensor_id: str | None = None
    metric: str | None = None
    message: int = -1  # index of the message in its batch (not stored)


@dataclass(frozen=True)
class Message:
    """What a flush needs of a received message: its ack handle and, for rejects, its content."""

    topic: str
    payload: bytes
    received_ms: int
    ack: tuple[int, int, int]  # (connection generation, mid, qos)
    sensor_id: str | None


@dataclass(frozen=True)
class Columns:
    """Aligned arrays, one element per reading."""

    sensor_key: I32Array
    kind_idx: U8Array
    metric_id: I16Array
    ts_ms: I64Array
    value: F64Array
    installed_ms: I64Array
    message: I64Array  # index into Batch.messages
    metric_name: list[str]


@dataclass
class Batch:
    messages: list[Message] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    _sensor_key: list[int] = field(default_factory=list)
    _kind_idx: list[int] = field(default_factory=list)
    _metric_id: list[int] = field(default_factory=list)
    _ts_ms: list[int] = field(default_factory=list)
    _value: list[float] = field(default_factory=list)
    _installed_ms: list[int] = field(default_factory=list)
    _message: list[int] = field(default_factory=list)
    _metric_name: list[str] = field(default_factory=list)
    started_ms: int | None = None

    @property
    def n_readings(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def add_message(self, message: Message) -> int:
        if self.started_ms is None:
            self.started_ms = message.received_ms
        self.messages.append(message)
        return len(self.messages) - 1

    def reject(self, index: int, reason: str, detail: str, metric: str | None = None) -> None:
        """Record a reject of message ``index`` (the whole message, or one ``metric`` of it)."""
        self.rejects.append(self.reject_row(index, reason, detail, metric))

    def reject_row(
        self, index: int, reason: str, detail: str, metric: str | None = None
    ) -> RejectRow:
        m = self.messages[index]
        return RejectRow(
            received_ms=m.received_ms,
            topic=m.topic.replace("\x00", "\\0"),
            payload=m.payload[:PAYLOAD_KEEP_BYTES],
            payload_len=len(m.payload),
            reason=reason,
            detail=clean_text(detail) or "",
            sensor_id=clean_text(m.sensor_id),
            metric=clean_text(metric),
            message=index,
        )

    def add_readings(
        self,
        index: int,
        decoded: Decoded,
        sensor_key: int,
        kind_idx: int,
        installed_ms: int,
        metric_ids: list[int],
    ) -> None:
        """The readings of message ``index``; ``metric_ids`` holds -1 for unknown names."""
        n = len(decoded.values)
        self._sensor_key.extend([sensor_key] * n)
        self._kind_idx.extend([kind_idx] * n)
        self._installed_ms.extend([installed_ms] * n)
        self._message.extend([index] * n)
        self._metric_id.extend(metric_ids)
        self._ts_ms.extend(decoded.ts_ms)
        self._value.extend(decoded.values)
        self._metric_name.extend(decoded.metrics)

    def columns(self) -> Columns:
        return Columns(
            sensor_key=np.array(self._sensor_key, dtype=np.int32),
            kind_idx=np.array(self._kind_idx, dtype=np.uint8),
            metric_id=np.array(self._metric_id, dtype=np.int16),
            ts_ms=np.array(self._ts_ms, dtype=np.int64),
            value=np.array(self._value, dtype=np.float64),
            installed_ms=np.array(self._installed_ms, dtype=np.int64),
            message=np.array(self._message, dtype=np.int64),
            metric_name=self._metric_name,
        )


@dataclass(frozen=True)
class Readings:
    """Valid readings to store, deduplicated by key."""

    sensor_key: I32Array
    metric_id: I16Array
    ts_ms: I64Array
    value: F64Array

    def __len__(self) -> int:
        return int(self.value.shape[0])


@dataclass(frozen=True)
class WriteResult:
    inserted: BoolArray  # per reading of the batch: newly stored (False: already there)
    rejects: int
    commit_s: float
    rollup_rows: int = 0
    anomalies: int = 0
