"""Every long-running command's stop is bounded: a process still running PANTAU_STOP_GRACE_S
after SIGTERM has every thread's stack in its log and exits 1, so a hang is seen and diagnosed.

The hangs here are real ones: a program whose thread never finishes, and `pantau ingest` and
`pantau api` whose database stops answering in the middle of a write or a query (their
PostgreSQL backends are sent SIGSTOP, and SIGCONT afterwards).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cli.commands.service import KILL_MARGIN_S
from ingest.supervisor import supervisor_grace_s
from ops.stack.local import StackState
from ops.stack.processes import free_port
from pantau.registry.fleet import load_fleet
from pantau.registry.load import load_into
from tests.fixtures.broker import Publisher
from tests.fixtures.commands import pantau_env
from tests.fixtures.polling import wait_for
from tests.fixtures.stack import count_readings

GRACE_S = 2.0
SLACK_S = 2.0  # start-up of the interpreter, the dump, scheduling

# A long-running command in miniature: stop_on_signals, then a stop that waits for a thread.
PROGRAM = textwrap.dedent(
    """
    import logging, sys, threading
    from cli.commands.service import stop_on_signals

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    stop = stop_on_signals()

    def flush_forever() -> None:
        stop.wait()
        if sys.argv[1] == "hang":
            threading.Event().wait()  # a flush that never returns

    flusher = threading.Thread(target=flush_forever, name="flusher")
    flusher.start()
    print("ready", flush=True)
    stop.wait()
    flusher.join()
    """
)


@contextlib.contextmanager
def running(
    args: list[str], env: dict[str, str], log: Path, *, ready_line: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """``args`` running with stderr to ``log``; killed at the end if it still runs."""
    with log.open("w") as stderr:
        process = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE if ready_line else subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        if ready_line:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def program(mode: str, log: Path) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    env = pantau_env(PANTAU_STOP_GRACE_S=str(GRACE_S))
    return running([sys.executable, "-c", PROGRAM, mode], env, log, ready_line=True)


def stop_and_time(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> float:
    """Send ``sig`` and wait for the exit; the seconds it took."""
    started = time.monotonic()
    process.send_signal(sig)
    process.wait(timeout=60)
    return time.monotonic() - started


def test_a_stop_that_hangs_dumps_every_stack_and_exits_1(tmp_path: Path) -> None:
    log = tmp_path / "stderr"
    with program("hang", log) as process:
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(GRACE_S / 2)
        process.send_signal(signal.SIGTERM)  # a second signal does not extend the bound
        process.wait(timeout=60)
        elapsed = time.monotonic() - started
    text = log.read_text()
    assert process.returncode == 1, text
    assert GRACE_S <= elapsed < GRACE_S + SLACK_S
    assert "received SIGTERM: stopping; still running in 2 s" in text
    assert "Timeout (0:00:02)!" in text
    assert text.count("Thread 0x") == 2  # the main thread and the flusher
    assert "in flush_forever" in text


def test_a_stop_in_time_exits_0_with_no_dump(tmp_path: Path) -> None:
    log = tmp_path / "stderr"
    with program("stop", log) as process:
        elapsed = stop_and_time(process, signal.SIGINT)
    time.sleep(GRACE_S)  # the bound would have fired by now
    text = log.read_text()
    assert process.returncode == 0, text
    assert elapsed < GRACE_S
    assert "received SIGINT: stopping" in text
    assert "Timeout" not in text


def test_an_invalid_grace_period_is_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "ingest"],
        env=pantau_env(
            PANTAU_STOP_GRACE_S="soon",
            PANTAU_DATABASE_URL="postgresql://pantau@127.0.0.1:1/nowhere",
            PANTAU_MQTT_URL="mqtt://127.0.0.1:1",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "setting PANTAU_STOP_GRACE_S" in result.stderr
    assert "Traceback" not in result.stderr


# --- the commands, with a database that stops answering ------------------------------------------


def backends(db_url: str, application_name: str) -> list[int]:
    """The pids of the PostgreSQL backends of ``db_url``'s database opened as
    ``application_name`` (a LIKE pattern)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE %s",
            (application_name,),
        ).fetchall()
    return [int(row[0]) for row in rows]


