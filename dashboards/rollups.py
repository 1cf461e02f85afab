"""Picking the rollup table a chart reads by Grafana's ``$__interval``.

A week of one-minute rollups is millions of rows; a week of hourly ones is a few thousand per
series. A chart query is written once as a template and expanded to one ``UNION ALL`` branch
per rollup width, each guarded by a range of ``$__interval_ms``. After Grafana substitutes the
interval the guards are constants, so PostgreSQL plans every branch (a typo fails at once) but
runs only the one whose guard holds ("One-Time Filter: false" on the others).
"""

from __future__ import annotations

from processing.rollup import ROLLUPS

# (table, bucket width in seconds), finest first: the rollups up to hourly (charts step no
# coarser than that).
TIERS: tuple[tuple[str, int], ...] = tuple(
    (r.table, r.width_ms // 1000) for r in ROLLUPS if r.width_ms <= 3_600_000
)


def by_interval(template: str, *, finest_s: int = 60) -> str:
    """``template`` once per rollup width from ``finest_s`` up, joined by ``UNION ALL``.

    The template names ``{rollup}`` (the table), ``{guard}`` (a condition to AND into its
    WHERE), ``{step}`` (the chart's bucket: ``$__interval`` rounded up to whole rollup
    buckets, so each chart bucket holds the same number of them) and ``{step_s}`` (that
    bucket's length in seconds, for rates). A width is used from its own size up to the next
    one's; the finest also below, the coarsest also above.
    """
    tiers = [(table, width) for table, width in TIERS if width >= finest_s]
    branches = []
    for i, (table, width_s) in enumerate(tiers):
        bounds = []
        if i > 0:
            bounds.append(f"$__interval_ms >= {width_s * 1000}")
        if i + 1 < len(tiers):
            bounds.append(f"$__interval_ms < {tiers[i + 1][1] * 1000}")
        step_s = f"(ceil($__interval_ms / {width_s * 1000}.0) * {width_s})"
        branches.append(
            template.format(
                rollup=table,
                guard=" AND ".join(bounds) or "true",
                step=f"make_interval(secs => {step_s})",
                step_s=step_s,
            )
        )
    return "\nUNION ALL\n".join(branches) + "\nORDER BY 1"
