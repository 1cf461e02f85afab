"""The operations drills in short, on a private stack: the same code as `make bench-soak` and
`make bench-chaos` (bench/soak.py, bench/chaos.py), with small sizes.

- soak: a scaled Jepara fleet through a real `pantau ingest` subprocess at half the capacity
  measured first; samples of the worker's memory and lag; every reading stored once.
- chaos: gateway messages while the worker is SIGKILLed every 3 s, the broker restarted once
  and the database once; every reading in raw once, counted once in every rollup width, and the
  anomalies those of the detectors run once over the stored readings.
"""

from __future__ import annotations

import pytest

from bench.chaos import WIDTHS, ChaosConfig, run_chaos
from bench.soak import SoakConfig, run_soak

pytestmark = pytest.mark.integration


def test_short_soak_stores_every_reading_and_samples_the_worker(private_state, tmp_path):
    config = SoakConfig(minutes=0.5, sensors=1_000, capacity_s=5, sample_s=3)
    result = run_soak(private_state, config, tmp_path)

    assert result.rate_source == "measured"
    assert result.capacity is not None
    assert result.capacity["readings_per_s"] > 0
    assert result.rate_messages_per_s == pytest.approx(result.capacity["messages_per_s"] / 2)
    # One sample per period of the run, each with the worker alive and a plausible size.
    assert len(result.samples) == 10
    rss = [s.rss_mib for s in result.samples]
    assert all(r is not None and 20 < r < 2_048 for r in rss), rss
    assert result.baseline_rss_mib is not None
    assert [s.published for s in result.samples] == sorted(s.published for s in result.samples)
    assert result.samples[-1].stored > result.samples[0].stored
    # Nothing lost: every reading the broker acknowledged is stored, nothing rejected.
    assert result.published > 0
    assert result.stored == result.published
    assert result.lost == 0
    assert result.rejects == 0
    assert result.worker is not None
    assert result.worker.exit_code == 0


def test_short_chaos_loses_and_doubles_nothing(private_stack, private_state, tmp_path):
    config = ChaosConfig(readings=30_000, per_message=100, sensors=50, rate=1_500, kill_every_s=3)
    result = run_chaos(private_stack, config, tmp_path)

    assert result.kills >= 3
    assert result.broker_restarts == 1
    assert result.db_restarts == 1
    assert result.publisher_disconnects >= 1  # the broker restart reached the publisher
    assert result.expected == 30_000
    assert result.published == 30_000
    # Raw: every reading once, per bin the right count, first and last time and sum.
    assert result.stored == 30_000
    assert (result.lost, result.doubled, result.sensors_wrong) == (0, 0, 0)
    # Every rollup width counts every raw reading exactly once, bucket by bucket.
    assert [w.table for w in result.rollups] == list(WIDTHS)
    for width in result.rollups:
        assert (width.table, width.stored, width.lost, width.doubled) == (width.table, 30_000, 0, 0)
        assert width.mismatched_buckets == 0, width
    # The anomalies are exactly those of the detectors run once over the stored readings.
    assert result.anomalies_expected > 0
    assert result.anomalies == result.anomalies_expected
    assert (result.anomalies_missing, result.anomalies_extra) == (0, 0)
    assert result.rejects == 0
    assert result.failures == []
