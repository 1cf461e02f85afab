"""From received messages to a written batch: topic, registry, decoding, validation, writing.

The :class:`Pipeline` knows nothing of MQTT: it takes ``(topic, payload, ack handle)`` and, on
flush, returns the ack handles of every message whose data (readings and rejects) is committed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psycopg

from ingest.batch import Batch, Columns, Message, RejectRow
from ingest.dberrors import is_transient
from ingest.decode import decode
from ingest.snapshot import Registry
from ingest.writer import Readings, Writer
from pantau.topics import parse_topic
from processing.arrays import I64Array
from processing.keys import first_occurrence
from processing.reasons import (
    BAD_TOPIC,
    DB_REJECTED,
    KIND_MISMATCH,
    MALFORMED,
    UNKNOWN_SENSOR,
    VALIDATION_CODES,
)
from processing.validate import validate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    max_payload_bytes: int
    max_readings_per_message: int
    future_tolerance_ms: int


@dataclass(frozen=True)
class FlushResult:
    acks: list[tuple[int, int, int]]
    messages: int
    readings: int  # valid readings in the batch, duplicates included
    inserted: int  # of which newly stored (what downstream processing sees)
    rejects: int
    rejects_by_reason: dict[str, int]
    commit_s: float


class Pipeline:
    def __init__(
        self,
        root: str,
        registry: Registry,
        limits: Limits,
        reload_registry: Callable[[], None] = lambda: None,
    ) -> None:
        self.root = root
        self.registry = registry
        self.limits = limits
        self.reload_registry = reload_registry
        self.batch = Batch()

    def add(self, topic: str, payload: bytes, ack: tuple[int, int, int], received_ms: int) -> None:
        """Add one message to the batch: its valid readings, or its rejects."""
        parsed = parse_topic(self.root, topic)
        sensor_id = parsed.sensor_id if parsed else None
        index = self.batch.add_message(Message(topic, payload, received_ms, ack, sensor_id))
        if parsed is None:
            self.batch.reject(index, BAD_TOPIC, f"not {self.root}/<kind>/<sensor_id>")
            return
        entry = self.registry.sensors.get(parsed.sensor_id)
        if entry is None:
            # Registered since the last load? The callback reloads, at most every few seconds.
            self.reload_registry()
            entry = self.registry.sensors.get(parsed.sensor_id)
        if entry is None:
            self.batch.reject(index, UNKNOWN_SENSOR, "sensor is not in the registry")
            return
        if entry.kind != parsed.kind:
            self.batch.reject(
                index, KIND_MISMATCH, f"sensor is a {entry.kind}, topic says {parsed.kind}"
            )
            return
        try:
            decoded = decode(
                payload,
                max_bytes=self.limits.max_payload_bytes,
                max_readings=self.limits.max_readings_per_message,
                now_ms=received_ms,
            )
        except Exception as exc:
            # A payload the decoder cannot handle is a bug to fix, logged as such, and still a
            # recorded reject: otherwise the broker would redeliver it to every restart.
            logger.exception("decoding a message on %s failed; it is rejected", topic)
            self.batch.reject(index, MALFORMED, f"could not be decoded ({type(exc).__name__})")
            return
        for problem in decoded.problems:
            self.batch.reject(index, problem.reason, problem.detail, problem.metric)
        metric_ids = self.registry.metric_ids
        self.batch.add_readings(
            index,
            decoded,
            entry.sensor_key,
            entry.kind_idx,
            entry.installed_ms,
            [metric_ids.get(name, -1) for name in decoded.metrics],
        )

    def due(self, now_ms: int, max_readings: int, max_messages: int, max_age_ms: int) -> bool:
        """Whether the batch should be written: full in readings or in messages, or old."""
        batch = self.batch
        if not batch:
            return False
        started = batch.started_ms if batch.started_ms is not None else now_ms
        return (
            batch.n_readings >= max_readings
            or len(batch.messages) >= max_messages
            or now_ms - started >= max_age_ms
        )

    def take(self) -> Batch:
        """The batch built so far; a new one starts."""
        batch, self.batch = self.batch, Batch()
        return batch

    def write(self, batch: Batch, writer: Writer, now_ms: int) -> FlushResult:
        """Validate and write ``batch`` in one transaction.

        A transient database error propagates: the caller retries the same batch (writing is
        idempotent). A permanent one (the database refuses some row) makes the batch be written
        message by message, and the readings of a message the database refuses become
        ``db_rejected`` rejects.
        """
        cols = batch.columns()
        reason = validate(
            self.registry.catalog,
            cols.kind_idx,
            cols.metric_id,
            cols.ts_ms,
            cols.value,
            cols.installed_ms,
            now_ms,
            self.limits.future_tolerance_ms,
        )
        valid = reason == 0
        rejects = list(batch.rejects)
        for i in np.flatnonzero(~valid).tolist():
            detail = f"value {cols.value[i]!r} at ts_ms {int(cols.ts_ms[i])}"
            rejects.append(
                batch.reject_row(
                    int(cols.message[i]),
                    VALIDATION_CODES[int(reason[i])],
                    detail,
                    cols.metric_name[i],
                )
            )
        keep = np.flatnonzero(valid)
        keep = keep[first_occurrence(cols.sensor_key[keep], cols.metric_id[keep], cols.ts_ms[keep])]
        try:
            result = writer.write(_readings(cols, keep), rejects)
            inserted, commit_s = int(result.inserted.sum()), result.commit_s
        except psycopg.Error as exc:
            if is_transient(exc):
                raise
            logger.error(
                "the database refused a batch of %d messages (%s: %s); writing them one by one",
                len(batch.messages),
                exc.sqlstate,
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )
            inserted, commit_s, rejects = _write_each(batch, writer, cols, keep, rejects)
        return FlushResult(
            acks=[m.ack for m in batch.messages],
            messages=len(batch.messages),
            readings=int(valid.sum()),
            inserted=inserted,
            rejects=len(rejects),
            rejects_by_reason=dict(Counter(r.reason for r in rejects)),
            commit_s=commit_s,
        )


def _write_each(
    batch: Batch, writer: Writer, cols: Columns, keep: I64Array, rejects: list[RejectRow]
) -> tuple[int, float, list[RejectRow]]:
    """Write message by message; returns (inserted, seconds, all rejects written)."""
    inserted, commit_s, written = 0, 0.0, []
    for index in range(len(batch.messages)):
        mine = keep[cols.message[keep] == index]
        own_rejects = [r for r in rejects if r.message == index]
        try:
            result = writer.write(_readings(cols, mine), own_rejects)
            inserted += int(result.inserted.sum())
        except psycopg.Error as exc:
            if is_transient(exc):
                raise
            detail = f"{exc.sqlstate}: {str(exc).strip()[:150]}"
            own_rejects = own_rejects + [
                batch.reject_row(index, DB_REJECTED, detail, cols.metric_name[i])
                for i in mine.tolist()
            ]
            result = writer.write(_readings(cols, mine[:0]), own_rejects)
        commit_s += result.commit_s
        written.extend(own_rejects)
    return inserted, commit_s, written


def _readings(cols: Columns, rows: I64Array) -> Readings:
    return Readings(
        sensor_key=cols.sensor_key[rows],
        metric_id=cols.metric_id[rows],
        ts_ms=cols.ts_ms[rows],
        value=cols.value[rows],
    )
