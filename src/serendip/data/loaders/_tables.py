"""Validating the four kinds of file: interactions, items, users and the social graph.

Each validator takes a `RawTable` and returns a typed, validated table whose rows keep their
line numbers. Problems are found with whole-column operations; then either the first one (by
line) becomes a `DataError` naming file, line, field and problem, or (`on_bad_rows="drop"`)
the rows are dropped and counted in the `LoadReport`.

Checks run in stages, each on the rows that passed the previous ones: cells (empty IDs,
unparsable values), then duplicates, then references to other files (`check_references`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from serendip.data.dataset import EVENT_TYPES
from serendip.data.loaders._parse import (
    as_strings,
    cell,
    empty_mask,
    parse_bools,
    parse_events,
    parse_numbers,
    parse_tags,
    parse_timestamps,
)
from serendip.data.loaders._read import RawTable
from serendip.data.loaders._report import MAX_EXAMPLES, BadRows, FileStats, LoadReport, OnBadRows
from serendip.errors import ConfigError, DataError

__all__ = [
    "INTERACTION_COLUMNS",
    "ITEM_COLUMNS",
    "SOCIAL_COLUMNS",
    "USER_COLUMNS",
    "InteractionRows",
    "Issue",
    "ItemRows",
    "SocialRows",
    "UserRows",
    "check_columns",
    "check_references",
    "column",
    "duplicate_rows",
    "empty_issue",
    "location",
    "malformed_rows",
    "number_issue",
    "record_stats",
    "resolve",
    "timestamp_issue",
    "validate_interactions",
    "validate_items",
    "validate_social",
    "validate_users",
]

INTERACTION_COLUMNS = ("user", "item", "timestamp", "event", "value")
ITEM_COLUMNS = ("item", "title", "text", "tags", "category", "author", "created_at")
USER_COLUMNS = ("user", "created_at", "interests", "private")
SOCIAL_COLUMNS = ("follower", "followee", "created_at")

_TIMESTAMP_HINT = "(epoch seconds or ISO 8601)"
T = TypeVar("T")


# --------------------------------------------------------------------------- issues
@dataclass(frozen=True, slots=True, eq=False)
class Issue:
    """Rows (boolean mask over the table's current rows) with one problem.

    `problem` is the short name a `LoadReport` counts under; `describe(r)` the full message
    for row r, built only for the row that is reported.
    """

    mask: np.ndarray
    field: str | None
    problem: str
    describe: Callable[[int], str]


def location(file: str, unit: str, position: int, field: str | None, problem: str) -> DataError:
    """A `DataError` at a line of a text file or a row of a Parquet file."""
    if unit == "row":
        return DataError(problem, file=file, row=position, field=field)
    return DataError(problem, file=file, line=position, field=field)


def resolve(
    issues: Sequence[Issue],
    *,
    file: str,
    unit: Literal["line", "row"],
    positions: np.ndarray,
    on_bad_rows: OnBadRows,
    report: LoadReport,
    origin: Mapping[str, str] | None = None,
    malformed: tuple[int, str] | None = None,
) -> np.ndarray | None:
    """Raise for the earliest bad row, or drop: the mask of rows to keep (None: keep all).

    `origin` maps our column names to the file's, so that messages name the file's columns.
    `malformed`: the first (line, message) of a row that is not in the table (raise mode).

    In drop mode a row is counted under the first of `issues` it has, so that the counts in
    the report add up to the rows dropped.
    """
    found = [i for i in issues if i.mask.any()]
    if malformed is not None and (
        not found or malformed[0] < min(positions[int(np.argmax(i.mask))] for i in found)
    ):
        raise location(file, unit, malformed[0], None, malformed[1])
    if not found:
        return None
    names = origin or {}

    def field_name(issue: Issue) -> str | None:
        return names.get(issue.field, issue.field) if issue.field else None

    if on_bad_rows == "raise":
        firsts = [int(np.argmax(i.mask)) for i in found]
        k = min(range(len(found)), key=lambda j: (positions[firsts[j]], j))
        row = firsts[k]
        raise location(
            file, unit, int(positions[row]), field_name(found[k]), found[k].describe(row)
        )
    claimed = np.zeros(len(positions), dtype=bool)
    for issue in found:
        mine = issue.mask & ~claimed
        count = int(mine.sum())
        if count:
            examples = tuple(int(p) for p in positions[mine][:MAX_EXAMPLES])
            report.add_bad_rows(
                BadRows(file, issue.problem, field_name(issue), count, examples, unit)
            )
            claimed |= mine
    return ~claimed


def check_columns(
    raw: RawTable, allowed: Sequence[str] | None, mapping_keys: Sequence[str]
) -> None:
    """A `ConfigError` for a column mapping naming a column this kind of file does not have."""
    if allowed is None:
        return
    unknown = [k for k in mapping_keys if k not in allowed]
    if unknown:
        raise ConfigError(
            f"unknown column '{unknown[0]}' in the column mapping of {raw.file}; "
            f"valid: {', '.join(allowed)}"
        )


def malformed_rows(
    raw: RawTable, on_bad_rows: OnBadRows, report: LoadReport
) -> tuple[int, str] | None:
    """Rows with the wrong number of fields (already outside the table's columns).

    Drop mode counts them; raise mode returns the first (line, message) for `resolve` to
    weigh against the other problems of the first stage, so the earliest line is reported.
    """
    if not raw.malformed:
        return None
    if on_bad_rows == "raise":
        line, n = raw.malformed[0]
        return line, f"expected {raw.expected_fields} fields, found {n}"
    lines = tuple(line for line, _ in raw.malformed[:MAX_EXAMPLES])
    report.add_bad_rows(
        BadRows(raw.file, "wrong number of fields", None, len(raw.malformed), lines)
    )
    return None


def empty_issue(strings: pa.ChunkedArray, field: str) -> Issue:
    return Issue(empty_mask(strings), field, "empty ID", lambda r: "empty ID")


def number_issue(raw: pa.ChunkedArray, bad: np.ndarray, field: str) -> Issue:
    return Issue(
        bad, field, "unparsable number", lambda r: f"cannot parse '{cell(raw, r)}' as a number"
    )


def timestamp_issue(raw: pa.ChunkedArray, bad: np.ndarray, field: str) -> Issue:
    return Issue(
        bad,
        field,
        "unparsable timestamp",
        lambda r: f"cannot parse '{cell(raw, r)}' as a timestamp {_TIMESTAMP_HINT}",
    )


def column(raw: RawTable, name: str, parse: Callable[[pa.ChunkedArray], T]) -> T:
    """`parse(raw.columns[name])`; a column of a type it cannot read (a Parquet list or
    struct where text or numbers belong) is a `DataError` naming the file and column."""
    col = raw.columns[name]
    try:
        return parse(col)
    except pa.ArrowException:
        raise DataError(
            f"column '{raw.origin.get(name, name)}' has type {col.type}, which this column cannot hold",
            file=raw.file,
        ) from None


def _take(col: Any, keep: np.ndarray) -> Any:
    if isinstance(col, (pa.ChunkedArray, pa.Array)):
        return col.filter(pa.array(keep))
    return col[keep]


def _take_all(columns: dict[str, Any], keep: np.ndarray | None) -> dict[str, Any]:
    if keep is None:
        return columns
    return {k: _take(v, keep) for k, v in columns.items()}


def _codes(strings: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Dense int64 codes and the unique strings, in order of first appearance."""
    uniques = pc.unique(strings)
    if isinstance(uniques, pa.ChunkedArray):
        uniques = uniques.combine_chunks()
    codes = pc.index_in(strings, value_set=uniques).to_numpy().astype(np.int64)
    return codes, uniques


# --------------------------------------------------------------------------- duplicates
def duplicate_rows(keys: Sequence[np.ndarray]) -> np.ndarray:
    """Rows equal (in every key column) to an earlier row; NaN equals NaN.

    A 64-bit row hash finds the candidates with one sort, then pandas compares the few
    candidate rows exactly, so hash collisions cannot cause false duplicates.
    """
    n = len(keys[0]) if keys else 0
    if n < 2:
        return np.zeros(n, dtype=bool)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for key in keys:
            h ^= _bits(key)
            h *= np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(31)
    s = np.sort(h)
    repeated = s[1:][s[1:] == s[:-1]]
    if not len(repeated):
        return np.zeros(n, dtype=bool)
    candidates = np.flatnonzero(np.isin(h, repeated))
    frame = pd.DataFrame({str(k): key[candidates] for k, key in enumerate(keys)})
    out = np.zeros(n, dtype=bool)
    out[candidates] = frame.duplicated(keep="first").to_numpy()
    return out


def _bits(key: np.ndarray) -> np.ndarray:
    if key.dtype.kind == "f":
        k = np.where(np.isnan(key), np.float64(-1.2345e300), key.astype(np.float64) + 0.0)
        return k.view(np.uint64)
    return key.astype(np.int64).view(np.uint64)


def _first_equal(keys: Sequence[np.ndarray], row: int) -> int:
    """Position of the first row equal to `row` in every key (for a duplicate's message)."""
    mask = np.ones(len(keys[0]), dtype=bool)
    for key in keys:
        v = key[row]
        if key.dtype.kind == "f" and np.isnan(v):
            mask &= np.isnan(key)
        else:
            mask &= key == v
    return int(np.argmax(mask))


# --------------------------------------------------------------------------- interactions
@dataclass(frozen=True, slots=True, eq=False)
class InteractionRows:
    """Validated interactions of one file.

    user/item: int64 codes into `user_ids`/`item_ids` (this file's own unique IDs, in order of
    first appearance; after drops some may be unused); timestamp float64 epoch seconds (NaN =
    unknown); event int8 code into `EVENT_TYPES`; value float64 (NaN = none).
    """

    file: str
    unit: Literal["line", "row"]
    positions: np.ndarray
    user: np.ndarray
    user_ids: pa.Array
    item: np.ndarray
    item_ids: pa.Array
    timestamp: np.ndarray
    event: np.ndarray
    value: np.ndarray
    rows_read: int
    origin: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.positions)

    def take(self, keep: np.ndarray | None) -> InteractionRows:
        if keep is None:
            return self
        return replace(
            self,
            positions=self.positions[keep],
            user=self.user[keep],
            item=self.item[keep],
            timestamp=self.timestamp[keep],
            event=self.event[keep],
            value=self.value[keep],
        )

    def frame(self) -> pd.DataFrame:
        """Columns user, item (str), timestamp, event (name), value; index = line/row."""
        return pd.DataFrame(
            {
                "user": self.user_ids.take(pa.array(self.user)).to_pandas(),
                "item": self.item_ids.take(pa.array(self.item)).to_pandas(),
                "timestamp": self.timestamp,
                "event": np.asarray(EVENT_TYPES, dtype=object)[self.event],
                "value": self.value,
            },
        ).set_axis(pd.Index(self.positions, name=self.unit))


def validate_interactions(
    raw: RawTable,
    *,
    on_bad_rows: OnBadRows,
    report: LoadReport,
    default_event: str = "view",
) -> InteractionRows:
    """Check one interactions file: IDs present; timestamps, events and values parse; values
    are non-negative; no row repeats an earlier one (same user, item, timestamp, event and
    value: the same line twice). `default_event` is the event of rows without one."""
    raw.require("user", "item")
    malformed = malformed_rows(raw, on_bad_rows, report)
    n = len(raw)
    cols: dict[str, Any] = {
        "user": column(raw, "user", as_strings),
        "item": column(raw, "item", as_strings),
    }
    issues = [empty_issue(cols["user"], "user"), empty_issue(cols["item"], "item")]
    if "timestamp" in raw.columns:
        ts = column(raw, "timestamp", parse_timestamps)
        cols["timestamp"] = ts.values
        issues.append(timestamp_issue(raw.columns["timestamp"], ts.bad, "timestamp"))
    else:
        cols["timestamp"] = np.full(n, np.nan)
    if "event" in raw.columns:
        ev = column(raw, "event", lambda c: parse_events(c, EVENT_TYPES, default_event))
        cols["event"] = ev.values
        ev_raw = raw.columns["event"]
        issues.append(
            Issue(
                ev.bad,
                "event",
                "unknown event type",
                lambda r: (
                    f"unknown event type '{cell(ev_raw, r)}' (valid: {', '.join(EVENT_TYPES)})"
                ),
            )
        )
    else:
        cols["event"] = np.full(n, EVENT_TYPES.index(default_event), dtype=np.int8)
    if "value" in raw.columns:
        val = column(raw, "value", parse_numbers)
        cols["value"] = val.values
        val_raw = raw.columns["value"]
        issues.append(number_issue(val_raw, val.bad, "value"))
        issues.append(
            Issue(
                val.values < 0,
                "value",
                "negative value",
                lambda r: f"negative value '{cell(val_raw, r)}' (must be >= 0)",
            )
        )
    else:
        cols["value"] = np.full(n, np.nan)
    keep = resolve(
        issues,
        file=raw.file,
        unit=raw.unit,
        positions=raw.positions,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=raw.origin,
        malformed=malformed,
    )
    cols = _take_all(cols, keep)
    positions = raw.positions if keep is None else raw.positions[keep]
    user, user_ids = _codes(cols["user"])
    item, item_ids = _codes(cols["item"])
    rows = InteractionRows(
        raw.file,
        raw.unit,
        positions,
        user,
        user_ids,
        item,
        item_ids,
        cols["timestamp"],
        cols["event"],
        cols["value"],
        raw.rows_read,
        raw.origin,
    )
    keys = [rows.user, rows.item, rows.timestamp, rows.event, rows.value]
    dup = duplicate_rows(keys)
    unit = raw.unit
    keep = resolve(
        [
            Issue(
                dup,
                None,
                "duplicate row",
                lambda r: f"duplicate of {unit} {positions[_first_equal(keys, r)]}",
            )
        ],
        file=raw.file,
        unit=unit,
        positions=positions,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=raw.origin,
    )
    return rows.take(keep)


# --------------------------------------------------------------------------- items
@dataclass(frozen=True, slots=True, eq=False)
class ItemRows:
    """Validated items: `frame` has columns item, title, text, tags (tuples of str),
    category, author (str, "" = absent) and created_at (float64 epoch seconds, NaN = unknown);
    its index is the line/row of each item."""

    file: str
    unit: Literal["line", "row"]
    frame: pd.DataFrame
    rows_read: int

    def __len__(self) -> int:
        return len(self.frame)


def _text_or_empty(raw: RawTable, name: str, n: int) -> np.ndarray:
    if name not in raw.columns:
        return np.full(n, "", dtype=object)
    return np.asarray(column(raw, name, as_strings).to_numpy(zero_copy_only=False), dtype=object)


def _unique_ids(
    frame: pd.DataFrame,
    id_column: str,
    noun: str,
    *,
    file: str,
    unit: Literal["line", "row"],
    on_bad_rows: OnBadRows,
    report: LoadReport,
    origin: Mapping[str, str],
) -> pd.DataFrame:
    """Drop/raise exact duplicate rows, then rows repeating an earlier row's ID."""
    positions = frame.index.to_numpy()
    try:
        exact = frame.duplicated(keep="first").to_numpy()
        same_as_some = frame.duplicated(keep=False).to_numpy()
    except TypeError:  # unhashable cells (list attributes of a Parquet file): compare as text
        text = frame.astype(str)
        exact = text.duplicated(keep="first").to_numpy()
        same_as_some = text.duplicated(keep=False).to_numpy()
    values = frame.to_numpy(dtype=object)

    def first_exact(r: int) -> str:
        # Only for the one row reported: scan the earlier rows that have a twin.
        for k in np.flatnonzero(same_as_some[:r]):
            if all(_same(a, b) for a, b in zip(values[k], values[r], strict=True)):
                return f"duplicate of {unit} {positions[k]}"
        return "duplicate row"

    keep = resolve(
        [Issue(exact, None, "duplicate row", first_exact)],
        file=file,
        unit=unit,
        positions=positions,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=origin,
    )
    if keep is not None:
        frame = frame[keep]
        positions = frame.index.to_numpy()
    ids = frame[id_column].to_numpy(dtype=object)
    dup = pd.Series(ids).duplicated(keep="first").to_numpy()

    def first_id(r: int) -> str:
        first = int(np.argmax(ids == ids[r]))
        return f"duplicate {noun} ID '{ids[r]}' (first on {unit} {positions[first]})"

    keep = resolve(
        [Issue(dup, id_column, "duplicate ID", first_id)],
        file=file,
        unit=unit,
        positions=positions,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=origin,
    )
    return frame if keep is None else frame[keep]


def validate_items(raw: RawTable, *, on_bad_rows: OnBadRows, report: LoadReport) -> ItemRows:
    """Check one items file: IDs present and unique, created_at parses."""
    raw.require("item")
    malformed = malformed_rows(raw, on_bad_rows, report)
    n = len(raw)
    item = column(raw, "item", as_strings)
    issues = [empty_issue(item, "item")]
    created = np.full(n, np.nan)
    if "created_at" in raw.columns:
        ts = column(raw, "created_at", parse_timestamps)
        created = ts.values
        issues.append(timestamp_issue(raw.columns["created_at"], ts.bad, "created_at"))
    keep = resolve(
        issues,
        file=raw.file,
        unit=raw.unit,
        positions=raw.positions,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=raw.origin,
        malformed=malformed,
    )
    tags = column(raw, "tags", parse_tags) if "tags" in raw.columns else None
    frame = pd.DataFrame(
        {
            "item": np.asarray(item.to_numpy(zero_copy_only=False), dtype=object),
            "title": _text_or_empty(raw, "title", n),
            "text": _text_or_empty(raw, "text", n),
            "tags": tags if tags is not None else _tuples(n),
            "category": _text_or_empty(raw, "category", n),
            "author": _text_or_empty(raw, "author", n),
            "created_at": created,
        },
        index=pd.Index(raw.positions, name=raw.unit),
    )
    if keep is not None:
        frame = frame[keep]
    frame = _unique_ids(
        frame,
        "item",
        "item",
        file=raw.file,
        unit=raw.unit,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=raw.origin,
    )
    return ItemRows(raw.file, raw.unit, frame, raw.rows_read)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    try:
        return bool(a == b)
    except ValueError:  # array-valued cells
        return bool(np.array_equal(a, b))


def _tuples(n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [()] * n
    return out


# --------------------------------------------------------------------------- users
@dataclass(frozen=True, slots=True, eq=False)
class UserRows:
    """Validated users: `frame` has columns user, created_at (float64 epoch seconds),
    interests (tuples of str), private (bool) and any further column of the file as an
    attribute (text, or the stored type for Parquet); its index is the line/row."""

    file: str
    unit: Literal["line", "row"]
    frame: pd.DataFrame
    rows_read: int

    def __len__(self) -> int:
        return len(self.frame)


def validate_users(raw: RawTable, *, on_bad_rows: OnBadRows, report: LoadReport) -> UserRows:
    """Check one users file: IDs present and unique, created_at and private parse."""
    raw.require("user")
    malformed = malformed_rows(raw, on_bad_rows, report)
    n = len(raw)
    user = column(raw, "user", as_strings)
    issues = [empty_issue(user, "user")]
    created = np.full(n, np.nan)
    if "created_at" in raw.columns:
        ts = column(raw, "created_at", parse_timestamps)
        created = ts.values
        issues.append(timestamp_issue(raw.columns["created_at"], ts.bad, "created_at"))
    private = np.zeros(n, dtype=bool)
    if "private" in raw.columns:
        pv = column(raw, "private", parse_bools)
        private = pv.values
        pv_raw = raw.columns["private"]
        issues.append(
            Issue(
                pv.bad,
                "private",
                "unparsable boolean",
                lambda r: (
                    f"cannot parse '{cell(pv_raw, r)}' as a boolean (true/false, yes/no, 1/0)"
                ),
            )
        )
    keep = resolve(
        issues,
        file=raw.file,
        unit=raw.unit,
        positions=raw.positions,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=raw.origin,
        malformed=malformed,
    )
    data: dict[str, Any] = {
        "user": np.asarray(user.to_numpy(zero_copy_only=False), dtype=object),
        "created_at": created,
        "interests": column(raw, "interests", parse_tags)
        if "interests" in raw.columns
        else _tuples(n),
        "private": private,
    }
    for name, col in raw.columns.items():
        if name not in USER_COLUMNS:
            t = col.type
            is_text = (
                pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)
            )
            data[name] = (
                np.asarray(
                    column(raw, name, as_strings).to_numpy(zero_copy_only=False), dtype=object
                )
                if is_text
                else col.to_numpy()
            )
    frame = pd.DataFrame(data, index=pd.Index(raw.positions, name=raw.unit))
    if keep is not None:
        frame = frame[keep]
    frame = _unique_ids(
        frame,
        "user",
        "user",
        file=raw.file,
        unit=raw.unit,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=raw.origin,
    )
    return UserRows(raw.file, raw.unit, frame, raw.rows_read)


# --------------------------------------------------------------------------- social
@dataclass(frozen=True, slots=True, eq=False)
class SocialRows:
    """Validated follow edges: follower/followee int64 codes into `user_ids` (this file's
    unique IDs), created_at float64 epoch seconds (NaN = unknown), unique (follower, followee)
    pairs, no self-loops."""

    file: str
    unit: Literal["line", "row"]
    positions: np.ndarray
    follower: np.ndarray
    followee: np.ndarray
    user_ids: pa.Array
    created_at: np.ndarray
    rows_read: int
    origin: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.positions)

    def take(self, keep: np.ndarray | None) -> SocialRows:
        if keep is None:
            return self
        return replace(
            self,
            positions=self.positions[keep],
            follower=self.follower[keep],
            followee=self.followee[keep],
            created_at=self.created_at[keep],
        )

    def frame(self) -> pd.DataFrame:
        """Columns follower, followee (str), created_at; index = line/row."""
        return pd.DataFrame(
            {
                "follower": self.user_ids.take(pa.array(self.follower)).to_pandas(),
                "followee": self.user_ids.take(pa.array(self.followee)).to_pandas(),
                "created_at": self.created_at,
            }
        ).set_axis(pd.Index(self.positions, name=self.unit))


