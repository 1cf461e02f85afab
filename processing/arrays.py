"""Array type aliases used across the pipeline."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64Array = NDArray[np.float64]
I64Array = NDArray[np.int64]
I32Array = NDArray[np.int32]
I16Array = NDArray[np.int16]
I8Array = NDArray[np.int8]
U8Array = NDArray[np.uint8]
BoolArray = NDArray[np.bool_]
