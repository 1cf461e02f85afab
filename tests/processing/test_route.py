"""processing.route against plain-Python references, brute force, and known answers."""

from __future__ import annotations

import dataclasses
import math
from itertools import pairwise, permutations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.route import (
    EARTH_RADIUS_M,
    Route,
    distance_matrix_m,
    haversine_m,
    plan_route,
)

JEPARA = (-6.5895, 110.6678)  # town centre (alun-alun)
TPA_BANDENGAN = (-6.565, 110.665)  # disposal site


def haversine_ref(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Textbook haversine with the math module, same radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2) - math.radians(lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))


# --- haversine_m, distance_matrix_m --------------------------------------------------------

world_lat = st.floats(-90, 90)
world_lon = st.floats(-180, 180)


@given(world_lat, world_lon, world_lat, world_lon)
def test_haversine_matches_reference(lat1, lon1, lat2, lon2):
    got = haversine_m(np.array([lat1]), np.array([lon1]), np.array([lat2]), np.array([lon2]))
    ref = haversine_ref(lat1, lon1, lat2, lon2)
    # NumPy's and libm's sin/cos may differ by an ulp; nearly antipodal points amplify that
    # (asin near 1) to ~0.1 m, hence the small absolute allowance on a 20,000 km distance.
    assert got.shape == (1,)
    assert got[0] == pytest.approx(ref, rel=1e-12, abs=1e-6 if ref < 1.9e7 else 0.5)
    assert 0.0 <= got[0] <= math.pi * EARTH_RADIUS_M + 1e-6


def test_haversine_known_distances():
    # Jepara town centre to TPA Bandengan by hand, flat-Earth (equirectangular) over 2.7 km:
    # dy = 0.0245 deg = 4.2761e-4 rad, dx = -0.0028 deg * cos(-6.577 deg) = -4.8549e-5 rad,
    # R * hypot = 2741.78 m; the flat approximation is good to ~1e-6 at this distance.
    lat1, lon1 = JEPARA
    lat2, lon2 = TPA_BANDENGAN
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    flat = EARTH_RADIUS_M * math.hypot(x, y)
    got = float(haversine_m(np.array(lat1), np.array(lon1), np.array(lat2), np.array(lon2)))
    assert got == pytest.approx(2741.78, abs=0.01)
    assert got == pytest.approx(flat, rel=1e-6)
    zeros = np.zeros(2)
    quarter = haversine_m(zeros, zeros, np.array([90.0, 0.0]), np.array([0.0, 90.0]))
    np.testing.assert_allclose(quarter, math.pi / 2 * EARTH_RADIUS_M, rtol=1e-14)
    antipode = haversine_m(np.array(0.0), np.array(0.0), np.array(0.0), np.array(180.0))
    assert float(antipode) == pytest.approx(math.pi * EARTH_RADIUS_M, rel=1e-14)
    assert float(haversine_m(*(np.array(v) for v in (*JEPARA, *JEPARA)))) == 0.0


def test_haversine_broadcasts():
    lat = np.array([-6.6, -6.5, -6.4])
    lon = np.array([110.6, 110.7])
    d = haversine_m(lat[:, None], np.array(110.65), np.array(-6.55), lon[None, :])
    assert d.shape == (3, 2)
    assert d[1, 0] == pytest.approx(haversine_ref(-6.5, 110.65, -6.55, 110.6), rel=1e-12)


jepara_lat = st.floats(-6.9, -5.8)
jepara_lon = st.floats(110.4, 111.0)


@given(st.lists(st.tuples(jepara_lat, jepara_lon), max_size=8))
def test_distance_matrix_matches_reference(points):
    lat = np.array([p[0] for p in points], dtype=np.float64)
    lon = np.array([p[1] for p in points], dtype=np.float64)
    d = distance_matrix_m(lat, lon)
    n = len(points)
    assert d.shape == (n, n)
    assert np.array_equal(d, d.T)  # exactly: 2-opt relies on it
    assert np.all(np.diag(d) == 0.0)
    for i, j in permutations(range(n), 2):
        ref = haversine_ref(*points[i], *points[j])
        assert d[i, j] == pytest.approx(ref, rel=1e-12, abs=1e-6)


