"""Validation of decoded readings against the metrics catalog and the registry, vectorized.

Input is a columnar batch (aligned arrays, one element per reading); output is one reason code
per reading, ``OK`` (0) for a valid one. Checks run in a fixed order and the first failing check
names the reason, so every reading has exactly one code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.arrays import F64Array, I16Array, I64Array, U8Array
from processing.reasons import Reason


@dataclass(frozen=True)
class Catalog:
    """The metrics catalog as lookup arrays indexed by metric id, and kind membership.

    ``allowed[kind_idx, metric_id]`` says whether sensors of kind ``kind_idx`` report metric
    ``metric_id``. Ids index the arrays directly (they are small integers).
    """

    min_value: F64Array
    max_value: F64Array
    allowed: np.ndarray[tuple[int, int], np.dtype[np.bool_]]


def validate(
    catalog: Catalog,
    kind_idx: U8Array,
    metric_id: I16Array,
    ts_ms: I64Array,
    value: F64Array,
    installed_ms: I64Array,
    now_ms: int,
    future_tolerance_ms: int,
) -> U8Array:
    """One :class:`Reason` code per reading (``0`` = valid).

    ``kind_idx`` and ``installed_ms`` are per reading (the sensor's kind and installation time);
    ``metric_id`` < 0 marks a metric name the catalog does not know.
    """
    n = value.shape[0]
    reason = np.zeros(n, dtype=np.uint8)
    n_metrics = catalog.min_value.shape[0]
    known = (metric_id >= 0) & (metric_id < n_metrics)
    safe_metric = np.where(known, metric_id, 0).astype(np.intp)
    known &= catalog.allowed[kind_idx.astype(np.intp), safe_metric]
    finite = np.isfinite(value)
    with np.errstate(invalid="ignore"):
        in_range = (value >= catalog.min_value[safe_metric]) & (
            value <= catalog.max_value[safe_metric]
        )
    checks = (
        (~known, Reason.UNKNOWN_METRIC),
        (~finite, Reason.NON_FINITE),
        (~in_range, Reason.OUT_OF_RANGE),
        (ts_ms > now_ms + future_tolerance_ms, Reason.TS_IN_FUTURE),
        (ts_ms < installed_ms, Reason.TS_BEFORE_INSTALL),
    )
    # Apply in reverse so that the first failing check in the list wins.
    for failed, code in reversed(checks):
        reason[failed] = code
    return reason
