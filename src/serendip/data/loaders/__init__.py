"""Data loaders: the CLI's CSV/Parquet files, MovieLens 100K, Last.fm HetRec 2011 and the
synthetic platform, all validated into a `Dataset`.

Every malformed row either stops the load with a `DataError` naming file, line, field and
problem, or (`on_bad_rows="drop"`) is dropped and counted in a `LoadReport`.

>>> from serendip.data.loaders import LoadReport, format_load_report, load_source
>>> report = LoadReport()
>>> ds = load_source("events.csv", on_bad_rows="drop", report=report)  # doctest: +SKIP
>>> print("\\n".join(format_load_report(report)))  # doctest: +SKIP
"""

from serendip.data.loaders._files import (
    FileArg,
    Progress,
    load_files,
    read_interactions,
    read_items,
    read_social,
    read_users,
)
from serendip.data.loaders._read import SourceFile
from serendip.data.loaders._report import (
    BadRows,
    DroppedRowsWarning,
    FileStats,
    LoadReport,
    OnBadRows,
    format_load_report,
)
from serendip.data.loaders.lastfm import load_lastfm
from serendip.data.loaders.movielens import load_movielens
from serendip.data.loaders.platform import (
    PLATFORM_FORMAT,
    is_platform_dir,
    load_platform,
    read_manifest,
)
from serendip.data.loaders.source import FORMATS, SourceFormat, detect_format, load_source

__all__ = [
    "FORMATS",
    "PLATFORM_FORMAT",
    "BadRows",
    "DroppedRowsWarning",
    "FileArg",
    "FileStats",
    "LoadReport",
    "OnBadRows",
    "Progress",
    "SourceFile",
    "SourceFormat",
    "detect_format",
    "format_load_report",
    "is_platform_dir",
    "load_files",
    "load_lastfm",
    "load_movielens",
    "load_platform",
    "load_source",
    "read_interactions",
    "read_items",
    "read_manifest",
    "read_social",
    "read_users",
]
