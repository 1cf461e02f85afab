"""An open-loop HTTP load generator for the API benchmark, and the figures it reports.

Request ``i`` is due at ``t0 + i / rate``; a dispatcher thread hands each request to a pool of
worker threads at its due time, whatever earlier requests are doing, and the request kinds
take turns (round-robin). Each worker keeps one keep-alive ``http.client`` connection. The
latency of a request is measured from its *due* time to the end of its response, so time spent
waiting for a free worker or for the server counts (no coordinated omission); the service time
is measured from the moment the request was actually sent. Responses are read in full.
"""

from __future__ import annotations

import http.client
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

MakePath = Callable[[np.random.Generator], str]
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Kind:
    name: str
    make_path: MakePath  # path and query of one request of this kind (may pick a sensor)


@dataclass(frozen=True)
class Sample:
    kind: int
    due: float  # perf_counter seconds
    sent: float
    done: float
    status: int  # 0: no response (connection error, timeout)
    size: int


@dataclass
class Figures:
    """Latency (from the due time) and service time (from the send), in ms."""

    kind: str
    count: int
    errors: int
    rate_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    service_p50_ms: float
    service_p99_ms: float
    service_max_ms: float
    send_lag_p99_ms: float  # due -> sent: waiting for a free worker (and the generator's delay)
    mean_bytes: int
    first_error: str = ""


class Client:
    """One keep-alive connection to the API, reconnecting after an error."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        try:
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_open_loop(
    port: int,
    headers: dict[str, str],
    kinds: Sequence[Kind],
    rate: float,
    seconds: float,
    workers: int,
    seed: int = 1,
) -> tuple[list[Sample], dict[int, str], float]:
    """Send ``rate * seconds`` requests at their due times; returns the samples, the first
    error of each kind, and the start time ``t0`` (perf_counter)."""
    total = round(rate * seconds)
    todo: queue.Queue[tuple[int, float, str] | None] = queue.Queue()
    samples: list[Sample] = []
    errors: dict[int, str] = {}
    lock = threading.Lock()

    def work() -> None:
        client = Client(port, headers)
        mine: list[Sample] = []
        while (item := todo.get()) is not None:
            kind, due, path = item
            sent = time.perf_counter()
            status, size = 0, 0
            try:
                status, body = client.get(path)
                size = len(body)
                if status != 200 and kind not in errors:
                    errors[kind] = f"HTTP {status}: {body[:200].decode(errors='replace')}"
            except (OSError, http.client.HTTPException) as exc:
                errors.setdefault(kind, f"{type(exc).__name__}: {exc}")
            mine.append(Sample(kind, due, sent, time.perf_counter(), status, size))
        client.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    rng = np.random.default_rng(seed)
    paths = [(i % len(kinds), kinds[i % len(kinds)].make_path(rng)) for i in range(total)]
    t0 = time.perf_counter() + 0.05
    for i, (kind, path) in enumerate(paths):
        due = t0 + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        todo.put((kind, due, path))
    for _ in threads:
        todo.put(None)
    for thread in threads:
        thread.join(TIMEOUT_S + 5)
    return samples, errors, t0


def run_sequential(
    port: int, headers: dict[str, str], kind: Kind, count: int, warmup: int = 3
) -> list[Sample]:
    """``count`` requests one after the other on one connection (after ``warmup`` unmeasured
    ones): the unloaded service time."""
    client = Client(port, headers)
    rng = np.random.default_rng(2)
    out = []
    for n in range(warmup + count):
        path = kind.make_path(rng)
        sent = time.perf_counter()
        try:
            status, body = client.get(path)
        except (OSError, http.client.HTTPException):
            status, body = 0, b""
        if n >= warmup:
            out.append(Sample(0, sent, sent, time.perf_counter(), status, len(body)))
    client.close()
    return out


def _ms(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2) if values.size else float("nan")


def figures(name: str, samples: Sequence[Sample], t0: float, first_error: str = "") -> Figures:
    """Count, errors, achieved rate and percentiles of ``samples``."""
    due = np.array([s.due for s in samples])
    sent = np.array([s.sent for s in samples])
    done = np.array([s.done for s in samples])
    latency, service, lag = done - due, done - sent, sent - due
    span = float(done.max() - t0) if samples else 0.0
    return Figures(
        kind=name,
        count=len(samples),
        errors=sum(1 for s in samples if s.status != 200),
        rate_per_s=round(len(samples) / span, 1) if span > 0 else 0.0,
        p50_ms=_ms(latency, 50),
        p90_ms=_ms(latency, 90),
        p99_ms=_ms(latency, 99),
        max_ms=_ms(latency, 100),
        service_p50_ms=_ms(service, 50),
        service_p99_ms=_ms(service, 99),
        service_max_ms=_ms(service, 100),
        send_lag_p99_ms=_ms(lag, 99),
        mean_bytes=round(sum(s.size for s in samples) / len(samples)) if samples else 0,
        first_error=first_error,
    )


def per_kind(
    kinds: Sequence[Kind], samples: Sequence[Sample], errors: dict[int, str], t0: float
) -> list[Figures]:
    """Figures of each kind, then of all requests together (``all``)."""
    out = [
        figures(k.name, [s for s in samples if s.kind == i], t0, errors.get(i, ""))
        for i, k in enumerate(kinds)
    ]
    return [*out, figures("all", samples, t0, next(iter(errors.values()), ""))]
