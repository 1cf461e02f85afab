"""Prometheus metrics of an ingest worker, in a registry of its own (several workers may share a
process in tests), served over HTTP when a port is configured."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 20000, 50000)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter(
            "pantau_ingest_messages",
            "MQTT messages committed (with readings or rejects)",
            registry=r,
        )
        self.readings = Counter(
            "pantau_ingest_readings", "Valid readings received, duplicates included", registry=r
        )
        self.inserted = Counter(
            "pantau_ingest_inserted", "Readings newly stored (duplicates excluded)", registry=r
        )
        self.rejects = Counter(
            "pantau_ingest_rejects", "Rejected messages or readings", ["reason"], registry=r
        )
        self.batch_readings = Histogram(
            "pantau_ingest_batch_readings", "Readings per committed batch", buckets=BATCH_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.commit_seconds = Histogram(
            "pantau_ingest_commit_seconds", "Time to write and commit a batch",
            buckets=COMMIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.unacked = Gauge(
            "pantau_ingest_unacked_messages",
            "Messages received and not yet acknowledged (bounded by the receive maximum)",
            registry=r,
        )
        self.db_retries = Counter(
            "pantau_ingest_db_retries", "Batch writes retried after a transient error", registry=r
        )

    def record_flush(
        self,
        messages: int,
        readings: int,
        inserted: int,
        rejects: Mapping[str, int],
        commit_s: float,
    ) -> None:
        self.messages.inc(messages)
        self.readings.inc(readings)
        self.inserted.inc(inserted)
        for reason, count in rejects.items():
            self.rejects.labels(reason=reason).inc(count)
        self.batch_readings.observe(readings)
        self.commit_seconds.observe(commit_s)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve /metrics on ``host:port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
        logger.info("metrics on http://%s:%d/metrics", host, port)
