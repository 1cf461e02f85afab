"""Today's collection route for a DLH truck: a simple heuristic, not an optimal tour.

The truck leaves the depot, empties every bin on today's list once and ends at the disposal
site (TPA). That is an open path with both ends fixed. :func:`plan_route` builds it in two
steps:

1. Nearest neighbour: from the depot, always drive to the closest bin not yet visited (ties:
   the lowest stop index). The destination is ignored here; 2-opt repairs the end.
2. 2-opt: reversing a segment of the stop sequence replaces two legs by two others; do it
   whenever that shortens the whole path, including the fixed first leg from the depot and
   the fixed last leg to the end. For each segment start ``i`` all segment ends ``j`` are
   evaluated at once with NumPy and the best one is applied if it saves more than
   ``TWO_OPT_REL_TOL`` of the current length. Passes over all ``i`` repeat until a pass
   changes nothing, at most ``max_passes`` times, so the loop always terminates.

What this is not:

- Not optimal. The result is a 2-opt local optimum: no single segment reversal shortens it.
  On small instances that is typically within a few percent of the optimum, with no
  guarantee: on random 7-stop instances around Jepara the mean excess was about 1 % and the
  worst about 28 % (figures in tests/processing/test_route.py). If the pass cap is hit, the path
  is valid and no longer than nearest neighbour, but may not be a local optimum (not seen in
  practice for a few hundred bins).
- Not road distance. Distances are great-circle (haversine) distances on a sphere of radius
  ``EARTH_RADIUS_M``: roads, one-way streets, bridges, truck capacity, time windows and
  traffic are not modelled. Straight lines underestimate the drive, more so across the
  Jepara coastline and rivers; the order is a suggestion for the crew.

Complexity for ``n`` stops: the distance matrix is O(n^2) time and memory ((n + 2)^2 float64,
~0.7 MB at n = 300); nearest neighbour is O(n^2); each 2-opt pass is O(n^2) arithmetic in
``n`` vectorized steps, and the number of passes is small in practice (3 to 6 for 300
random bins; capped). Meant for n up to a few hundred bins.

Coordinates are WGS 84 degrees (latitude, longitude), distances are metres. Deterministic:
the same input gives the same route.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.arrays import F64Array, I64Array

# Mean Earth radius (IUGG R1), metres. The sphere is off by up to ~0.5 % against the WGS 84
# ellipsoid, far less than the road-versus-straight-line error this module already accepts.
EARTH_RADIUS_M = 6_371_008.8

# A 2-opt move must save more than this fraction of the current length: below that, float
# rounding could make a "saving" that is not real and the search could cycle.
TWO_OPT_REL_TOL = 1e-9
MAX_2OPT_PASSES = 100


def haversine_m(lat1: F64Array, lon1: F64Array, lat2: F64Array, lon2: F64Array) -> F64Array:
    """Great-circle distance (m) between points given in degrees, broadcasting.

    Haversine formula on a sphere of radius :data:`EARTH_RADIUS_M`. Accurate to float
    rounding for the distances of a route; only nearly antipodal points (~20,000 km apart)
    lose precision, to about 0.1 m. NaN in, NaN out.
    """
    phi1 = np.radians(lat1)
    phi2 = np.radians(lat2)
    dphi = phi2 - phi1
    dlam = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2.0) ** 2
    # Rounding can push a just above 1 for antipodal points; asin would then give NaN.
    dist: F64Array = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return dist


def distance_matrix_m(lat: F64Array, lon: F64Array) -> F64Array:
    """Pairwise great-circle distances (m): ``d[i, j]`` between points ``i`` and ``j``.

    ``lat`` and ``lon`` are 1-D, aligned, in degrees; the result is ``(n, n)``, exactly
    symmetric, with a zero diagonal (and zeros between duplicate points).
    """
    d = haversine_m(lat[:, np.newaxis], lon[:, np.newaxis], lat[np.newaxis, :], lon[np.newaxis, :])
    # Mirror the upper triangle: the 2-opt length change assumes d[i, j] == d[j, i] exactly,
    # which haversine gives only up to rounding of the swapped subtraction.
    upper = np.triu(d, 1)
    sym: F64Array = upper + upper.T
    return sym


@dataclass(frozen=True, eq=False)
class Route:
    """A planned open path depot -> stops -> end.

    ``order``: stop indices (into the input arrays) in visiting order, a permutation of
    ``0..n-1``. ``leg_m``: the ``n + 1`` leg lengths (m), depot -> first stop, ..., last
    stop -> end (one leg depot -> end when there are no stops). ``total_m``: the sum of
    ``leg_m``. ``nn_total_m``: the length (m) of the nearest-neighbour path before 2-opt,
    so ``total_m <= nn_total_m``.
    """

    order: I64Array
    leg_m: F64Array
    total_m: float
    nn_total_m: float


def _path_legs(dist: F64Array, path: I64Array) -> F64Array:
    """Leg lengths (m) along a path of node indices."""
    legs: F64Array = dist[path[:-1], path[1:]]
    return legs


def _nearest_neighbour(dist: F64Array) -> I64Array:
    """Node path 0 (depot), stops 1..n by nearest neighbour, n + 1 (end)."""
    n_nodes = dist.shape[0]
    path = np.empty(n_nodes, dtype=np.int64)
    path[0], path[-1] = 0, n_nodes - 1
    unvisited = np.ones(n_nodes, dtype=np.bool_)
    unvisited[[0, -1]] = False
    current = 0
    for k in range(1, n_nodes - 1):
        # argmin returns the first minimum: on ties, the lowest node, i.e. the lowest stop.
        current = int(np.argmin(np.where(unvisited, dist[current], np.inf)))
        path[k] = current
        unvisited[current] = False
    return path


def _two_opt(dist: F64Array, path: I64Array, max_passes: int) -> I64Array:
    """Improve a node path in place by segment reversals of its inner nodes; return it.

    Reversing ``path[i..j]`` (``1 <= i < j <= n``) swaps legs ``(i-1, i)`` and ``(j, j+1)``
    for ``(i-1, j)`` and ``(i, j+1)``; the legs inside the segment keep their lengths because
    the matrix is symmetric. Position 0 and ``n + 1`` (depot and end) never move.
    """
    n = path.shape[0] - 2
    total = float(_path_legs(dist, path).sum())
    for _ in range(max_passes):
        improved = False
        for i in range(1, n):
            a, b = path[i - 1], path[i]
            c, d = path[i + 1 : n + 1], path[i + 2 : n + 2]  # segment end j = i+1..n, and j+1
            change = dist[a, c] + dist[b, d] - dist[a, b] - dist[c, d]
            k = int(np.argmin(change))  # the best j; ties: the shortest segment
            if change[k] < -TWO_OPT_REL_TOL * total:
                j = i + 1 + k
                path[i : j + 1] = path[i : j + 1][::-1].copy()
                # Recomputed rather than accumulated, so the threshold never drifts.
                total = float(_path_legs(dist, path).sum())
                improved = True
        if not improved:
            break
    return path


def plan_route(
    depot: tuple[float, float],
    stops_lat: F64Array,
    stops_lon: F64Array,
    end: tuple[float, float],
    *,
    max_passes: int = MAX_2OPT_PASSES,
) -> Route:
    """Plan an open path from ``depot`` through every stop once to ``end``.

    ``depot`` and ``end`` are ``(lat, lon)`` in degrees (they may be the same place);
    ``stops_lat`` and ``stops_lon`` are 1-D and aligned, in degrees; duplicate points are
    allowed. Nearest neighbour, then 2-opt with at most ``max_passes`` passes (0: the
    nearest-neighbour path); see the module docstring for the heuristic and its limits.

    Raises ValueError when the stop arrays are not 1-D of equal length, when a coordinate is
    not finite, or for a negative ``max_passes``.
    """
    if stops_lat.ndim != 1 or stops_lat.shape != stops_lon.shape:
        raise ValueError(
            f"stops_lat and stops_lon must be 1-D of equal length, got shapes "
            f"{stops_lat.shape} and {stops_lon.shape}"
        )
    if max_passes < 0:
        raise ValueError(f"max_passes must not be negative, got {max_passes}")
    lat = np.concatenate(([depot[0]], stops_lat, [end[0]])).astype(np.float64)
    lon = np.concatenate(([depot[1]], stops_lon, [end[1]])).astype(np.float64)
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise ValueError("coordinates of the depot, the stops and the end must be finite")

    dist = distance_matrix_m(lat, lon)
    path = _nearest_neighbour(dist)
    nn_total = float(_path_legs(dist, path).sum())
    path = _two_opt(dist, path, max_passes)
    legs = _path_legs(dist, path)
    return Route(
        order=path[1:-1] - 1,  # node k is stop k - 1
        leg_m=legs,
        total_m=float(legs.sum()),
        nn_total_m=nn_total,
    )
