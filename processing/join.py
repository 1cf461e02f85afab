"""Looking values up by key, vectorized: the one join the pipeline needs.

A table is a key column and a value column, aligned; a lookup gives, for each wanted key, the
table's value under that key. A key is an int64 (a sensor key, a series id) or several int64
columns packed into one opaque value by :func:`pack` (a sensor and a time, a zone and an hour).
The table is sorted once and searched with :func:`numpy.searchsorted`: O((n + m) log n), no
Python loop over rows.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from processing.arrays import I64Array

V = TypeVar("V", bound=np.generic)

_SIGN = np.uint64(1 << 63)


def pack(*columns: I64Array) -> NDArray[np.void]:
    """One opaque value per row of the aligned int64 ``columns``: a composite key.

    Equal rows give equal values, and the values' byte order is the rows' numeric order,
    column by column (flipping the sign bit maps int64 order onto unsigned order; big-endian
    makes byte order match). Raises ValueError for no columns or columns of different lengths.
    """
    if not columns:
        raise ValueError("pack needs at least one column")
    lengths = {c.shape[0] for c in columns}
    if len(lengths) > 1:
        raise ValueError(f"columns must be aligned, got lengths {sorted(lengths)}")
    fields = np.dtype([(f"c{i}", ">u8") for i in range(len(columns))])
    packed = np.empty(lengths.pop(), dtype=fields)
    for i, column in enumerate(columns):
        packed[f"c{i}"] = column.astype(np.int64).view(np.uint64) ^ _SIGN
    out: NDArray[np.void] = packed.view(f"V{8 * len(columns)}")
    return out


def lookup(want: NDArray[Any], key: NDArray[Any], value: NDArray[V], missing: Any) -> NDArray[V]:
    """``value`` at the table row whose ``key`` equals each element of ``want``.

    ``key`` and ``value`` are aligned, one element per table row, in any order; where a key
    occurs more than once, its first row in table order counts. ``missing`` where no key
    equals the wanted one. The result is aligned with ``want`` and has ``value``'s dtype.
    ``want`` and ``key`` must have the same dtype (int64, or :func:`pack` values of the same
    number of columns): a ValueError otherwise, rather than comparing unlike keys.
    """
    if want.dtype != key.dtype:
        raise ValueError(f"keys must have one dtype, got {want.dtype} and {key.dtype}")
    if key.shape != value.shape:
        raise ValueError(f"key and value must be aligned, got {key.shape} and {value.shape}")
    out = np.full(want.shape[0], missing, dtype=value.dtype)
    if want.shape[0] == 0 or key.shape[0] == 0:
        return out
    # A stable sort keeps equal keys in table order, and searchsorted (side="left") finds the
    # first of them: the first row in table order wins.
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    at = np.minimum(np.searchsorted(sorted_key, want), sorted_key.shape[0] - 1)
    found = sorted_key[at] == want
    out[found] = value[order[at[found]]]
    return out
