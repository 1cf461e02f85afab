"""From received messages to a written batch: topic, registry, decoding, validation, writing.

The :class:`Pipeline` knows nothing of MQTT or of the database: it takes ``(topic, payload, ack
handle)``, looks sensors up in the registry snapshot it was given, and on flush hands the
batch's rows to a :class:`Store`, returning the ack handles of every message whose data
(readings and rejects) is committed.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ingest.batch import Batch, Columns, Message, Readings, RejectRow, WriteResult
from ingest.decode import decode
from ingest.snapshot import EMPTY, RegistrySnapshot
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


class RefusedError(Exception):
    """The store refused a write for good: the same rows would fail again (a constraint, a
    value the column cannot hold). ``code`` is the store's own (an SQLSTATE), ``message`` its
    text. Any other exception of :meth:`Store.write` is the caller's to retry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Store(Protocol):
    def write(self, readings: Readings, rejects: list[RejectRow]) -> WriteResult:
        """Store ``readings`` and ``rejects`` in one transaction; raise :class:`RefusedError` when
        the data itself is refused."""
        ...


class Pipeline:
    """Builds batches from messages and writes them.

    ``snapshot`` is the registry it looks sensors up in. The caller replaces it (one
    assignment) when it has loaded a newer one; each call reads it once, so a call works on one
    snapshot from start to end whichever thread replaces it meanwhile.
    """

    def __init__(self, root: str, limits: Limits, snapshot: RegistrySnapshot = EMPTY) -> None:
        self.root = root
        self.limits = limits
        self.snapshot = snapshot
        self.batch = Batch()

    def add(
        self,
        topic: str,
        payload: bytes,
        ack: tuple[int, int, int],
        received_ms: int,
        *,
        hold_unknown: bool = False,
    ) -> bool:
        """Add one message to the batch: its valid readings, or its rejects. Returns True.

        With ``hold_unknown``, a message whose sensor is not in the snapshot is not added and
        False is returned: the caller may load a newer snapshot (the sensor may have been
        registered since) and add the message again, in its turn, so acks keep receive order.
        """
        parsed = parse_topic(self.root, topic)
        snapshot = self.snapshot
        entry = snapshot.sensors.get(parsed.sensor_id) if parsed else None
        if parsed is not None and entry is None and hold_unknown:
            return False
        sensor_id = parsed.sensor_id if parsed else None
        index = self.batch.add_message(Message(topic, payload, received_ms, ack, sensor_id))
        if parsed is None:
            self.batch.reject(index, BAD_TOPIC, f"not {self.root}/<kind>/<sensor_id>")
            return True
        if entry is None:
            self.batch.reject(index, UNKNOWN_SENSOR, "sensor is not in the registry")
            return True
        if entry.kind != parsed.kind:
            self.batch.reject(
                index, KIND_MISMATCH, f"sensor is a {entry.kind}, topic says {parsed.kind}"
            )
            return True
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
            return True
        for problem in decoded.problems:
            self.batch.reject(index, problem.reason, problem.detail, problem.metric)
        metric_ids = snapshot.metric_ids
        self.batch.add_readings(
            index,
            decoded,
            entry.sensor_key,
            entry.kind_idx,
            entry.installed_ms,
            [metric_ids.get(name, -1) for name in decoded.metrics],
        )
        return True

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

    def write(self, batch: Batch, store: Store, now_ms: int) -> FlushResult:
        """Validate and write ``batch`` in one transaction.

        An error of the store other than :class:`RefusedError` propagates: the caller retries the
        same batch (writing is idempotent). A refusal makes the batch be written message by
        message, and the readings of a message the store refuses become ``db_rejected`` rejects.
        """
        cols = batch.columns()
        reason = validate(
            self.snapshot.catalog,
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
        bad = np.flatnonzero(~valid)
        for i, value, ts_ms in zip(
            bad.tolist(), cols.value[bad].tolist(), cols.ts_ms[bad].tolist(), strict=True
        ):
            rejects.append(
                batch.reject_row(
                    int(cols.message[i]),
                    VALIDATION_CODES[int(reason[i])],
                    validation_detail(value, ts_ms),
                    cols.metric_name[i],
                )
            )
        keep = np.flatnonzero(valid)
        keep = keep[first_occurrence(cols.sensor_key[keep], cols.metric_id[keep], cols.ts_ms[keep])]
        try:
            result = store.write(_readings(cols, keep), rejects)
            inserted, commit_s = int(result.inserted.sum()), result.commit_s
        except RefusedError as exc:
            logger.error(
                "the database refused a batch of %d messages (%s: %s); writing them one by one",
                len(batch.messages),
                exc.code,
                exc.message.splitlines()[0] if exc.message else "no message",
            )
            inserted, commit_s, rejects = _write_each(batch, store, cols, keep, rejects)
        return FlushResult(
            acks=[m.ack for m in batch.messages],
            messages=len(batch.messages),
            readings=int(valid.sum()),
            inserted=inserted,
            rejects=len(rejects),
            rejects_by_reason=dict(Counter(r.reason for r in rejects)),
            commit_s=commit_s,
        )


def validation_detail(value: float, ts_ms: int) -> str:
    """The detail of a reading that failed validation, its numbers as plain Python numbers:
    ``value 5000.0 at ts_ms 1795000000000`` (``nan``, ``inf`` for the non-finite), never a
    NumPy repr such as ``np.float64(5000.0)``."""
    return f"value {float(value)!r} at ts_ms {int(ts_ms)}"


def _write_each(
    batch: Batch, store: Store, cols: Columns, keep: I64Array, rejects: list[RejectRow]
) -> tuple[int, float, list[RejectRow]]:
    """Write message by message; returns (inserted, seconds, all rejects written)."""
    inserted, commit_s, written = 0, 0.0, []
    for index in range(len(batch.messages)):
        mine = keep[cols.message[keep] == index]
        own_rejects = [r for r in rejects if r.message == index]
        try:
            result = store.write(_readings(cols, mine), own_rejects)
            inserted += int(result.inserted.sum())
        except RefusedError as exc:
            detail = f"{exc.code}: {exc.message[:150]}"
            own_rejects = own_rejects + [
                batch.reject_row(index, DB_REJECTED, detail, cols.metric_name[i])
                for i in mine.tolist()
            ]
            result = store.write(_readings(cols, mine[:0]), own_rejects)
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
