"""The CLI's file formats: read and validate each file, check them against each other and
assemble one `Dataset`.

Formats (CSV with a header, or Parquet; only the ID columns are required, others may be
absent or have empty cells):

- interactions: `user,item[,timestamp][,event][,value]`; timestamp in epoch seconds or ISO
  8601, event one of `EVENT_TYPES` (empty = "view"), value a non-negative number.
- items: `item,title,text,tags,category,author,created_at`, tags separated by `|`.
- users: `user,created_at,interests[,private]`, interests separated by `|`; further columns
  become user attributes.
- social: `follower,followee[,created_at]`, directed (or undirected friend lists).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from serendip.data.dataset import Dataset, Interactions, SocialGraph
from serendip.data.loaders._read import RawTable, SourceFile, read_raw
from serendip.data.loaders._report import LoadReport, OnBadRows, check_on_bad_rows, warn_unreported
from serendip.data.loaders._tables import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    SOCIAL_COLUMNS,
    InteractionRows,
    ItemRows,
    SocialRows,
    UserRows,
    check_columns,
    check_references,
    record_stats,
    resolve,
    validate_interactions,
    validate_items,
    validate_social,
    validate_users,
)
from serendip.errors import DataError

__all__ = [
    "FileArg",
    "Progress",
    "assemble",
    "load_files",
    "read_interactions",
    "read_items",
    "read_social",
    "read_users",
]

#: A file to read: a path, or a `SourceFile` with a column mapping and reading options.
FileArg = str | os.PathLike[str] | SourceFile
#: Called with a short description of each step of a load ("reading interactions.csv").
Progress = Callable[[str], None]


def _spec(path: FileArg, columns: Mapping[str, str] | None) -> SourceFile:
    spec = SourceFile.of(path)
    if columns is not None:
        spec = replace(spec, columns=dict(columns))
    return spec


def _raw(spec: SourceFile, allowed: tuple[str, ...] | None, progress: Progress | None) -> RawTable:
    if progress is not None:
        progress(f"reading {spec.label}")
    raw = read_raw(spec)
    check_columns(raw, allowed, list(spec.columns or ()))
    return raw


# --------------------------------------------------------------------------- one file each
def read_interactions(
    path: FileArg,
    *,
    columns: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "raise",
    report: LoadReport | None = None,
) -> pd.DataFrame:
    """Read and validate one interactions file (CSV or Parquet).

    `columns` maps our names to the file's (`{"user": "userId", "item": "movieId"}`).
    Returns columns user, item (str), timestamp (float64 epoch seconds, NaN = unknown),
    event (str, one of `EVENT_TYPES`), value (float64, NaN = none), indexed by the line
    (CSV, header = line 1) or row (Parquet) each came from. A malformed row raises a
    `DataError` naming file, line and field, or with `on_bad_rows="drop"` is dropped and
    counted in `report`.

    >>> read_interactions("ratings.csv", columns={"user": "userId", "item": "movieId"})  # doctest: +SKIP
    """
    rep = report if report is not None else LoadReport()
    rows = _interactions(_spec(path, columns), check_on_bad_rows(on_bad_rows), rep, None)
    record_stats(rep, rows.file, rows.rows_read, len(rows))
    if report is None:
        warn_unreported(rep)
    return rows.frame()


def read_items(
    path: FileArg,
    *,
    columns: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "raise",
    report: LoadReport | None = None,
) -> pd.DataFrame:
    """Read and validate one items file: columns item, title, text, tags (tuples of str),
    category, author (str, "" = absent), created_at (float64 epoch seconds); index = line/row."""
    rep = report if report is not None else LoadReport()
    rows = _items(_spec(path, columns), check_on_bad_rows(on_bad_rows), rep, None)
    record_stats(rep, rows.file, rows.rows_read, len(rows))
    if report is None:
        warn_unreported(rep)
    return rows.frame


def read_users(
    path: FileArg,
    *,
    columns: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "raise",
    report: LoadReport | None = None,
) -> pd.DataFrame:
    """Read and validate one users file: columns user, created_at (float64 epoch seconds),
    interests (tuples of str), private (bool), then the file's other columns (attributes);
    index = line/row."""
    rep = report if report is not None else LoadReport()
    rows = _users(_spec(path, columns), check_on_bad_rows(on_bad_rows), rep, None)
    record_stats(rep, rows.file, rows.rows_read, len(rows))
    if report is None:
        warn_unreported(rep)
    return rows.frame


def read_social(
    path: FileArg,
    *,
    columns: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "raise",
    report: LoadReport | None = None,
    undirected: bool = False,
) -> pd.DataFrame:
    """Read and validate one social file: columns follower, followee (str), created_at
    (float64 epoch seconds); index = line/row. `undirected`: each line is a friendship, and
    the result holds both directions once each (the added reverse edges carry the line of
    the edge they mirror)."""
    rep = report if report is not None else LoadReport()
    rows = _social(_spec(path, columns), check_on_bad_rows(on_bad_rows), rep, None)
    record_stats(rep, rows.file, rows.rows_read, len(rows))
    if report is None:
        warn_unreported(rep)
    if undirected:
        rows = _symmetric(rows)
    return rows.frame()


def _interactions(
    spec: SourceFile,
    policy: OnBadRows,
    report: LoadReport,
    progress: Progress | None,
    default_event: str = "view",
) -> InteractionRows:
    raw = _raw(spec, INTERACTION_COLUMNS, progress)
    return validate_interactions(
        raw, on_bad_rows=policy, report=report, default_event=default_event
    )


def _items(
    spec: SourceFile, policy: OnBadRows, report: LoadReport, progress: Progress | None
) -> ItemRows:
    return validate_items(_raw(spec, ITEM_COLUMNS, progress), on_bad_rows=policy, report=report)


def _users(
    spec: SourceFile, policy: OnBadRows, report: LoadReport, progress: Progress | None
) -> UserRows:
    # Any further column is an attribute, so a mapping may name any column.
    return validate_users(_raw(spec, None, progress), on_bad_rows=policy, report=report)


def _social(
    spec: SourceFile, policy: OnBadRows, report: LoadReport, progress: Progress | None
) -> SocialRows:
    return validate_social(_raw(spec, SOCIAL_COLUMNS, progress), on_bad_rows=policy, report=report)


def _symmetric(rows: SocialRows) -> SocialRows:
    """Both directions of every edge, each pair once (the file's own direction first)."""
    f = np.concatenate([rows.follower, rows.followee])
    g = np.concatenate([rows.followee, rows.follower])
    key = f * max(len(rows.user_ids), 1) + g
    keep = ~pd.Series(key).duplicated(keep="first").to_numpy()
    return replace(
        rows,
        positions=np.concatenate([rows.positions, rows.positions])[keep],
        follower=f[keep],
        followee=g[keep],
        created_at=np.concatenate([rows.created_at, rows.created_at])[keep],
    )


# --------------------------------------------------------------------------- all files
def load_files(
    interactions: FileArg,
    items: FileArg | None = None,
    users: FileArg | None = None,
    social: FileArg | None = None,
    on_bad_rows: OnBadRows = "raise",
    report: LoadReport | None = None,
    *,
    undirected_social: bool = False,
    name: str | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Load the CLI's files into one validated `Dataset`.

    Each argument is a path (CSV or Parquet, by suffix) or a `SourceFile` (column mapping,
    delimiter, encoding). Users: the users file's (every interaction and edge must name one),
    else everyone the interactions or the social graph name. Items: the items file's (an
    interaction naming another is an error), else those the interactions name.
    `on_bad_rows="raise"` stops at the first malformed row with a `DataError` naming file,
    line, field and problem; "drop" drops such rows and counts them in `report` (else a
    warning lists them). `undirected_social`: each social line is a friendship, stored both
    ways. `name` defaults to the interactions file's stem.

    >>> ds = load_files("interactions.csv", items="items.csv", social="social.csv")  # doctest: +SKIP
    """
    policy = check_on_bad_rows(on_bad_rows)
    rep = report if report is not None else LoadReport()
    inter_spec = SourceFile.of(interactions)
    inter = _interactions(inter_spec, policy, rep, progress)
    item_rows = _items(SourceFile.of(items), policy, rep, progress) if items is not None else None
    user_rows = _users(SourceFile.of(users), policy, rep, progress) if users is not None else None
    social_rows = (
        _social(SourceFile.of(social), policy, rep, progress) if social is not None else None
    )
    ds = assemble(
        inter,
        item_rows,
        user_rows,
        social_rows,
        name=name or Path(inter_spec.path).stem,
        on_bad_rows=policy,
        report=rep,
        undirected_social=undirected_social,
        progress=progress,
    )
    if report is None:
        warn_unreported(rep)
    return ds


def assemble(
    inter: InteractionRows,
    items: ItemRows | None,
    users: UserRows | None,
    social: SocialRows | None,
    *,
    name: str,
    on_bad_rows: OnBadRows,
    report: LoadReport,
    undirected_social: bool = False,
    extras: Mapping[str, pd.DataFrame] | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Check the files against each other and build the `Dataset` (see `load_files`).

    The metadata goes through `Dataset.from_frames`; the (possibly tens of millions of)
    interaction and edge rows are mapped to dense indices here with Arrow hash lookups (no
    Python pass per row).
    """
    if progress is not None:
        progress("checking references between files")
    # -- interactions against the users and items files
    issues = []
    user_index: np.ndarray | None = None
    item_index: np.ndarray | None = None
    if users is not None:
        known_users = pa.array(users.frame["user"].to_numpy(dtype=object), type=pa.string())
        user_index, issue = check_references(
            inter.user,
            inter.user_ids,
            known_users,
            field="user",
            noun="user",
            known_file=users.file,
        )
        issues.append(issue)
    if items is not None:
        known_items = pa.array(items.frame["item"].to_numpy(dtype=object), type=pa.string())
        item_index, issue = check_references(
            inter.item,
            inter.item_ids,
            known_items,
            field="item",
            noun="item",
            known_file=items.file,
        )
        issues.append(issue)
    keep = resolve(
        issues,
        file=inter.file,
        unit=inter.unit,
        positions=inter.positions,
        on_bad_rows=on_bad_rows,
        report=report,
        origin=inter.origin,
    )
    if keep is not None:
        inter = inter.take(keep)
        user_index = None if user_index is None else user_index[keep]
        item_index = None if item_index is None else item_index[keep]
    record_stats(report, inter.file, inter.rows_read, len(inter))
    if len(inter) == 0:
        dropped = report.dropped(inter.file)
        why = (
            f"after dropping {dropped} malformed rows" if dropped else "(the file has no data rows)"
        )
        raise DataError(f"no interactions {why}", file=inter.file)

    if items is not None:
        record_stats(report, items.file, items.rows_read, len(items))
    if users is not None:
        record_stats(report, users.file, users.rows_read, len(users))

    # -- social edges against the users file
    if social is not None:
        if users is not None:
            _, f_issue = check_references(
                social.follower,
                social.user_ids,
                known_users,
                field="follower",
                noun="user",
                known_file=users.file,
            )
            _, g_issue = check_references(
                social.followee,
                social.user_ids,
                known_users,
                field="followee",
                noun="user",
                known_file=users.file,
            )
            keep = resolve(
                [f_issue, g_issue],
                file=social.file,
                unit=social.unit,
                positions=social.positions,
                on_bad_rows=on_bad_rows,
                report=report,
                origin=social.origin,
            )
            social = social.take(keep)
        record_stats(report, social.file, social.rows_read, len(social))

    # -- vocabularies: users file, else interaction users then social-only users (first
    # appearance); items file, then items only the interactions name.
    if users is not None:
        users_frame = users.frame.reset_index(drop=True)
        assert user_index is not None
        u = user_index
        user_ids = users_frame["user"].to_numpy(dtype=object)
    else:
        present = _used(inter.user, len(inter.user_ids))
        ids = inter.user_ids.filter(pa.array(present))
        if social is not None:
            social_used = _used(
                np.concatenate([social.follower, social.followee]), len(social.user_ids)
            )
            extra = social.user_ids.filter(pa.array(social_used))
            extra = extra.filter(pc.invert(pc.is_in(extra, value_set=ids)))
            ids = pa.concat_arrays([ids, extra])
        user_ids = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
        users_frame = pd.DataFrame({"user": user_ids})
        u = _index_into(inter.user, inter.user_ids, ids)
    if items is not None:
        items_frame = items.frame.reset_index(drop=True)
        assert item_index is not None
        i = item_index
    else:
        present = _used(inter.item, len(inter.item_ids))
        ids = inter.item_ids.filter(pa.array(present))
        items_frame = pd.DataFrame(
            {"item": np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)}
        )
        i = _index_into(inter.item, inter.item_ids, ids)

    if progress is not None:
        progress("building the dataset")
    skeleton = pd.DataFrame(
        {"user": np.array([], dtype=object), "item": np.array([], dtype=object)}
    )
    meta = Dataset.from_frames(skeleton, items_frame, users_frame, None, name=name, extras=extras)
    interactions = Interactions.build(u, i, inter.timestamp, inter.event, inter.value)
    graph = SocialGraph.empty()
    if social is not None and len(social):
        if undirected_social:
            social = _symmetric(social)
        vocab = pa.array(user_ids, type=pa.string())
        graph = SocialGraph.build(
            _index_into(social.follower, social.user_ids, vocab),
            _index_into(social.followee, social.user_ids, vocab),
            social.created_at,
        )
    return replace(meta, interactions=interactions, social=graph, _cache={})


def _used(codes: np.ndarray, n: int) -> np.ndarray:
    used = np.zeros(n, dtype=bool)
    used[codes] = True
    return used


def _index_into(codes: np.ndarray, ids: pa.Array, vocab: pa.Array) -> np.ndarray:
    """Each row's index in `vocab` (all of the rows' IDs must be there)."""
    remap = pc.fill_null(pc.index_in(ids, value_set=vocab), -1).to_numpy().astype(np.int64)
    return remap[codes]