def validate_social(raw: RawTable, *, on_bad_rows: OnBadRows, report: LoadReport) -> SocialRows:
    """Check one social file: IDs present, created_at parses, no self-follows, no edge twice."""
    raw.require("follower", "followee")
    malformed = malformed_rows(raw, on_bad_rows, report)
    n = len(raw)
    follower = column(raw, "follower", as_strings)
    followee = column(raw, "followee", as_strings)
    issues = [empty_issue(follower, "follower"), empty_issue(followee, "followee")]
    created = np.full(n, np.nan)
    if "created_at" in raw.columns:
        ts = column(raw, "created_at", parse_timestamps)
        created = ts.values
        issues.append(timestamp_issue(raw.columns["created_at"], ts.bad, "created_at"))
    both = pa.chunked_array(follower.chunks + followee.chunks, type=pa.string())
    codes, user_ids = _codes(both)
    f, g = codes[:n], codes[n:]
    self_loop = (f == g) & ~empty_mask(follower)
    issues.append(
        Issue(
            self_loop,
            "followee",
            "self-follow",
            lambda r: f"user '{user_ids[int(f[r])].as_py()}' follows themselves",
        )
    )
    keep = resolve(
        issues,
        file=raw.file,
        unit=raw.unit,
        positions=raw.positions,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=raw.origin,
        malformed=malformed,
    )
    rows = SocialRows(
        raw.file, raw.unit, raw.positions, f, g, user_ids, created, raw.rows_read
    ).take(keep)
    unit = raw.unit
    pos = rows.positions
    exact_keys = [rows.follower, rows.followee, rows.created_at]
    exact = duplicate_rows(exact_keys)
    pair_keys = [rows.follower, rows.followee]
    pair = duplicate_rows(pair_keys) & ~exact

    def edge(r: int) -> str:
        a, b = user_ids[int(rows.follower[r])].as_py(), user_ids[int(rows.followee[r])].as_py()
        return f"duplicate edge '{a}' -> '{b}' (first on {unit} {pos[_first_equal(pair_keys, r)]})"

    keep = resolve(
        [
            Issue(
                exact,
                None,
                "duplicate row",
                lambda r: f"duplicate of {unit} {pos[_first_equal(exact_keys, r)]}",
            ),
            Issue(pair, "followee", "duplicate edge", edge),
        ],
        file=raw.file,
        unit=unit,
        positions=pos,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=raw.origin,
    )
    return rows.take(keep)


# --------------------------------------------------------------------------- references
def check_references(
    codes: np.ndarray,
    ids: pa.Array,
    known: pa.Array,
    *,
    field: str,
    noun: str,
    known_file: str,
) -> tuple[np.ndarray, Issue]:
    """Map a file's codes into `known` IDs (another file's); an `Issue` for unknown ones.

    Returns (index into `known` per row, -1 where unknown; the issue).
    """
    remap = pc.fill_null(pc.index_in(ids, value_set=known), -1).to_numpy().astype(np.int64)
    mapped = remap[codes] if len(codes) else np.zeros(0, dtype=np.int64)
    unknown = mapped < 0
    return mapped, Issue(
        unknown,
        field,
        f"unknown {noun}",
        lambda r: f"{noun} '{ids[int(codes[r])].as_py()}' is not in {known_file}",
    )


def record_stats(report: LoadReport, file: str, rows_read: int, rows_kept: int) -> None:
    report.add_file(FileStats(file, rows_read, rows_kept))
