"""The Parquet export of a `Dataset` (or of the store, through `Store.to_dataset`) that the Spark
jobs read, and the way back to the same `Dataset`.

Layout of an export directory (every ID column holds the external string ID; `*_idx` columns are
the dense indices of the dataset's vocabularies, so Spark joins and solves on integers and the
artifact written afterwards shares the vocabularies exactly):

- `interactions.parquet`: user, item, user_idx (int32), item_idx (int32), timestamp (float64
  epoch seconds, null = unknown), event (string, one of `EVENT_TYPES`), value (float32, null =
  none), weight (float32: the event's default weight, e.g. like 4, share 6; the "events"
  weighting before per-pair sums);
- `items.parquet`: item_idx, item, title, text, tags ("a|b"), category, author, created_at;
- `users.parquet`: user_idx, user, created_at, interests ("a|b"), private;
- `social.parquet`: follower, followee, created_at;
- `export.json`: format, version, name and the three sizes (checked on read).

Row groups of `ROW_GROUP` rows let Spark split the interactions across tasks. On a cluster the
directory must sit where every executor reads it (HDFS, S3, a shared mount).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serendip.data.dataset import DEFAULT_EVENT_WEIGHTS, EVENT_TYPES, Dataset
from serendip.errors import DataError
from serendip.models.artifacts import atomic_directory

__all__ = ["EXPORT_FORMAT", "ParquetExport", "export_dataset", "read_export"]

EXPORT_FORMAT = "serendip-parquet-export"
_VERSION = 1
#: Rows per Parquet row group (Spark reads one row group per task at most).
ROW_GROUP = 1_000_000
_FILES = ("interactions.parquet", "items.parquet", "users.parquet", "social.parquet")


@dataclass(frozen=True, slots=True)
class ParquetExport:
    """An export directory and its sizes. `path(name)` is the location of one of its tables
    ("interactions", "items", "users", "social") as a string Spark can read."""

    directory: Path
    name: str
    n_users: int
    n_items: int
    n_interactions: int

    def path(self, table: str) -> str:
        if table not in ("interactions", "items", "users", "social"):
            raise DataError(f"an export has no table '{table}'")
        return str(self.directory / f"{table}.parquet")


def export_dataset(dataset: Dataset, directory: str | Path) -> ParquetExport:
    """Write `dataset` as a Parquet export (atomically: a reader sees the old directory or the
    complete new one). Cost: one pass over the interactions; memory about twice the columns.

    >>> export_dataset(Dataset.from_frames(frame), "work/export")  # doctest: +SKIP
    ParquetExport(directory=PosixPath('work/export'), name='dataset', n_users=..., ...)
    """
    directory = Path(directory)
    it = dataset.interactions
    event_weights = np.array([DEFAULT_EVENT_WEIGHTS[e] for e in EVENT_TYPES], dtype=np.float32)
    ts = it.timestamp.astype(np.float64)
    val = it.value.astype(np.float32)
    interactions = pa.table(
        {
            "user": pa.array(dataset.users.lookup(it.user).astype(str), pa.string()),
            "item": pa.array(dataset.items.lookup(it.item).astype(str), pa.string()),
            "user_idx": pa.array(it.user.astype(np.int32)),
            "item_idx": pa.array(it.item.astype(np.int32)),
            "timestamp": pa.array(ts, mask=np.isnan(ts)),
            "event": pa.array(np.asarray(EVENT_TYPES, dtype=object)[it.event], pa.string()),
            "value": pa.array(val, mask=np.isnan(val)),
            "weight": pa.array(event_weights[it.event]),
        }
    )
    items = pa.Table.from_pandas(
        dataset.items_frame().assign(item_idx=np.arange(dataset.n_items, dtype=np.int32)),
        preserve_index=False,
    )
    meta = dataset.user_meta
    users = pa.table(
        {
            "user_idx": pa.array(np.arange(dataset.n_users, dtype=np.int32)),
            "user": pa.array(dataset.users.ids.astype(str), pa.string()),
            "created_at": pa.array(meta.created_at.astype(np.float64)),
            "interests": pa.array(["|".join(map(str, t)) for t in meta.interests], pa.string()),
            "private": pa.array(meta.private.astype(bool)),
        }
    )
    social = pa.Table.from_pandas(dataset.social_frame(), preserve_index=False)
    with atomic_directory(directory) as tmp:
        pq.write_table(interactions, tmp / "interactions.parquet", row_group_size=ROW_GROUP)
        pq.write_table(items, tmp / "items.parquet")
        pq.write_table(users, tmp / "users.parquet")
        pq.write_table(social, tmp / "social.parquet")
        (tmp / "export.json").write_text(
            json.dumps(
                {
                    "format": EXPORT_FORMAT,
                    "version": _VERSION,
                    "name": dataset.name,
                    "n_users": dataset.n_users,
                    "n_items": dataset.n_items,
                    "n_interactions": dataset.n_interactions,
                },
                indent=2,
            )
        )
    return open_export(directory)


def open_export(directory: str | Path) -> ParquetExport:
    """The export at `directory`, checked for its manifest and tables (`DataError` if not)."""
    directory = Path(directory)
    manifest = directory / "export.json"
    if not manifest.is_file():
        raise DataError("not a Serendip Parquet export (no export.json)", file=str(directory))
    try:
        doc = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", file=str(manifest), line=exc.lineno) from None
    if doc.get("format") != EXPORT_FORMAT or int(doc.get("version", -1)) > _VERSION:
        raise DataError(
            f"expected format '{EXPORT_FORMAT}' version <= {_VERSION}, got "
            f"'{doc.get('format')}' version {doc.get('version')}",
            file=str(manifest),
        )
    missing = [f for f in _FILES if not (directory / f).is_file()]
    if missing:
        raise DataError(f"export lacks {', '.join(missing)}", file=str(directory))
    return ParquetExport(
        directory,
        str(doc.get("name", "dataset")),
        int(doc["n_users"]),
        int(doc["n_items"]),
        int(doc["n_interactions"]),
    )


def read_export(directory: str | Path) -> Dataset:
    """The `Dataset` an export was written from: same vocabularies (in index order), the same
    interactions, item and user metadata and social graph (extra user attributes are not
    exported). Read on the driver with pyarrow, no Spark."""
    export = open_export(directory)
    inter = pq.read_table(
        export.path("interactions"), columns=["user", "item", "timestamp", "event", "value"]
    ).to_pandas()
    items = pq.read_table(export.path("items")).to_pandas().sort_values("item_idx")
    users = pq.read_table(export.path("users")).to_pandas().sort_values("user_idx")
    social = pq.read_table(export.path("social")).to_pandas()
    for frame, n, what in ((items, export.n_items, "items"), (users, export.n_users, "users")):
        idx = frame[f"{what[:-1]}_idx"].to_numpy()
        if len(frame) != n or not np.array_equal(idx, np.arange(n)):
            raise DataError(
                f"{what}.parquet holds {len(frame)} rows with indices other than 0..{n - 1}",
                file=str(export.directory),
            )
    inter["value"] = pd.to_numeric(inter["value"], errors="coerce").astype("float64")
    dataset = Dataset.from_frames(
        inter,
        items.drop(columns=["item_idx"]).reset_index(drop=True),
        users.drop(columns=["user_idx"]).reset_index(drop=True),
        social,
        name=export.name,
    )
    if dataset.n_interactions != export.n_interactions:
        raise DataError(
            f"interactions.parquet holds {dataset.n_interactions} rows, export.json says "
            f"{export.n_interactions}",
            file=str(export.directory),
        )
    return dataset
