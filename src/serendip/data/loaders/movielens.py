"""MovieLens 100K (GroupLens, `ml-100k/`): 943 users, 1682 movies, 100,000 ratings.

- `u.data` (tab-separated, no header): user, item, rating 1-5, epoch seconds -> interactions
  with event "rating" and value = the rating.
- `u.item` (`|`-separated, latin-1, no header): id, title, release date (01-Jan-1995),
  video release date, IMDb URL, 19 genre flags -> items with the title, tags = the genres,
  category = the first genre (in `u.genre` order; "unknown" is not a genre), created_at = the
  release date where it parses.
- `u.user` (`|`-separated): id, age, gender, occupation, zip -> users with those attributes.

No social graph. Line numbers in messages are the files' own (they have no header).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from serendip.data.dataset import Dataset
from serendip.data.loaders._files import Progress, assemble
from serendip.data.loaders._parse import as_strings
from serendip.data.loaders._read import RawTable, SourceFile, read_raw
from serendip.data.loaders._report import (
    LoadReport,
    OnBadRows,
    check_on_bad_rows,
    warn_unreported,
)
from serendip.data.loaders._tables import validate_interactions, validate_items, validate_users
from serendip.errors import DataError

__all__ = ["load_movielens"]

#: The genres of u.genre, in flag order (used when u.genre is absent).
GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_EPOCH = pd.Timestamp("1970-01-01")


def load_movielens(
    directory: str | os.PathLike[str],
    *,
    on_bad_rows: OnBadRows = "raise",
    report: LoadReport | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Load a MovieLens 100K directory (u.data, u.item, u.user) as the Dataset "ml-100k".

    Users are those of u.user and items those of u.item; a rating of another user or item is
    an error (or dropped, with `on_bad_rows="drop"`). User attributes: age (int64), gender,
    occupation, zip (str).

    >>> ds = load_movielens("../shared/data/ml-100k")  # doctest: +SKIP
    >>> ds.n_users, ds.n_items, ds.n_interactions  # doctest: +SKIP
    (943, 1682, 100000)
    """
    policy = check_on_bad_rows(on_bad_rows)
    rep = report if report is not None else LoadReport()
    root = Path(directory)
    if not (root / "u.data").is_file():
        raise DataError("not a MovieLens 100K directory (no u.data)", file=str(root))

    def step(name: str) -> None:
        if progress is not None:
            progress(f"reading {name}")

    step("u.data")
    raw = read_raw(
        SourceFile(
            root / "u.data",
            columns={"value": "rating"},
            delimiter="\t",
            header=False,
            quoting=False,
            names=("user", "item", "rating", "timestamp"),
        )
    )
    inter = validate_interactions(raw, on_bad_rows=policy, report=rep, default_event="rating")

    items = None
    if (root / "u.item").is_file():
        step("u.item")
        items = validate_items(_movie_table(root), on_bad_rows=policy, report=rep)
    users = None
    if (root / "u.user").is_file():
        step("u.user")
        raw_users = read_raw(
            SourceFile(
                root / "u.user",
                delimiter="|",
                header=False,
                quoting=False,
                encoding="latin-1",
                names=("user", "age", "gender", "occupation", "zip"),
            )
        )
        users = validate_users(raw_users, on_bad_rows=policy, report=rep)
        age = pd.to_numeric(users.frame["age"], errors="coerce")
        users.frame["age"] = age.astype(np.int64) if age.notna().all() else age

    ds = assemble(
        inter, items, users, None, name="ml-100k", on_bad_rows=policy, report=rep, progress=progress
    )
    if report is None:
        warn_unreported(rep)
    return ds


def _movie_table(root: Path) -> RawTable:
    """u.item with the genre flags turned into tags/category and dates into epoch seconds."""
    genres = _genres(root)
    names = (
        "item",
        "title",
        "release",
        "video_release",
        "url",
        *(f"g{k}" for k in range(len(genres))),
    )
    raw = read_raw(
        SourceFile(
            root / "u.item",
            delimiter="|",
            header=False,
            quoting=False,
            encoding="latin-1",
            names=names,
        )
    )
    n = len(raw)
    flags = np.zeros((n, len(genres)), dtype=bool)
    for k in range(len(genres)):
        flags[:, k] = np.asarray(as_strings(raw.columns[f"g{k}"]).to_pylist()) == "1"
    usable = [k for k, g in enumerate(genres) if g.lower() != "unknown"]
    tags = [[genres[k] for k in usable if flags[r, k]] for r in range(n)]
    release = pd.to_datetime(
        pd.Series(as_strings(raw.columns["release"]).to_pylist()),
        format="%d-%b-%Y",
        errors="coerce",
    )
    created = ((release - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return raw.with_columns(
        {
            "item": raw.columns["item"],
            "title": raw.columns["title"],
            "tags": pa.chunked_array([pa.array(tags, type=pa.list_(pa.string()))]),
            "category": pa.chunked_array(
                [pa.array([t[0] if t else "" for t in tags], type=pa.string())]
            ),
            "created_at": pa.chunked_array([pa.array(created, type=pa.float64())]),
        }
    )


def _genres(root: Path) -> tuple[str, ...]:
    path = root / "u.genre"
    if not path.is_file():
        return GENRES
    pairs = []
    for line in path.read_text(encoding="latin-1").splitlines():
        name, _, code = line.strip().rpartition("|")
        if name and code.isdigit():
            pairs.append((int(code), name))
    return tuple(name for _, name in sorted(pairs)) or GENRES
