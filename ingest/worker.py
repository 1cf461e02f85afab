"""`pantau ingest`: the MQTT subscriber that feeds the pipeline and acknowledges after commit.

Guarantees (DESIGN.md section 3):

- QoS 1, a fixed client id, clean start off and a session expiry: the broker keeps our
  subscription and queues messages while the worker is away.
- Manual acknowledgement: a PUBACK is sent only after the transaction holding the message has
  committed. A crash before that makes the broker redeliver; the primary key of ``readings``
  drops the duplicates.
- Flow control: MQTT v5 Receive Maximum caps how many unacknowledged messages the broker sends
  us, and a bounded inbox makes paho stop reading the socket when the broker sends more, so
  while the database is slow or down the worker stops receiving instead of buffering.
- Acks are sent in receive order (MQTT 5 section 4.6), and never for a message received on an
  earlier connection: after a reconnect the broker redelivers those, with new packet ids when
  the session was lost.

paho's network thread only puts messages on a queue (waiting when it is full: that is the
backpressure); all work happens on the main thread.

The worker is handed its connections: ``connect_db`` opens a database connection and
``make_client`` builds its MQTT client (cli/commands/ingest.py passes the real ones). It follows
Pantau's MQTT failure policy (:class:`pantau.mqtt.FailurePolicy`): it reconnects after network
errors, and stops with a ConfigError when the broker refuses its login or its subscription.
The registry is an immutable snapshot that the main thread alone replaces: at start, and when
a message comes from a sensor the snapshot does not know (at most every ``reload_every_s``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from psycopg.rows import TupleRow

from ingest.batch import Batch, Readings, RejectRow, WriteResult
from ingest.dberrors import is_transient
from ingest.derive import Detection
from ingest.metrics import IngestMetrics
from ingest.mqttclient import BufferedClient
from ingest.pipeline import FlushResult, Limits, Pipeline, RefusedError
from ingest.settings import IngestSettings
from ingest.snapshot import RegistrySnapshot
from ingest.writer import Writer, load_snapshot
from pantau.db.migrate import require_current
from pantau.errors import ConfigError, ServiceUnavailableError
from pantau.mqtt import FailurePolicy, MqttEndpoint
from pantau.topics import telemetry_filter
from processing.rules import metric_rules

logger = logging.getLogger(__name__)


STOP_TIMEOUT_S = 30
IDLE_POLL_S = 0.002  # how long the main thread sleeps when the inbox is empty
RELOAD_EVERY_S = 10.0  # registry reloads for unknown sensors: at most one per this long

ConnectDb = Callable[[], psycopg.Connection[TupleRow]]
MakeClient = Callable[[], BufferedClient]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Counters:
    """Running totals, for the log summary and the callers of :meth:`Worker.run`."""

    messages: int = 0
    readings: int = 0
    inserted: int = 0
    rejects: int = 0
    batches: int = 0
    commit_s_total: float = 0.0
    db_retries: int = 0

    def add(self, r: FlushResult) -> None:
        self.messages += r.messages
        self.readings += r.readings
        self.inserted += r.inserted
        self.rejects += r.rejects
        self.batches += 1
        self.commit_s_total += r.commit_s


class DatabaseStore:
    """The writer as the pipeline's store: a database error that would recur with the same
    rows (not :func:`ingest.dberrors.is_transient`) becomes :class:`RefusedError`."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def write(self, readings: Readings, rejects: list[RejectRow]) -> WriteResult:
        try:
            return self.writer.write(readings, rejects)
        except psycopg.Error as exc:
            if is_transient(exc):
                raise
            raise RefusedError(str(exc.sqlstate), str(exc).strip() or type(exc).__name__) from exc


