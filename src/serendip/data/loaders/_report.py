"""What loading did to the input: rows read, kept and dropped, per file and per problem.

With `on_bad_rows="drop"` a loader drops malformed rows instead of raising; every drop is
recorded in a `LoadReport` so that nothing disappears silently. The CLI prints
`format_load_report(report)`; a library caller can inspect `report.bad_rows`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

from serendip.errors import ConfigError

__all__ = [
    "BadRows",
    "DroppedRowsWarning",
    "FileStats",
    "LoadReport",
    "OnBadRows",
    "format_load_report",
]

#: What a loader does with a malformed row: stop with a `DataError`, or drop it and count it.
OnBadRows = Literal["raise", "drop"]

#: How many example line numbers a `BadRows` record keeps.
MAX_EXAMPLES = 5


class DroppedRowsWarning(UserWarning):
    """Rows were dropped (`on_bad_rows="drop"`) and the caller passed no `LoadReport` to see them."""


@dataclass(frozen=True, slots=True)
class BadRows:
    """Rows of one file dropped for one problem.

    `examples` are the first few 1-based positions of such rows: line numbers in a text file
    (the header is line 1) or row numbers in a Parquet file (`unit` says which).
    A dropped row is counted under the first problem found in it, so counts add up to the
    number of dropped rows.
    """

    file: str
    problem: str
    field: str | None
    count: int
    examples: tuple[int, ...]
    unit: Literal["line", "row"] = "line"


@dataclass(frozen=True, slots=True)
class FileStats:
    """Rows of one file: data rows read (the header and blank lines are not rows) and kept."""

    file: str
    rows_read: int
    rows_kept: int

    @property
    def rows_dropped(self) -> int:
        return self.rows_read - self.rows_kept


class LoadReport:
    """Collects, across the files of one load, how many rows were read, kept and dropped why.

    Pass an empty one to a loader (`load_source(..., on_bad_rows="drop", report=r)`) and read
    it afterwards. The records it holds are frozen; only loaders append to it.

    >>> r = LoadReport()
    >>> r.n_dropped, r.files, r.bad_rows
    (0, (), ())
    """

    __slots__ = ("_bad", "_files")

    def __init__(self) -> None:
        self._files: list[FileStats] = []
        self._bad: list[BadRows] = []

    def __repr__(self) -> str:
        return f"LoadReport({len(self._files)} files, {self.n_dropped} rows dropped)"

    @property
    def files(self) -> tuple[FileStats, ...]:
        return tuple(self._files)

    @property
    def bad_rows(self) -> tuple[BadRows, ...]:
        return tuple(self._bad)

    @property
    def n_dropped(self) -> int:
        """Rows dropped over all files."""
        return sum(b.count for b in self._bad)

    def dropped(self, file: str | None = None, problem: str | None = None) -> int:
        """Rows dropped, optionally only those of one file and/or one problem."""
        return sum(
            b.count
            for b in self._bad
            if (file is None or b.file == file) and (problem is None or b.problem == problem)
        )

    def add_bad_rows(self, record: BadRows) -> None:
        """Record dropped rows (called by loaders); merges with a record of the same kind."""
        for k, old in enumerate(self._bad):
            if (old.file, old.problem, old.field, old.unit) == (
                record.file,
                record.problem,
                record.field,
                record.unit,
            ):
                examples = tuple(sorted({*old.examples, *record.examples}))[:MAX_EXAMPLES]
                self._bad[k] = BadRows(
                    old.file, old.problem, old.field, old.count + record.count, examples, old.unit
                )
                return
        self._bad.append(record)

    def add_file(self, stats: FileStats) -> None:
        """Record the rows of one file (called by loaders once the file is validated)."""
        for k, old in enumerate(self._files):
            if old.file == stats.file:
                # A file checked in two steps (own rows, then references to other files).
                self._files[k] = FileStats(old.file, old.rows_read, stats.rows_kept)
                return
        self._files.append(stats)


def check_on_bad_rows(on_bad_rows: str) -> OnBadRows:
    """The policy, or a `ConfigError` naming the valid ones."""
    if on_bad_rows not in ("raise", "drop"):
        raise ConfigError(f"on_bad_rows must be 'raise' or 'drop', got {on_bad_rows!r}")
    return on_bad_rows  # type: ignore[return-value]


def format_load_report(report: LoadReport, *, max_examples: int = 3) -> list[str]:
    """The report as lines of plain text for a terminal, one per file and one per problem.

    >>> r = LoadReport()
    >>> r.add_file(FileStats("interactions.csv", 10, 8))
    >>> r.add_bad_rows(BadRows("interactions.csv", "unparsable timestamp", "timestamp", 2, (4, 7)))
    >>> print("\\n".join(format_load_report(r)))
    interactions.csv: 10 rows read, 8 kept, 2 dropped
      2 rows: unparsable timestamp (field 'timestamp'), lines 4, 7
    """
    out: list[str] = []
    files = list(report.files)
    # Files with drops but no stats (a loader stopped early) still get their lines.
    for name in dict.fromkeys(b.file for b in report.bad_rows):
        if all(f.file != name for f in files):
            files.append(FileStats(name, 0, 0))
    for f in files:
        if f.rows_read == 0 and f.rows_kept == 0 and report.dropped(f.file):
            out.append(f"{f.file}: {report.dropped(f.file):,} dropped")
        elif f.rows_dropped:
            out.append(
                f"{f.file}: {f.rows_read:,} rows read, {f.rows_kept:,} kept, {f.rows_dropped:,} dropped"
            )
        else:
            out.append(f"{f.file}: {f.rows_read:,} rows read, none dropped")
        for b in report.bad_rows:
            if b.file != f.file:
                continue
            field = f" (field '{b.field}')" if b.field else ""
            shown = b.examples[:max_examples]
            where = f"{b.unit}s" if len(shown) > 1 else b.unit
            more = ", ..." if b.count > len(shown) else ""
            noun = "row" if b.count == 1 else "rows"
            out.append(
                f"  {b.count:,} {noun}: {b.problem}{field}, {where} {', '.join(map(str, shown))}{more}"
            )
    return out


def warn_unreported(report: LoadReport) -> None:
    """Never drop silently: without a caller's report, dropped rows become a warning."""
    if report.n_dropped:
        lines = format_load_report(report)
        warnings.warn(
            "dropped malformed rows (pass report=LoadReport() to inspect them):\n"
            + "\n".join(lines),
            DroppedRowsWarning,
            stacklevel=3,
        )
