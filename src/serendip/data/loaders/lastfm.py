"""Last.fm HetRec 2011 (`hetrec2011-lastfm-2k/`): 1892 users, 17632 artists, listen counts,
free-text tags and an undirected friend graph; tab-separated files with a header.

- `user_artists.dat` -> interactions (event "view", value = listen count, no timestamp);
- `artists.dat` -> items (title = the name);
- `user_taggedartists.dat` joined to `tags.dat` -> each artist's `TOP_TAGS` most assigned tags
  (most frequent first; category = the first), and every assignment with its date (midnight
  UTC) in `ds.extras["tag_assignments"]`;
- `user_friends.dat` -> the social graph, both directions, each once.

Users: everyone named by the interactions or the friend graph. The files mix UTF-8 and latin-1
and hold stray quotes: read as literal text, never quoted, with a latin-1 fallback.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from serendip.data.dataset import Dataset
from serendip.data.loaders._files import Progress, assemble
from serendip.data.loaders._parse import as_strings, cell, empty_mask, parse_numbers
from serendip.data.loaders._read import RawTable, SourceFile, read_raw
from serendip.data.loaders._report import (
    LoadReport,
    OnBadRows,
    check_on_bad_rows,
    warn_unreported,
)
from serendip.data.loaders._tables import (
    Issue,
    malformed_rows,
    number_issue,
    record_stats,
    resolve,
    validate_interactions,
    validate_items,
    validate_social,
)
from serendip.errors import DataError

__all__ = ["TOP_TAGS", "load_lastfm"]

#: How many tags an artist keeps in `ItemTable.tags` (the full assignments are in extras).
TOP_TAGS = 10


def _dat(path: Path, columns: dict[str, str] | None = None) -> SourceFile:
    return SourceFile(path, columns=columns, delimiter="\t", quoting=False)


def load_lastfm(
    directory: str | os.PathLike[str],
    *,
    on_bad_rows: OnBadRows = "raise",
    report: LoadReport | None = None,
    progress: Progress | None = None,
    top_tags: int = TOP_TAGS,
) -> Dataset:
    """Load a Last.fm HetRec 2011 directory as the Dataset "lastfm-2k".

    `ds.extras["tag_assignments"]`: one row per (user, artist, tag) assignment with columns
    user, item, tag_id, tag (str) and timestamp (float64 epoch seconds, NaN if the date is
    invalid); it keeps assignments to artists missing from artists.dat too.

    >>> ds = load_lastfm("../shared/data/lastfm-2k")  # doctest: +SKIP
    >>> ds.n_users, ds.n_items, ds.n_interactions, len(ds.social)  # doctest: +SKIP
    (1892, 17632, 92834, 25434)
    """
    policy = check_on_bad_rows(on_bad_rows)
    rep = report if report is not None else LoadReport()
    root = Path(directory)
    if not (root / "user_artists.dat").is_file():
        raise DataError("not a Last.fm HetRec directory (no user_artists.dat)", file=str(root))

    def step(name: str) -> None:
        if progress is not None:
            progress(f"reading {name}")

    step("user_artists.dat")
    raw = read_raw(
        _dat(root / "user_artists.dat", {"user": "userID", "item": "artistID", "value": "weight"})
    )
    inter = validate_interactions(raw, on_bad_rows=policy, report=rep)

    assignments = None
    if (root / "user_taggedartists.dat").is_file() and (root / "tags.dat").is_file():
        step("user_taggedartists.dat")
        assignments = _tag_assignments(root, policy, rep)

    items = None
    if (root / "artists.dat").is_file():
        step("artists.dat")
        artists = read_raw(_dat(root / "artists.dat", {"item": "id", "title": "name"}))
        artists.require("item")
        if assignments is not None:
            artists = _with_tags(artists, assignments, top_tags)
        items = validate_items(artists, on_bad_rows=policy, report=rep)

    social = None
    if (root / "user_friends.dat").is_file():
        step("user_friends.dat")
        friends = read_raw(
            _dat(root / "user_friends.dat", {"follower": "userID", "followee": "friendID"})
        )
        social = validate_social(friends, on_bad_rows=policy, report=rep)

    extras = {"tag_assignments": assignments} if assignments is not None else {}
    ds = assemble(
        inter,
        items,
        None,
        social,
        name="lastfm-2k",
        on_bad_rows=policy,
        report=rep,
        undirected_social=True,
        extras=extras,
        progress=progress,
    )
    if report is None:
        warn_unreported(rep)
    return ds


def _tag_assignments(root: Path, policy: OnBadRows, report: LoadReport) -> pd.DataFrame:
    """user_taggedartists.dat joined to tags.dat, validated; dates to epoch seconds."""
    tags = read_raw(_dat(root / "tags.dat", {"tag_id": "tagID", "tag": "tagValue"}))
    tags.require("tag_id", "tag")
    tags_malformed = malformed_rows(tags, policy, report)
    tag_id = as_strings(tags.columns["tag_id"])
    tag_issues = [Issue(empty_mask(tag_id), "tagID", "empty ID", lambda r: "empty ID")]
    keep = resolve(
        tag_issues,
        file=tags.file,
        unit=tags.unit,
        positions=tags.positions,
        on_bad_rows=policy,
        report=report,
        malformed=tags_malformed,
    )
    tag_frame = pd.DataFrame(
        {"tag_id": tag_id.to_pylist(), "tag": as_strings(tags.columns["tag"]).to_pylist()}
    )
    if keep is not None:
        tag_frame = tag_frame[keep]
    tag_frame = tag_frame.drop_duplicates("tag_id", keep="first")
    record_stats(report, tags.file, tags.rows_read, len(tag_frame))

    raw = read_raw(
        _dat(
            root / "user_taggedartists.dat",
            {"user": "userID", "item": "artistID", "tag_id": "tagID"},
        )
    )
    raw.require("user", "item", "tag_id", "day", "month", "year")
    malformed = malformed_rows(raw, policy, report)
    ids = {name: as_strings(raw.columns[name]) for name in ("user", "item", "tag_id")}
    fields = {"user": "userID", "item": "artistID", "tag_id": "tagID"}
    issues = [
        Issue(empty_mask(col), fields[k], "empty ID", lambda r: "empty ID")
        for k, col in ids.items()
    ]
    parts = {}
    for name in ("year", "month", "day"):
        parsed = parse_numbers(raw.columns[name])
        parts[name] = parsed.values
        issues.append(number_issue(raw.columns[name], parsed.bad, name))
    known = pa.array(tag_frame["tag_id"].to_numpy(dtype=object), type=pa.string())
    tag_index = pc.fill_null(pc.index_in(ids["tag_id"], value_set=known), -1).to_numpy()
    tag_index = np.asarray(tag_index, dtype=np.int64)
    tag_col = raw.columns["tag_id"]
    issues.append(
        Issue(
            (tag_index < 0) & ~empty_mask(ids["tag_id"]),
            "tagID",
            "unknown tag",
            lambda r: f"tag '{cell(tag_col, r)}' is not in {tags.file}",
        )
    )
    keep = resolve(
        issues,
        file=raw.file,
        unit=raw.unit,
        positions=raw.positions,
        on_bad_rows=policy,
        report=report,
        malformed=malformed,
    )
    date = pd.to_datetime(
        pd.DataFrame({k: pd.Series(v).fillna(0).astype(np.int64) for k, v in parts.items()}),
        errors="coerce",
        utc=True,
    )
    seconds = ((date - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    frame = pd.DataFrame(
        {
            "user": ids["user"].to_pandas(),
            "item": ids["item"].to_pandas(),
            "tag_id": ids["tag_id"].to_pandas(),
            "tag": tag_frame["tag"].to_numpy(dtype=object)[np.maximum(tag_index, 0)],
            "timestamp": seconds,
        }
    )
    if keep is not None:
        frame = frame[keep].reset_index(drop=True)
    record_stats(report, raw.file, raw.rows_read, len(frame))
    return frame


def _with_tags(artists: RawTable, assignments: pd.DataFrame, top: int) -> RawTable:
    """artists.dat plus each artist's `top` most assigned tags and the first as category."""
    counts = assignments.groupby(["item", "tag"], sort=False).size().rename("n").reset_index()
    counts = counts.sort_values(["item", "n", "tag"], ascending=[True, False, True], kind="stable")
    best = counts.groupby("item", sort=False).head(top)
    # Sorted by item, so each artist's tags are one contiguous run.
    items = best["item"].to_numpy(dtype=object)
    tag_values = best["tag"].to_numpy(dtype=object).tolist()
    starts = (
        np.flatnonzero(np.r_[True, items[1:] != items[:-1]]) if len(items) else np.zeros(0, int)
    )
    ends = np.r_[starts[1:], len(items)]
    by_item = {items[s]: tag_values[s:e] for s, e in zip(starts, ends, strict=True)}
    ids = as_strings(artists.columns["item"]).to_pylist()
    tag_lists = [by_item.get(i, []) for i in ids]
    columns = dict(artists.columns)
    columns["tags"] = pa.chunked_array([pa.array(tag_lists, type=pa.list_(pa.string()))])
    columns["category"] = pa.chunked_array(
        [pa.array([t[0] if t else "" for t in tag_lists], type=pa.string())]
    )
    return artists.with_columns(columns)
