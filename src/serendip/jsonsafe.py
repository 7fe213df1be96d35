"""JSON-safe values from what the library computes (one converter for every JSON file we write)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(obj: Any) -> Any:
    """Recursively turn dataclasses, mappings, tuples, NumPy scalars and arrays into plain
    Python values; non-finite floats become None (so the output passes
    `json.dumps(..., allow_nan=False)`), anything else unknown (a `Path`, a date) its `str`.

    >>> jsonable({"a": np.arange(2), "b": (np.float64(1.5), float("inf"))})
    {'a': [0, 1], 'b': [1.5, None]}
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)
