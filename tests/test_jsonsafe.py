import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from serendip.jsonsafe import jsonable


def test_jsonable_plain_values() -> None:
    assert jsonable({"a": np.arange(3), "b": (np.float64(1.0), math.inf), 1: Path("x")}) == {
        "a": [0, 1, 2],
        "b": [1.0, None],
        "1": "x",
    }


def test_jsonable_dataclasses_and_numpy_scalars_pass_strict_json() -> None:
    @dataclasses.dataclass
    class Row:
        n: np.int64
        ok: np.bool_
        x: np.float32

    out = jsonable([Row(np.int64(3), np.bool_(True), np.float32("nan"))])
    assert out == [{"n": 3, "ok": True, "x": None}]
    assert isinstance(out[0]["n"], int) and isinstance(out[0]["ok"], bool)
    json.dumps(out, allow_nan=False)
