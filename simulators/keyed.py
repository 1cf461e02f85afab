"""Keyed random numbers: the noise of a reading is a pure function of (sensor key, time, stream).

A simulated reading must not depend on how the run is cut into windows (a live run ticking every
0.1 s and a backfill generating an hour at a time publish the same bytes), nor on which other
sensors are in the fleet. So per-reading noise is not drawn from a shared generator but hashed
from the sensor's key, the reading's time and a stream number, with the SplitMix64 finalizer
(Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014). Per-sensor
parameters and per-day events still come from seeded ``np.random.Generator`` objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from processing.arrays import F64Array, I64Array

U64Array = NDArray[np.uint64]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31, _S11, _S32 = (np.uint64(s) for s in (30, 27, 31, 11, 32))
_TWO_PI = 2.0 * np.pi


def mix64(x: U64Array) -> U64Array:
    """The SplitMix64 finalizer: a bijection on uint64 scrambling every bit (wraps mod 2**64)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    mixed: U64Array = x ^ (x >> _S31)
    return mixed


def sensor_keys(seed: int, ids: Sequence[str]) -> U64Array:
    """One 64-bit key per sensor id, fixed by the seed and the id alone (not by fleet order)."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(f"{seed}/{i}".encode(), digest_size=8).digest(), "big")
            for i in ids
        ],
        dtype=np.uint64,
    )


def hashed(key: U64Array, t: I64Array, stream: int) -> U64Array:
    """64 random bits per (key, t) pair, for one ``stream`` (a small integer naming the use)."""
    tt = np.asarray(t, dtype=np.int64).astype(np.uint64)
    salt = np.full(tt.shape, stream, dtype=np.uint64) * _GOLDEN
    return mix64(np.asarray(key, dtype=np.uint64) ^ mix64(tt + salt))


def uniform(key: U64Array, t: I64Array, stream: int) -> F64Array:
    """Uniform on the open interval (0, 1), 53 bits, one per (key, t) pair."""
    bits = hashed(key, t, stream) >> _S11
    u: F64Array = (bits.astype(np.float64) + 0.5) * 2.0**-53
    return u


def normal(key: U64Array, t: I64Array, stream: int) -> F64Array:
    """Standard normal, one per (key, t) pair (Box-Muller on two 32-bit halves of one hash).

    The smallest 32-bit uniform is 2**-33, so values are bounded by about 6.9 standard
    deviations: no accidental outlier can pass for an injected spike.
    """
    bits = hashed(key, t, stream)
    u1 = ((bits >> _S32).astype(np.float64) + 0.5) * 2.0**-32
    u2 = ((bits & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * 2.0**-32
    z: F64Array = np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)
    return z