class Worker:
    """One ingest worker. ``run`` returns when ``stop`` is set, after a last flush and ack.

    ``connect_db`` opens a new database connection (the writer's, and one per registry reload);
    ``make_client`` builds the MQTT client, which the worker gives its callbacks and connects.
    """

    def __init__(
        self, settings: IngestSettings, connect_db: ConnectDb, make_client: MakeClient
    ) -> None:
        self.settings = settings
        self.connect_db = connect_db
        self.endpoint: MqttEndpoint = settings.resolved_mqtt()
        self.topic_filter = telemetry_filter(settings.topic_root, settings.shared_group)
        self.policy = FailurePolicy(self.endpoint, where="PANTAU_MQTT_URL")
        # Bounded: when it is full, paho's network thread waits in on_message, stops reading the
        # socket, and TCP pushes back on the broker. The MQTT v5 receive maximum should make this
        # unnecessary, but Mosquitto 2.0.11 sends a resumed session's queue past it.
        self.inbox: queue.SimpleQueue[tuple[int, int, int, str, bytes, int]] = queue.SimpleQueue()
        self.inbox_limit = settings.receive_maximum
        self.inbox_room = threading.Event()
        self.generation = 0
        self.stopping = False
        self.ready = threading.Event()  # connected and subscribed
        self.counters = Counters()
        self.metrics = IngestMetrics()
        self.conn: psycopg.Connection[TupleRow] | None = None
        self.store: DatabaseStore | None = None
        self.reload_every_s = RELOAD_EVERY_S
        self.last_reload = -float("inf")  # time.monotonic() of the last reload attempt
        self.v5 = settings.mqtt_version == "5"
        self.client = self._set_up(make_client())
        limits = Limits(
            max_payload_bytes=settings.max_payload_bytes,
            max_readings_per_message=settings.max_readings_per_message,
            future_tolerance_ms=settings.future_tolerance_s * 1000,
        )
        self.pipeline = Pipeline(settings.topic_root, limits)
        self.handoff: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        # Unacknowledged messages sit in the inbox, the batch being built, the batch handed over
        # and the batch being written: a quarter of the receive maximum per batch keeps the
        # pipeline full without waiting on the broker's quota.
        self.batch_max_messages = max(1, settings.receive_maximum // 4)
        self.writer_error: BaseException | None = None

    # -- MQTT (paho's network thread runs the callbacks) --------------------------------------

    def _set_up(self, client: BufferedClient) -> BufferedClient:
        """Give ``client`` the failure policy (reconnect backoff) and the worker's callbacks."""
        self.policy.apply(client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        return props

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not self.policy.connected(client, reason_code):
            return  # retried with backoff, or fatal: the main thread raises it
        self.generation += 1
        topic_filter = self.topic_filter
        if self.v5:
            client.subscribe(topic_filter, options=SubscribeOptions(qos=1))
        else:
            client.subscribe(topic_filter, qos=1)
        logger.info(
            "connected to %s (session present: %s), subscribed to %s",
            self.endpoint.url(),
            flags.session_present,
            topic_filter,
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if self.policy.subscribed(client, reason_codes, self.topic_filter):
            self.ready.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.ready.clear()
        if not self.stopping and not self.policy.refused.is_set():
            logger.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        while self.inbox.qsize() >= self.inbox_limit and not self.stopping:
            self.inbox_room.clear()
            self.inbox_room.wait(0.1)  # the main thread sets it when it has taken messages
        self.inbox.put((self.generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload), now_ms()))

    # -- database ----------------------------------------------------------------------------

    def _open_db(self, *, load_registry: bool = False) -> None:
        """Open the writer's connection (checking the schema) and the writer on it; with
        ``load_registry`` (at start, on the main thread) also load the registry snapshot."""
        conn = self.connect_db()
        try:
            require_current(conn)
            conn.commit()
            if load_registry:
                self._use(load_snapshot(conn))
            metric_ids = dict(self.pipeline.snapshot.metric_ids)
            detection = Detection(metric_rules(metric_ids)) if self.settings.detect else None
            writer = Writer(conn, detection)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        self.conn, self.store = conn, DatabaseStore(writer)

    def _close_db(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn = None
        self.store = None

    def _use(self, snapshot: RegistrySnapshot) -> None:
        """Make ``snapshot`` the pipeline's registry: one assignment, so that the writer thread
        (which validates with its catalog) sees the old snapshot or the new one, never a mix."""
        self.last_reload = snapshot.loaded_at
        self.pipeline.snapshot = snapshot

    def _reload_registry(self) -> None:
        """Reload the registry (main thread only) on a connection of its own: the writer thread
        owns ``self.conn``. At most every ``reload_every_s``; a failure keeps the current one."""
        now = time.monotonic()
        if now - self.last_reload < self.reload_every_s:
            return
        self.last_reload = now
        try:
            with self.connect_db() as conn:
                snapshot = load_snapshot(conn)
        except (psycopg.Error, ServiceUnavailableError) as exc:
            logger.warning("registry reload failed (%s); keeping the current one", exc)
            return
        self._use(snapshot)

    # -- main loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> Counters:
        """Ingest until ``stop`` is set. Fails fast if the database is unreachable at start.

        The main thread decodes messages into a batch while a writer thread commits the previous
        one: decoding and the database work overlap. At most one batch waits between them.
        """
        self._open_db(load_registry=True)
        if self.settings.metrics_port:
            try:
                self.metrics.serve(self.settings.metrics_port)
            except OSError as exc:
                raise ConfigError(
                    f"cannot serve metrics on port {self.settings.metrics_port}: {exc}",
                    "choose another PANTAU_INGEST_METRICS_PORT, or 0 to turn metrics off",
                ) from exc
        logger.info(
            "registry: %d sensors, %d metrics",
            len(self.pipeline.snapshot.sensors),
            len(self.pipeline.snapshot.metric_ids),
        )
        if self.v5:
            self.client.connect_async(
                self.endpoint.host,
                self.endpoint.port,
                keepalive=30,
                clean_start=False,
                properties=self._connect_properties(),
            )
        else:
            self.client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self.client.loop_start()
        writer = threading.Thread(
            target=self._write_loop, args=(stop,), name="pantau-writer", daemon=True
        )
        writer.start()
        next_summary = time.monotonic() + self.settings.summary_every_s
        last = Counters()
        pipeline = self.pipeline
        try:
            while not stop.is_set() and writer.is_alive():
                self.policy.raise_if_refused()  # a login or subscription the broker refuses
                if not self._drain():
                    stop.wait(IDLE_POLL_S)
                if pipeline.due(
                    now_ms(),
                    self.settings.batch_max_readings,
                    self.batch_max_messages,
                    self.settings.batch_max_age_ms,
                ):
                    self._hand_over(pipeline.take(), writer)
                if time.monotonic() >= next_summary:
                    self._log_summary(last)
                    last = Counters(**vars(self.counters))
                    next_summary += self.settings.summary_every_s
            # Graceful stop: take what was received, commit it, ack it, then disconnect.
            self._drain()
            if pipeline.batch:
                self._hand_over(pipeline.take(), writer)
        finally:
            # From here paho's thread no longer waits for room in the inbox.
            self.stopping = True
            self._hand_over(None, writer, timeout_s=STOP_TIMEOUT_S)
            writer.join(timeout=STOP_TIMEOUT_S)
            if writer.is_alive():
                logger.error(
                    "the writer did not finish within %d s; its messages stay unacknowledged "
                    "and the broker will redeliver them",
                    STOP_TIMEOUT_S,
                )
            self.client.disconnect()
            self.client.loop_stop()
            self.client.close()
            self._close_db()
        if self.writer_error is not None:
            raise self.writer_error
        self._log_summary(last)
        return self.counters

    def _drain(self) -> bool:
        """Move received messages into the batch, until it is full or the inbox is empty.

        Never blocks: ``SimpleQueue.get`` with a timeout can wait forever once a signal has
        interrupted it (CPython 3.11), so the caller waits on the stop event instead.
        """
        pipeline = self.pipeline
        limit = self.settings.batch_max_readings
        try:
            item = self.inbox.get_nowait()
        except queue.Empty:
            return False
        try:
            while True:
                generation, mid, qos, topic, payload, received = item
                ack = (generation, mid, qos)
                if not pipeline.add(topic, payload, ack, received, hold_unknown=True):
                    # Its sensor is not in the snapshot: registered since it was loaded? Reload
                    # (rate-limited) and add it again; a sensor still unknown is rejected.
                    self._reload_registry()
                    pipeline.add(topic, payload, ack, received)
                if pipeline.batch.n_readings >= limit:
                    return True
                item = self.inbox.get_nowait()
        except queue.Empty:
            return True
        finally:
            self.inbox_room.set()

    def _hand_over(
        self, batch: Batch | None, writer: threading.Thread, timeout_s: float = float("inf")
    ) -> None:
        """Give the writer a batch (None: no more), waiting while it is busy with another."""
        deadline = time.monotonic() + timeout_s
        while writer.is_alive() and time.monotonic() < deadline:
            try:
                self.handoff.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue
        # The writer is gone (stopped while the database was down, or failed): the batch's
        # messages stay unacknowledged and the broker redelivers them.

    def _write_loop(self, stop: threading.Event) -> None:
        try:
            while (batch := self.handoff.get()) is not None:
                if not self._flush(batch, stop):
                    return
        except BaseException as exc:  # noqa: BLE001 (handed to the main thread, which raises it)
            self.writer_error = exc
            stop.set()

    def _flush(self, batch: Batch, stop: threading.Event) -> bool:
        """Write and ack ``batch``, retrying transient database errors until ``stop``.

        Returns False when stopped before the batch could be written: its messages stay
        unacknowledged and the broker redelivers them.
        """
        delay_s = 0.5
        while True:
            try:
                if self.store is None:
                    self._open_db()
                assert self.store is not None
                result = self.pipeline.write(batch, self.store, now_ms())
                break
            except (psycopg.Error, ServiceUnavailableError) as exc:
                if isinstance(exc, psycopg.Error) and not is_transient(exc):
                    raise
                self.counters.db_retries += 1
                self.metrics.db_retries.inc()
                logger.warning(
                    "database unavailable (%s); %d messages wait unacknowledged; retry in %.1f s",
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    len(batch.messages),
                    delay_s,
                )
                self._close_db()
                if stop.wait(delay_s):
                    return False
                delay_s = min(delay_s * 2, 10.0)
        self.counters.add(result)
        self.metrics.record_flush(
            result.messages, result.readings, result.inserted, result.rejects_by_reason,
            result.commit_s,
        )  # fmt: skip
        self._ack(result.acks)
        self.metrics.unacked.set(self.inbox.qsize() + len(self.pipeline.batch.messages))
        return True

    def _ack(self, acks: list[tuple[int, int, int]]) -> None:
        """PUBACK, in receive order, what this connection received; the broker redelivers the
        rest (messages of an earlier connection) and the primary key drops the duplicates."""
        generation = self.generation
        self.client.ack_many([mid for gen, mid, qos in acks if gen == generation and qos == 1])

    def _log_summary(self, last: Counters) -> None:
        c = self.counters
        period = self.settings.summary_every_s
        logger.info(
            "ingest: %.0f readings/s, %d messages, %d readings (%d new), %d rejects, "
            "%d batches, mean commit %.1f ms, %d db retries, queue %d",
            (c.readings - last.readings) / period,
            c.messages,
            c.readings,
            c.inserted,
            c.rejects,
            c.batches,
            1000 * c.commit_s_total / max(c.batches, 1),
            c.db_retries,
            self.inbox.qsize(),
        )
