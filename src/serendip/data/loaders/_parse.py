"""Vectorised cell parsers: Arrow column in, NumPy values plus a bad-cell mask out.

Each parser accepts the all-string columns of a text file and the typed columns of a Parquet
file alike. "Empty" (an empty or blank cell, or a null) is never bad: it means "absent".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "Parsed",
    "as_strings",
    "cell",
    "parse_bools",
    "parse_events",
    "parse_numbers",
    "parse_tags",
    "parse_timestamps",
]

# What pyarrow's string -> float64 cast accepts, minus inf/nan (rejected as not finite).
_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_TRUE = ("1", "true", "yes", "y", "t")
_FALSE = ("0", "false", "no", "n", "f", "")
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@dataclass(frozen=True, slots=True, eq=False)
class Parsed:
    """Parsed values (NumPy, one per row) and which non-empty cells could not be parsed."""

    values: np.ndarray
    bad: np.ndarray


def _chunked(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    return col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])


def as_strings(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column as trimmed strings, "" for empty/null (IDs, text, event names)."""
    col = _chunked(col)
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_floating(t):
        # IDs stored as floats (1.0, NaN for missing, as pandas writes them): NaN is empty,
        # integral values lose the ".0".
        col = pc.if_else(pc.is_nan(col), pa.scalar(None, t), col)
        values = pc.drop_null(col).to_numpy()
        if np.isfinite(values).all() and (values == np.round(values)).all():
            col = pc.cast(col, pa.int64())
    if col.type != pa.string():
        # Parquet from pandas holds large_string; one string type keeps chunks combinable.
        col = pc.cast(col, pa.string())
    col = pc.utf8_trim_whitespace(col)
    return pc.fill_null(col, "")


def _mask(col: pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow column as a NumPy bool array (null = False)."""
    return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)


def empty_mask(strings: pa.ChunkedArray) -> np.ndarray:
    """Rows whose (already trimmed) string is empty."""
    return _mask(pc.equal(strings, ""))


def cell(col: pa.ChunkedArray, row: int, limit: int = 60) -> str:
    """The raw cell at `row` as text for a message, shortened past `limit` characters."""
    value = col[row].as_py()
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_numbers(col: pa.ChunkedArray) -> Parsed:
    """float64 values (NaN where empty); bad = non-empty and not a finite number."""
    col = _chunked(col)
    t = col.type
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
    ):
        values = pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy()
        # A stored NaN means "absent" like a null; only infinities are bad.
        return Parsed(values, np.isinf(values))
    strings = as_strings(col)
    is_empty = pc.equal(strings, "")
    empty = _mask(is_empty)
    null = pa.scalar(None, pa.string())
    try:
        values = pc.fill_null(
            pc.cast(pc.if_else(is_empty, null, strings), pa.float64()), np.nan
        ).to_numpy()
        bad = np.zeros(len(values), dtype=bool)
    except pa.ArrowInvalid:
        # Some cell is not a number: find which, by pattern, and parse the others.
        is_number = pc.match_substring_regex(strings, _NUMBER_RE)
        kept = pc.if_else(is_number, strings, null)
        values = pc.fill_null(pc.cast(kept, pa.float64()), np.nan).to_numpy()
        bad = ~_mask(is_number) & ~empty
    values = np.array(values, dtype=np.float64)  # writable copy
    bad |= ~empty & ~np.isfinite(values)
    values[bad] = np.nan
    return Parsed(values, bad)


def parse_timestamps(col: pa.ChunkedArray) -> Parsed:
    """Epoch seconds (float64, NaN where empty) from epoch numbers, ISO 8601 text or dates.

    Text without a time zone is taken as UTC. bad = non-empty and neither form.
    """
    col = _chunked(col)
    t = col.type
    if pa.types.is_timestamp(t):
        values = pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy().astype(np.float64)
        values *= _UNIT_SECONDS[t.unit]
        values[_mask(col.is_null())] = np.nan
        return Parsed(values, np.zeros(len(values), dtype=bool))
    if pa.types.is_date(t):
        return parse_timestamps(pc.cast(col, pa.timestamp("s")))
    numbers = parse_numbers(col)
    if not numbers.bad.any():
        return numbers
    values, bad = numbers.values.copy(), numbers.bad.copy()
    idx = np.flatnonzero(bad)
    text = as_strings(col).take(pa.array(idx)).to_pandas()
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    seconds = ((parsed - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    values[idx] = seconds
    bad[idx] = np.isnan(seconds)
    return Parsed(values, bad)


def parse_events(col: pa.ChunkedArray, names: tuple[str, ...], default: str) -> Parsed:
    """int8 codes into `names` (case-insensitive); empty = `default`; bad = any other name."""
    strings = pc.utf8_lower(as_strings(col))
    empty = empty_mask(strings)
    codes = pc.index_in(strings, value_set=pa.array(names, type=pa.string()))
    values = pc.fill_null(codes, -1).to_numpy().astype(np.int64)
    values[empty] = names.index(default)
    bad = values < 0
    values[bad] = names.index(default)
    return Parsed(values.astype(np.int8), bad)


def parse_bools(col: pa.ChunkedArray) -> Parsed:
    """bool values (False where empty) from booleans, 0/1, true/false, yes/no."""
    col = _chunked(col)
    if pa.types.is_boolean(col.type):
        values = pc.fill_null(col, False).to_numpy(zero_copy_only=False)
        return Parsed(np.asarray(values, dtype=bool), np.zeros(len(col), dtype=bool))
    strings = pc.utf8_lower(as_strings(col))
    is_true = _mask(pc.is_in(strings, value_set=pa.array(_TRUE)))
    is_false = _mask(pc.is_in(strings, value_set=pa.array(_FALSE)))
    return Parsed(is_true, ~is_true & ~is_false)


def parse_tags(col: pa.ChunkedArray) -> np.ndarray:
    """Object array of tuples of str: "a|b" text split on "|", or list cells; () where empty."""
    col = _chunked(col)
    out = np.empty(len(col), dtype=object)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        for k, v in enumerate(col.to_pylist()):
            out[k] = tuple(s for s in (str(x).strip() for x in (v or ()) if x is not None) if s)
        return out
    for k, v in enumerate(as_strings(col).to_pylist()):
        out[k] = tuple(s for s in (x.strip() for x in v.split("|")) if s) if v else ()
    return out
