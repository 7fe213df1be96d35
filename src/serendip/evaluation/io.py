"""Files of the evaluation commands: reading recommendation lists and train/test files, writing
a split.

Interaction, item and social files are read with `serendip.data.loaders` (validation, error
messages naming file, line and field); recommendation files here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serendip.data.dataset import Dataset
from serendip.data.vocabulary import Vocabulary
from serendip.errors import DataError
from serendip.evaluation.evaluate import TopKLists, recs_from_frame
from serendip.evaluation.splits import Split

__all__ = [
    "load_dataset",
    "load_interactions",
    "load_train_test",
    "read_recommendations",
    "write_split",
]

_PARQUET = (".parquet", ".pq")


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV (every column as str, empty cells as "") or Parquet file as a frame."""
    try:
        if path.suffix.lower() in _PARQUET:
            return pd.read_parquet(path)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty; expected a header line", file=str(path)) from None
    except pd.errors.ParserError as exc:
        raise DataError(str(exc).strip().replace("\n", " "), file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", file=str(path)) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def load_interactions(
    path: str | Path, *, items: str | Path | None = None, social: str | Path | None = None
) -> Dataset:
    """One interactions file (CSV or Parquet, the CLI's format) with optional items and social files."""
    from serendip.data.loaders import load_files

    return load_files(path, items=items, social=social)


def load_dataset(source: str | Path) -> Dataset:
    """Any source `serendip.data.loaders.load_source` understands (directory or file)."""
    from serendip.data.loaders import load_source

    return load_source(source)


def load_train_test(
    train: str | Path,
    test: str | Path,
    *,
    items: str | Path | None = None,
    social: str | Path | None = None,
    fold_in: str | Path | None = None,
) -> Split:
    """Train and test interaction files as one `Split` sharing one vocabulary.

    The files (and the fold-in history of a cold-user split, when given) are loaded separately,
    then rebuilt as one Dataset (users and items of all;
    item metadata and the social graph from `items` / `social`) and divided again by row, so
    an item or user that only the test file names (cold items, cold users) has an index too.
    """
    tr = load_interactions(train, items=items, social=social)
    te = load_interactions(test)
    parts = [tr.interactions_frame(), te.interactions_frame()]
    if fold_in is not None:
        parts.append(load_interactions(fold_in).interactions_frame())
    frame = pd.concat(parts, ignore_index=True)
    union = Dataset.from_frames(
        frame,
        tr.items_frame() if items is not None else None,
        None,
        tr.social_frame() if tr.has_social else None,
        name=Path(train).stem,
    )
    row = np.arange(len(frame))
    n_train, n_test = tr.n_interactions, te.n_interactions
    return Split(
        train=union.filter_interactions(row < n_train, name=f"{union.name}:train"),
        test=union.filter_interactions(
            (row >= n_train) & (row < n_train + n_test), name=f"{union.name}:test"
        ),
        kind="files",
        params={
            "train": str(train),
            "test": str(test),
            "items": str(items) if items else None,
            "social": str(social) if social else None,
            "fold_in": str(fold_in) if fold_in else None,
        },
        fold_in=(
            union.filter_interactions(row >= n_train + n_test, name=f"{union.name}:fold_in")
            if fold_in is not None
            else None
        ),
    )


def read_recommendations(
    path: str | Path, users: Vocabulary, items: Vocabulary, *, k: int | None = None
) -> TopKLists:
    """A recommendations file `user,item,rank[,score]` (CSV or Parquet) as index lists.

    Errors name the file, line and field (see `recs_from_frame`).
    """
    p = Path(path)
    frame = _read_table(p)
    return recs_from_frame(
        frame, users, items, source=str(p), line_numbers=p.suffix.lower() not in _PARQUET, k=k
    )


# --------------------------------------------------------------------------- writing
def _epoch_column(values: np.ndarray) -> pd.Series:
    """Epoch seconds as integers when they all are (no '.0' in the CSV); NaN -> empty."""
    s = pd.Series(values, dtype="float64")
    finite = s.dropna()
    if len(finite) and (finite == np.floor(finite)).all():
        return s.round().astype("Int64")
    return s


def interactions_table(ds: Dataset) -> pd.DataFrame:
    """Interactions in the CLI's file format: user,item[,timestamp][,event][,value].

    Optional columns that carry nothing (no timestamps, only "view" events, no values) are left out.
    """
    frame = ds.interactions_frame()
    it = ds.interactions
    out = frame[["user", "item"]].copy()
    if not np.isnan(it.timestamp).all():
        out["timestamp"] = _epoch_column(it.timestamp).array
    if (it.event != 0).any():
        out["event"] = frame["event"]
    if not np.isnan(it.value).all():
        out["value"] = frame["value"]
    return out


def write_split(split: Split, out: str | Path) -> dict[str, Any]:
    """Write train.csv, test.csv (fold_in.csv for cold users), items.csv / social.csv when the
    data has item metadata / a social graph, and split.json (kind, parameters, counts, files).

    Returns the content of split.json.
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    parts: list[tuple[str, Dataset]] = [("train", split.train), ("test", split.test)]
    if split.fold_in is not None:
        parts.append(("fold_in", split.fold_in))
    for name, ds in parts:
        interactions_table(ds).to_csv(out_dir / f"{name}.csv", index=False)
        files[name] = f"{name}.csv"
    ds = split.train
    meta = ds.item_meta
    has_meta = (
        any(bool(t) for t in meta.tags)
        or any((col != "").any() for col in (meta.title, meta.text, meta.category, meta.author))
        or not np.isnan(meta.created_at).all()
    )
    if has_meta:
        items = ds.items_frame()
        items["created_at"] = _epoch_column(meta.created_at).array
        items.to_csv(out_dir / "items.csv", index=False)
        files["items"] = "items.csv"
    if ds.has_social:
        social = ds.social_frame()
        if np.isnan(ds.social.created_at).all():
            social = social.drop(columns="created_at")
        else:
            social["created_at"] = _epoch_column(ds.social.created_at).array
        social.to_csv(out_dir / "social.csv", index=False)
        files["social"] = "social.csv"
    summary = {"source": ds.name.removesuffix(":train"), **split.summary(), "files": files}
    (out_dir / "split.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
