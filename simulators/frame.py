"""One window of simulated traffic for one group of sensors: reports, faults, messages.

:func:`assemble` is the heart of the simulator. For the messages *published* in the window
(t0, t1] (simulated Unix seconds) it generates the reports they carry, applies the planned
faults, groups reports into messages (one per report, or one per sensor and gateway batch
window), and records in a :class:`LabelBook` what each fault changed. Everything is a pure
function of the fleet, the seed and the window, so any cut of a run into windows gives the
same messages: a message is produced by the one window its publish time falls in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from processing.arrays import F64Array, I64Array
from simulators.faults import CODE, Plan
from simulators.labels import LabelBook
from simulators.metrics import FAULT_KINDS, MetricSpec

DATA, OFFLINE, ONLINE = 0, 1, 2  # message kinds
_GARBAGE, _DUPLICATE, _OUT_OF_ORDER = CODE["garbage"], CODE["duplicate"], CODE["out_of_order"]


class Model(Protocol):
    @property
    def metrics(self) -> tuple[str, ...]: ...
    def values(self, idx: I64Array, t_s: I64Array) -> F64Array: ...


@dataclass
class Group:
    """The sensors of one kind: ids, schedule, model and metric specs."""

    kind: str
    ids: list[str]
    offset: int  # simulator index of the group's first sensor (groups are numbered in turn)
    fleet_idx: I64Array  # index of each sensor in the fleet file's order
    interval_s: I64Array
    phase_s: I64Array  # sensor i reports at t with (t - phase_s[i]) % interval_s[i] == 0
    model: Model
    specs: tuple[MetricSpec, ...]

    def due(
        self, t0_s: I64Array | int, t1_s: I64Array | int, sel: I64Array | None = None
    ) -> tuple[I64Array, I64Array]:
        """Every report slot in (t0, t1]: sensor indices and slot times (Unix s), aligned, by
        sensor then time. With ``sel``, only those sensors, each with its own bounds."""
        which = np.arange(self.interval_s.shape[0], dtype=np.int64) if sel is None else sel
        interval, phase = self.interval_s[which], self.phase_s[which]
        first = (t0_s - phase) // interval + 1
        last = (t1_s - phase) // interval
        counts = np.maximum(last - first + 1, 0)
        idx = np.repeat(which, counts)
        nth = np.arange(idx.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
        slot = np.repeat(first, counts) + nth
        return idx, slot * self.interval_s[idx] + self.phase_s[idx]


@dataclass
class GroupFrame:
    """Messages of one group in a window (rows unordered) and the reports they carry, stored
    by message (reports of row k are ``first[k] : first[k] + count[k]``, by time)."""

    group: Group
    publish_ms: I64Array
    sensor: I64Array  # index within the group
    first: I64Array
    count: I64Array
    status: I64Array  # DATA, OFFLINE or ONLINE
    garbage: I64Array  # variant, or -1
    copy: I64Array  # 1 for the second copy of a duplicated message
    stamp_ms: I64Array  # per report: the time it carries
    values: F64Array  # per report, one column per metric


def assemble(
    group: Group,
    plan: Plan,
    t0_s: int,
    t1_s: int,
    *,
    batch_s: int,
    book: LabelBook,
    run_start_ms: int,
) -> GroupFrame:
    """The messages of ``group`` published in (t0_s, t1_s]; faults from ``plan``."""
    t0_ms, t1_ms = t0_s * 1000, t1_s * 1000
    b = batch_s
    local = _local_rows(group, plan)
    idx, slot, primary = _reports(group, plan, local, t0_s, t1_s, b)
    m = len(group.specs)
    values = group.model.values(idx, slot) if idx.size else np.zeros((0, m))
    stamp_ms = slot * 1000
    row = plan.find(idx + group.offset, slot)
    hit = row >= 0
    kind = np.where(hit, plan.kind[np.maximum(row, 0)], -1)
    keep = kind != CODE["offline"]
    _apply_metric_faults(group, plan, idx, slot, values, row, kind, primary, book)
    skew = kind == CODE["clock_skew"]
    stamp_ms = np.where(skew, stamp_ms - plan.iparam[np.maximum(row, 0)], stamp_ms)
    for code in (CODE["offline"], CODE["clock_skew"]):
        sel_rows = primary & (kind == code)
        _record(book, group, plan, row[sel_rows], stamp_ms[sel_rows])

    idx, slot, stamp_ms, values, row, kind = (
        x[keep] for x in (idx, slot, stamp_ms, values, row, kind)
    )
    # Reports into messages: by sensor, then batch window (or slot), then time.
    window = (slot - 1) // b if b else slot
    order = np.lexsort((slot, window, idx))
    idx, slot, stamp_ms, values, row, kind, window = (
        x[order] for x in (idx, slot, stamp_ms, values, row, kind, window)
    )
    new = np.r_[True, (idx[1:] != idx[:-1]) | (window[1:] != window[:-1])] if idx.size else idx > 0
    first = np.flatnonzero(new)
    count = np.diff(np.r_[first, idx.shape[0]])
    publish_ms = ((window[first] + 1) * b if b else slot[first]) * 1000
    is_message_fault = (kind == _GARBAGE) | (kind == _DUPLICATE) | (kind == _OUT_OF_ORDER)
    msg_fault = np.where(is_message_fault, row, -1)
    mrow = np.maximum.reduceat(msg_fault, first) if first.size else first
    mkind = np.where(mrow >= 0, plan.kind[np.maximum(mrow, 0)], -1)
    mparam = plan.iparam[np.maximum(mrow, 0)]
    publish_ms = publish_ms + np.where(mkind == CODE["out_of_order"], mparam, 0)
    garbage = np.where(mkind == CODE["garbage"], mparam, -1)
    dup = np.flatnonzero(mkind == CODE["duplicate"])
    sensor = idx[first]
    n_msg = first.shape[0]

    # The duplicate copies, and the retained status messages of offline faults with a will.
    will = local[(plan.kind[local] == CODE["offline"]) & (plan.iparam[local] == 1)]
    will_sensor = plan.sensor[will] - group.offset
    gone_ms = plan.start_s[will] * 1000
    back_ms = (plan.end_s[will] + group.interval_s[will_sensor]) * 1000
    z_dup, z_will = np.zeros(dup.size, dtype=np.int64), np.zeros(will.size, dtype=np.int64)
    frame = GroupFrame(
        group=group,
        publish_ms=np.concatenate([publish_ms, publish_ms[dup] + mparam[dup], gone_ms, back_ms]),
        sensor=np.concatenate([sensor, sensor[dup], will_sensor, will_sensor]),
        first=np.concatenate([first, first[dup], z_will, z_will]),
        count=np.concatenate([count, count[dup], z_will, z_will]),
        status=np.concatenate(
            [np.zeros(n_msg + dup.size, dtype=np.int64), z_will + OFFLINE, z_will + ONLINE]
        ),
        garbage=np.concatenate([garbage, garbage[dup], z_will - 1, z_will - 1]),
        copy=np.concatenate([np.zeros(n_msg, dtype=np.int64), z_dup + 1, z_will, z_will]),
        stamp_ms=stamp_ms,
        values=values,
    )
    frame_rows = np.concatenate([mrow, mrow[dup], z_will - 1, z_will - 1])
    frame_kind = np.concatenate([mkind, mkind[dup], z_will - 1, z_will - 1])
    inside = (frame.publish_ms > t0_ms) & (frame.publish_ms <= t1_ms)
    frame = _select(frame, np.flatnonzero(inside))
    frame_rows, frame_kind = frame_rows[inside], frame_kind[inside]

    _record_messages(book, plan, frame, frame_rows, frame_kind, run_start_ms)
    return frame


def _reports(
    group: Group, plan: Plan, local: I64Array, t0_s: int, t1_s: int, b: int
) -> tuple[I64Array, I64Array, np.ndarray[tuple[int], np.dtype[np.bool_]]]:
    """Sensor indices and slots of the reports of messages published in (t0_s, t1_s], and
    whether each is in the window's own span (``primary``) rather than in a message that an
    out-of-order or duplicate fault publishes late."""
    t0_ms, t1_ms = t0_s * 1000, t1_s * 1000
    a_s, b_s = (t0_s // b * b, t1_s // b * b) if b else (t0_s, t1_s)
    idx, slot = group.due(a_s, b_s)
    primary = np.ones(idx.shape[0], dtype=bool)
    late_kind = plan.kind[local]
    cand = local[(late_kind == _DUPLICATE) | (late_kind == _OUT_OF_ORDER)]
    base_ms = (_batch_end(plan.start_s[cand], b) if b else plan.start_s[cand]) * 1000
    when_ms = base_ms + plan.iparam[cand]
    late = cand[(base_ms <= t0_ms) & (when_ms > t0_ms) & (when_ms <= t1_ms)]
    if late.size:
        sel = plan.sensor[late] - group.offset
        if b:
            e_idx, e_slot = group.due(plan.lo_s[late] - 1, plan.hi_s[late], sel)
        else:
            e_idx, e_slot = sel, plan.start_s[late]
        idx, slot = np.concatenate([idx, e_idx]), np.concatenate([slot, e_slot])
        primary = np.concatenate([primary, np.zeros(e_idx.shape[0], dtype=bool)])
    return idx, slot, primary


def _record_messages(
    book: LabelBook,
    plan: Plan,
    frame: GroupFrame,
    frame_rows: I64Array,
    frame_kind: I64Array,
    run_start_ms: int,
) -> None:
    """What the message faults changed, recorded when the faulty message goes out (a
    duplicate only when its original went out in this run too)."""
    original_ms = frame.publish_ms - np.where(
        frame.copy == 1, plan.iparam[np.maximum(frame_rows, 0)], 0
    )
    shown = (
        (frame_kind == CODE["garbage"])
        | (frame_kind == CODE["out_of_order"])
        | ((frame_kind == CODE["duplicate"]) & (frame.copy == 1) & (original_ms > run_start_ms))
    )
    for k in np.flatnonzero(shown).tolist():
        lo, n = int(frame.first[k]), int(frame.count[k])
        span = frame.stamp_ms[lo : lo + n]
        fid_rows = np.full(2, frame_rows[k], dtype=np.int64)
        _record(
            book, frame.group, plan, fid_rows, np.array([span.min(), span.max()], dtype=np.int64)
        )


def _batch_end(slot_s: I64Array, batch_s: int) -> I64Array:
    end: I64Array = ((slot_s - 1) // batch_s + 1) * batch_s
    return end


def _local_rows(group: Group, plan: Plan) -> I64Array:
    """Rows of ``plan`` whose sensor is in ``group``."""
    end = group.offset + len(group.ids)
    rows: I64Array = np.flatnonzero((plan.sensor >= group.offset) & (plan.sensor < end))
    return rows


def _apply_metric_faults(
    group: Group,
    plan: Plan,
    idx: I64Array,
    slot: I64Array,
    values: F64Array,
    row: I64Array,
    kind: I64Array,
    primary: np.ndarray[tuple[int], np.dtype[np.bool_]],
    book: LabelBook,
) -> None:
    """Stuck, spike and drift, in place on ``values``; changed readings go to ``book``."""
    metric_hit = np.flatnonzero(
        (kind == CODE["stuck"]) | (kind == CODE["spike"]) | (kind == CODE["drift"])
    )
    if metric_hit.size == 0:
        return
    r = row[metric_hit]
    col = plan.metric[r]
    specs = group.specs
    lo = np.array([s.lo for s in specs])[col]
    hi = np.array([s.hi for s in specs])[col]
    decimals = np.array([s.decimals for s in specs])[col]
    clean = values[metric_hit, col]
    new = clean.copy()
    k = kind[metric_hit]
    spike = k == CODE["spike"]
    size = np.array([s.spike for s in specs])[col]
    pivot = np.array([s.spike_pivot for s in specs])[col]
    new = np.where(spike, clean + np.where(clean >= pivot, -size, size), new)
    drift = k == CODE["drift"]
    interval = group.interval_s[idx[metric_hit]]
    nth = (slot[metric_hit] - plan.start_s[r]) // interval + 1
    total = (plan.end_s[r] - plan.start_s[r]) // interval + 1
    new = np.where(drift, clean + plan.fparam[r] * nth / total, new)
    stuck = np.flatnonzero(k == CODE["stuck"])
    if stuck.size:
        before = plan.start_s[r[stuck]] - interval[stuck]
        prev = group.model.values(idx[metric_hit[stuck]], before)
        new[stuck] = prev[np.arange(stuck.size), col[stuck]]
    new = np.clip(new, lo, hi)
    new = np.round(new * 10.0**decimals) / 10.0**decimals
    values[metric_hit, col] = new
    changed = (new != clean) & primary[metric_hit]
    _record(book, group, plan, r[changed], slot[metric_hit][changed] * 1000)


def _record(book: LabelBook, group: Group, plan: Plan, rows: I64Array, ts_ms: I64Array) -> None:
    if rows.size == 0:
        return
    fid = plan.fid[rows]
    distinct = np.unique(fid)
    first_row = np.array([rows[fid == f][0] for f in distinct.tolist()], dtype=np.int64)
    what = [
        (
            group.ids[int(plan.sensor[x]) - group.offset],
            group.specs[int(plan.metric[x])].name if plan.metric[x] >= 0 else "",
            FAULT_KINDS[int(plan.kind[x])],
        )
        for x in first_row.tolist()
    ]
    book.add(fid, ts_ms, what)


def _select(frame: GroupFrame, rows: I64Array) -> GroupFrame:
    return GroupFrame(
        group=frame.group,
        publish_ms=frame.publish_ms[rows],
        sensor=frame.sensor[rows],
        first=frame.first[rows],
        count=frame.count[rows],
        status=frame.status[rows],
        garbage=frame.garbage[rows],
        copy=frame.copy[rows],
        stamp_ms=frame.stamp_ms,
        values=frame.values,
    )