# --- plan_route -------------------------------------------------------------------------------


@st.composite
def instances(draw, max_stops=12):
    """Depot, stops and end around Jepara; a small pool of points makes duplicates common."""
    point = st.tuples(jepara_lat, jepara_lon)
    pool = draw(st.lists(point, min_size=1, max_size=3))
    some_point = st.one_of(point, st.sampled_from(pool))
    stops = draw(st.lists(some_point, max_size=max_stops))
    return draw(some_point), stops, draw(some_point)


def arrays(stops):
    return (
        np.array([s[0] for s in stops], dtype=np.float64),
        np.array([s[1] for s in stops], dtype=np.float64),
    )


def path_length(dist, path) -> float:
    return sum(dist[a][b] for a, b in pairwise(path))


def node_matrix(depot, stops, end) -> list[list[float]]:
    """Distances between nodes 0 (depot), 1..n (stops), n + 1 (end), as Python floats.

    The route is checked against the metric it optimizes: distance_matrix_m, itself checked
    against the math-module reference above.
    """
    lat, lon = arrays([depot, *stops, end])
    return distance_matrix_m(lat, lon).tolist()


def nodes_of(order) -> list[int]:
    return [0, *(int(k) + 1 for k in order), len(order) + 1]


@given(instances())
def test_plan_route_properties(instance):
    depot, stops, end = instance
    n = len(stops)
    route = plan_route(depot, *arrays(stops), end)
    dist = node_matrix(depot, stops, end)

    assert route.order.dtype == np.int64
    assert sorted(route.order.tolist()) == list(range(n))  # a permutation: each stop once
    path = nodes_of(route.order)
    assert route.leg_m.shape == (n + 1,)
    assert route.leg_m.tolist() == [dist[a][b] for a, b in pairwise(path)]
    assert route.total_m == pytest.approx(math.fsum(route.leg_m), rel=1e-12, abs=1e-9)
    assert route.total_m <= route.nn_total_m

    # Local optimality: no single reversal of order[i..j] shortens the path noticeably.
    total = path_length(dist, path)
    for i in range(1, n + 1):
        for j in range(i + 1, n + 1):
            moved = path[:i] + path[i : j + 1][::-1] + path[j + 1 :]
            assert path_length(dist, moved) >= total - 1e-6 * total

    # Sanity against the optimum for small n: never shorter. How close it gets is measured,
    # not asserted (a heuristic). Over 300 random 7-stop instances with depot, end and stops
    # uniform in this box, 2-opt / optimum averaged 1.011 (76 % optimal, worst 1.28; nearest
    # neighbour alone 1.15); with the depot in Jepara town and the end at TPA Bandengan,
    # 1.004 (81 % optimal, worst 1.06; nearest neighbour 1.09).
    if n <= 7:
        best = min(path_length(dist, [0, *p, n + 1]) for p in permutations(range(1, n + 1)))
        assert route.total_m >= best - 1e-6


@given(instances())
def test_nearest_neighbour_matches_reference(instance):
    depot, stops, end = instance
    dist = node_matrix(depot, stops, end)
    n = len(stops)
    # Plain-Python nearest neighbour, ties to the lowest stop index (min keeps the first).
    path, left = [0], list(range(1, n + 1))
    while left:
        nxt = min(left, key=lambda k: dist[path[-1]][k])
        path.append(nxt)
        left.remove(nxt)
    path.append(n + 1)

    nn_only = plan_route(depot, *arrays(stops), end, max_passes=0)
    assert nodes_of(nn_only.order) == path
    assert nn_only.total_m == nn_only.nn_total_m
    assert nn_only.nn_total_m == pytest.approx(path_length(dist, path), rel=1e-12, abs=1e-9)
    assert plan_route(depot, *arrays(stops), end).nn_total_m == nn_only.nn_total_m