@contextlib.contextmanager
def not_answering(pids: list[int]) -> Iterator[None]:
    """The backends ``pids`` stopped (SIGSTOP): their clients wait on them forever."""
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.mark.integration
@pytest.mark.parametrize("processes", [1, 2])
def test_ingest_whose_database_stops_answering_dumps_its_stacks_in_time(
    stack: StackState, db_url: str, topic_root: str, tmp_path: Path, processes: int
) -> None:
    with psycopg.connect(db_url) as conn:
        load_into(conn, load_fleet())
    client_id = f"bound-{uuid.uuid4().hex[:8]}"
    env = pantau_env(
        PANTAU_DATABASE_URL=db_url,
        PANTAU_MQTT_URL=stack.mqtt_url,
        PANTAU_TOPIC_ROOT=topic_root,
        PANTAU_INGEST_BATCH_MAX_AGE_MS="50",
        PANTAU_STOP_GRACE_S=str(GRACE_S),
    )
    log = tmp_path / "stderr"
    command = [sys.executable, "-m", "cli.main", "ingest", "--client-id", client_id]
    publisher = Publisher(stack.mqtt_url)
    bins = [s.id for s in load_fleet().sensors if s.kind == "waste_bin"][:20]
    sent = [0]

    def publish(n: int) -> None:
        for _ in range(n):
            sent[0] += 1
            payload = f'{{"ts": {1_767_225_600 + sent[0]}, "fill_pct": 40}}'.encode()
            publisher.publish(f"{topic_root}/waste_bin/{bins[sent[0] % len(bins)]}", payload)

    def subscribed() -> bool:
        publish(1)
        return count_readings(db_url) > 0

    try:
        with running([*command, "--processes", str(processes)], env, log) as worker:
            # Until a worker has subscribed the broker drops what it gets: probe until one lands.
            wait_for(subscribed, what="a subscription")
            pids = wait_for(
                lambda: (found := backends(db_url, f"{client_id}%")) and len(found) >= processes
                and found,
                what="every worker's database connection",
            )  # fmt: skip
            with not_answering(pids):
                publish(20)  # the shared subscription hands some to every worker
                publisher.wait_all()
                time.sleep(0.5)  # received: a write of them waits on the database
                elapsed = stop_and_time(worker)
    finally:
        publisher.close()
    text = log.read_text()
    assert worker.returncode == 1, text
    bound = GRACE_S if processes == 1 else supervisor_grace_s(GRACE_S)
    assert elapsed < bound + SLACK_S
    assert "received SIGTERM: stopping" in text
    assert "Timeout (0:00:02)!" in text
    assert "in _write_loop" in text  # the writer thread, waiting on the database
    if processes > 1:
        assert "while stopping" in text  # the supervisor says which worker failed to stop


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_the_api_with_a_request_stuck_on_the_database_dumps_its_stacks_in_time(
    db_url: str, tmp_path: Path, workers: int
) -> None:
    port = free_port()
    env = pantau_env(
        PANTAU_DATABASE_URL=db_url,
        PANTAU_API_PORT=str(port),
        PANTAU_API_WORKERS=str(workers),
        PANTAU_STOP_GRACE_S=str(GRACE_S),
    )
    log = tmp_path / "stderr"
    ready = f"http://127.0.0.1:{port}/v1/ready"
    with running([sys.executable, "-m", "cli.main", "api"], env, log) as server:
        wait_for(lambda: answers(ready), what="the API to be ready")
        pids = wait_for(
            lambda: (found := backends(db_url, "pantau-api")) and len(found) >= 2 * workers
            and found,
            what="every API worker's pool",
        )  # fmt: skip
        with not_answering(pids):
            stuck = threading.Thread(target=answers, args=(ready,), daemon=True)
            stuck.start()  # its query never gets an answer
            time.sleep(0.5)
            elapsed = stop_and_time(server)
    text = log.read_text()
    assert server.returncode == 1, text
    if workers == 1:
        assert elapsed < GRACE_S + SLACK_S
        assert "received SIGTERM: stopping" in text
        assert "Timeout (0:00:02)!" in text
    else:  # the supervising process has the stuck worker dump its stacks and kills it
        assert elapsed < GRACE_S + KILL_MARGIN_S + SLACK_S
        assert "did not stop within 2 s; its stacks follow" in text
        assert "Fatal Python error: Aborted" in text
    assert "Thread 0x" in text
