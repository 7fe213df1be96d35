"""`load_source`: one entry point that tells a data source's format and loads it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Literal

from serendip.data.dataset import Dataset
from serendip.data.loaders._files import FileArg, Progress, load_files
from serendip.data.loaders._read import SourceFile
from serendip.data.loaders._report import LoadReport, OnBadRows, check_on_bad_rows
from serendip.data.loaders.lastfm import load_lastfm
from serendip.data.loaders.movielens import load_movielens
from serendip.data.loaders.platform import is_platform_dir, load_platform
from serendip.errors import DataError

__all__ = ["FORMATS", "SourceFormat", "detect_format", "load_source"]

SourceFormat = Literal["platform", "movielens", "lastfm", "csv", "parquet"]
#: The formats `load_source` reads.
FORMATS: tuple[str, ...] = ("platform", "movielens", "lastfm", "csv", "parquet")
_DIRECTORY_FORMATS = ("platform", "movielens", "lastfm")


def detect_format(path: str | os.PathLike[str]) -> SourceFormat:
    """The format of a source: a directory written by `generate` (manifest.json), a
    MovieLens 100K directory (u.data), a Last.fm HetRec directory (user_artists.dat), a
    directory holding interactions.csv/.parquet, or an interactions file (Parquet by suffix
    or magic bytes, else CSV)."""
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", file=str(p))
    if p.is_dir():
        if is_platform_dir(p):
            return "platform"
        if (p / "u.data").is_file():
            return "movielens"
        if (p / "user_artists.dat").is_file():
            return "lastfm"
        if (p / "interactions.parquet").is_file():
            return "parquet"
        if (p / "interactions.csv").is_file():
            return "csv"
        raise DataError(
            "cannot tell the format of this directory: expected manifest.json (platform), "
            "u.data (MovieLens 100K), user_artists.dat (Last.fm HetRec) or "
            f"interactions.csv/.parquet; valid formats: {', '.join(FORMATS)}",
            file=str(p),
        )
    if p.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    with open(p, "rb") as fh:
        return "parquet" if fh.read(4) == b"PAR1" else "csv"


def load_source(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    items: FileArg | None = None,
    users: FileArg | None = None,
    social: FileArg | None = None,
    on_bad_rows: OnBadRows = "raise",
    undirected_social: bool = False,
    report: LoadReport | None = None,
    name: str | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Load any supported source into a validated `Dataset`.

    `path` is a directory (platform, MovieLens 100K, Last.fm HetRec, or one holding
    interactions/items/users/social .csv or .parquet files) or an interactions file.
    `format` (one of `FORMATS`) overrides detection. `items`, `users` and `social` name
    further files of the "csv"/"parquet" formats (in a directory, the files of those names
    are found by themselves). `on_bad_rows`, `report` and `undirected_social` are those of
    `load_files`.

    >>> ds = load_source("../shared/data/ml-100k")  # doctest: +SKIP
    >>> ds = load_source("events.csv", items="items.csv", on_bad_rows="drop", report=r)  # doctest: +SKIP
    """
    check_on_bad_rows(on_bad_rows)
    if format is not None and format not in FORMATS:
        raise DataError(f"unknown format {format!r}; valid formats: {', '.join(FORMATS)}")
    fmt = format or detect_format(path)
    p = Path(path)
    if fmt in _DIRECTORY_FORMATS:
        extra = [
            k for k, v in (("items", items), ("users", users), ("social", social)) if v is not None
        ]
        if extra:
            raise DataError(
                f"{extra[0]}= only applies to the csv and parquet formats, not to {fmt}",
                file=str(p),
            )
        if not p.is_dir():
            raise DataError(f"the {fmt} format expects a directory", file=str(p))
        if fmt == "platform":
            ds = load_platform(p, on_bad_rows=on_bad_rows, report=report, progress=progress)
        elif fmt == "movielens":
            ds = load_movielens(p, on_bad_rows=on_bad_rows, report=report, progress=progress)
        else:
            ds = load_lastfm(p, on_bad_rows=on_bad_rows, report=report, progress=progress)
        return ds if name is None else _renamed(ds, name)
    file_format: Literal["csv", "parquet"] = "parquet" if fmt == "parquet" else "csv"
    if p.is_dir():
        suffix = ".parquet" if file_format == "parquet" else ".csv"
        interactions: FileArg = SourceFile(p / f"interactions{suffix}", format=file_format)

        def sibling(given: FileArg | None, stem: str) -> FileArg | None:
            if given is not None:
                return given
            candidate = p / f"{stem}{suffix}"
            return SourceFile(candidate, format=file_format) if candidate.is_file() else None

        items, users, social = (
            sibling(items, "items"),
            sibling(users, "users"),
            sibling(social, "social"),
        )
        default_name = p.name
    else:
        interactions = SourceFile(p, format=file_format)
        default_name = p.stem
    return load_files(
        interactions,
        items,
        users,
        social,
        on_bad_rows,
        report,
        undirected_social=undirected_social,
        name=name or default_name,
        progress=progress,
    )


def _renamed(ds: Dataset, name: str) -> Dataset:
    return replace(ds, name=name)