@pytest.mark.parametrize(
    ("depot", "end", "expected"),
    [
        ((-6.70, 110.65), (-6.40, 110.65), [3, 0, 4, 2, 1]),  # south to north along a meridian
        ((-6.40, 110.65), (-6.70, 110.65), [1, 2, 4, 0, 3]),  # north to south
        # There and back: nearest neighbour sweeps north, the return leg is one straight line.
        ((-6.70, 110.65), (-6.70, 110.65), [3, 0, 4, 2, 1]),
    ],
)
def test_collinear_stops_are_visited_along_the_line(depot, end, expected):
    stops_lat = np.array([-6.60, -6.45, -6.50, -6.65, -6.55])
    stops_lon = np.full(5, 110.65)
    route = plan_route(depot, stops_lat, stops_lon, end)
    assert route.order.tolist() == expected
    far = max(stops_lat.max(), depot[0], end[0])
    straight = float(
        haversine_m(np.array(depot[0]), np.array(110.65), np.array(far), np.array(110.65))
        + haversine_m(np.array(far), np.array(110.65), np.array(end[0]), np.array(110.65))
    )
    assert route.total_m == pytest.approx(straight, rel=1e-12)


def test_collinear_stops_along_the_equator_need_2opt():
    # Depot at 110.50 between the stops, end at 110.70: nearest neighbour sweeps east
    # (110.52, .55, .60), turns back west to 110.40 and crosses everything again to the end,
    # 0.60 deg in all. The only shortest order goes west first, then one sweep east: 0.10 +
    # 0.30 deg (any other order doubles back over some stretch).
    stops_lon = np.array([110.55, 110.40, 110.60, 110.52])
    route = plan_route((0.0, 110.50), np.zeros(4), stops_lon, (0.0, 110.70))
    assert route.order.tolist() == [1, 3, 0, 2]
    one_degree = math.pi / 180 * EARTH_RADIUS_M
    assert route.nn_total_m == pytest.approx(0.60 * one_degree, rel=1e-9)
    assert route.total_m == pytest.approx(0.40 * one_degree, rel=1e-9)


def test_no_stops_and_one_stop():
    empty = np.array([], dtype=np.float64)
    route = plan_route(JEPARA, empty, empty, TPA_BANDENGAN)
    assert route.order.dtype == np.int64
    assert route.order.shape == (0,)
    assert route.leg_m.tolist() == [pytest.approx(2741.78, abs=0.01)]
    assert route.total_m == route.nn_total_m == float(route.leg_m[0])

    one = plan_route(JEPARA, np.array([-6.58]), np.array([110.66]), TPA_BANDENGAN)
    assert one.order.tolist() == [0]
    assert one.leg_m.shape == (2,)
    assert one.total_m == pytest.approx(float(one.leg_m.sum()))


def test_deterministic_and_frozen():
    rng = np.random.default_rng(7)
    lat, lon = rng.uniform(-6.9, -5.8, 60), rng.uniform(110.4, 111.0, 60)
    a = plan_route(JEPARA, lat, lon, TPA_BANDENGAN)
    b = plan_route(JEPARA, lat.copy(), lon.copy(), TPA_BANDENGAN)
    assert np.array_equal(a.order, b.order)
    assert np.array_equal(a.leg_m, b.leg_m)
    assert a.total_m == b.total_m
    assert a.total_m < a.nn_total_m  # on 60 random bins nearest neighbour is never 2-opt-optimal
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.total_m = 0.0
    assert isinstance(a, Route)


@pytest.mark.parametrize(
    ("depot", "lat", "lon", "end", "max_passes", "match"),
    [
        (JEPARA, np.zeros(2), np.zeros(3), JEPARA, 100, "equal length"),
        (JEPARA, np.zeros((2, 2)), np.zeros((2, 2)), JEPARA, 100, "1-D"),
        (JEPARA, np.array([math.nan]), np.array([110.6]), JEPARA, 100, "finite"),
        ((math.inf, 110.6), np.zeros(1), np.zeros(1), JEPARA, 100, "finite"),
        (JEPARA, np.zeros(1), np.zeros(1), (-6.5, math.nan), 100, "finite"),
        (JEPARA, np.zeros(1), np.zeros(1), JEPARA, -1, "max_passes"),
    ],
)
def test_invalid_input(depot, lat, lon, end, max_passes, match):
    with pytest.raises(ValueError, match=match):
        plan_route(depot, lat, lon, end, max_passes=max_passes)
