"""Reading one CSV or Parquet file into string/typed Arrow columns with line numbers.

Nothing is validated here except the file itself (exists, not empty, parseable, a header
without duplicate names); the table validators in `_tables` check the cells. Every row keeps
its 1-based position in the file (the line where it starts, the header being line 1; or the
data row number in a Parquet file) so that an error can name it.

The fast path is pyarrow's multithreaded CSV reader (tens of millions of rows in seconds).
Files it cannot read (rows with the wrong number of fields) take an exact pure-Python path;
that is slower but only malformed files need it. Blank lines, and lines of only delimiters,
are not rows and are skipped, in both paths.
"""

from __future__ import annotations

import csv
import mmap
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from serendip.errors import DataError

__all__ = ["RawTable", "SourceFile", "read_raw"]

_DELIMITERS = (",", "\t", ";", "|")
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One input file and how to read it.

    - `columns`: our column name -> the file's column name, for files whose header differs
      (`{"user": "userId", "item": "movieId"}`); unmapped columns keep their names.
    - `format`: "csv" (any delimited text) or "parquet"; None detects it from the suffix
      (.parquet/.pq) or the Parquet magic bytes.
    - `delimiter`: None sniffs it from the header (`,` tab `;` `|`; tab for .tsv).
    - `encoding`: None reads UTF-8 and falls back to latin-1 if the file is not valid UTF-8
      (so odd bytes never crash a load).
    - `quoting`: False treats `"` as an ordinary character (the HetRec .dat files do).
    - `header`: False for files without a header line; `names` then gives the columns.
    """

    path: Path
    columns: Mapping[str, str] | None = None
    format: Literal["csv", "parquet"] | None = None
    delimiter: str | None = None
    encoding: str | None = None
    quoting: bool = True
    header: bool = True
    names: tuple[str, ...] | None = None

    @classmethod
    def of(cls, spec: str | os.PathLike[str] | SourceFile) -> SourceFile:
        """A `SourceFile` from a path (read with the defaults) or an existing spec."""
        if isinstance(spec, SourceFile):
            return spec
        return cls(Path(spec))

    @property
    def label(self) -> str:
        """How messages name the file: its name, as users know it from their directory."""
        return Path(self.path).name


@dataclass(frozen=True, slots=True, eq=False)
class RawTable:
    """The cells of one file before validation.

    `columns` are Arrow chunked arrays named after our columns (the mapping applied): all
    strings for a text file, the stored types for Parquet. `positions[r]` is the 1-based line
    (unit "line") or data row (unit "row") of row r. `malformed` lists (line, n_fields) of
    text rows with the wrong number of fields, which are not in `columns`.
    `origin` maps each of our column names to the file's name for it (for messages).
    """

    file: str
    unit: Literal["line", "row"]
    columns: dict[str, pa.ChunkedArray]
    positions: np.ndarray
    header_line: int | None = None
    malformed: tuple[tuple[int, int], ...] = ()
    expected_fields: int = 0
    origin: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def rows_read(self) -> int:
        return len(self.positions) + len(self.malformed)

    def require(self, *names: str) -> None:
        """A `DataError` for the first of `names` that is not a column (cannot be dropped)."""
        for name in names:
            if name in self.columns:
                continue
            found = ", ".join(self.origin.get(c, c) for c in self.columns) or "none"
            source = self.origin.get(name, name)
            mapped = f" (mapped to '{name}')" if source != name else ""
            hint = ""
            if len(self.columns) == 1:
                only = self.origin.get(next(iter(self.columns)), next(iter(self.columns)))
                seps = [d for d in _DELIMITERS if d in only]
                if seps:
                    hint = f"; is the delimiter {seps[0]!r}?"
            raise DataError(
                f"missing required column '{source}'{mapped}; columns found: {found}{hint}",
                file=self.file,
                line=self.header_line,
            )

    def with_columns(self, columns: dict[str, pa.ChunkedArray]) -> RawTable:
        """Same rows and positions, other columns (each of length len(self))."""
        return RawTable(
            self.file,
            self.unit,
            columns,
            self.positions,
            self.header_line,
            self.malformed,
            self.expected_fields,
            {k: self.origin.get(k, k) for k in columns},
        )


def read_raw(spec: SourceFile) -> RawTable:
    """Read `spec` into a `RawTable`; a `DataError` if the file is missing, empty or unreadable."""
    path = Path(spec.path)
    if not path.exists():
        raise DataError("file not found", file=str(path))
    if path.is_dir():
        raise DataError("expected a file, found a directory", file=str(path))
    fmt = spec.format or _detect_format(path)
    table = _read_parquet(spec, path) if fmt == "parquet" else _read_csv(spec, path)
    return _apply_mapping(table, spec.columns)


def _detect_format(path: Path) -> Literal["csv", "parquet"]:
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return "parquet"
    with open(path, "rb") as fh:
        return "parquet" if fh.read(4) == b"PAR1" else "csv"


def _apply_mapping(table: RawTable, mapping: Mapping[str, str] | None) -> RawTable:
    if not mapping:
        return table
    inverse = {src: ours for ours, src in mapping.items()}
    columns: dict[str, pa.ChunkedArray] = {}
    origin: dict[str, str] = {}
    for name, col in table.columns.items():
        if name in inverse:
            ours = inverse[name]
        elif name in mapping:
            continue  # our name is mapped to another column of the file, which wins
        else:
            ours = name
        columns[ours] = col
        origin[ours] = name
    for ours, src in mapping.items():
        origin.setdefault(ours, src)
    return RawTable(
        table.file,
        table.unit,
        columns,
        table.positions,
        table.header_line,
        table.malformed,
        table.expected_fields,
        origin,
    )


# --------------------------------------------------------------------------- Parquet
def _read_parquet(spec: SourceFile, path: Path) -> RawTable:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read as Parquet: {exc}", file=spec.label) from None
    columns = {str(name).strip(): table.column(k) for k, name in enumerate(table.column_names)}
    positions = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return RawTable(spec.label, "row", columns, positions, None, (), len(columns))


# --------------------------------------------------------------------------- CSV
def _read_csv(spec: SourceFile, path: Path) -> RawTable:
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        raise DataError("the file is empty (expected a header line and data rows)", file=spec.label)
    encoding = spec.encoding or ("utf-8" if _decodes(head, "utf-8") else "latin-1")
    delimiter = spec.delimiter or _sniff_delimiter(path, head, encoding)
    if spec.header:
        names = _header_names(spec, head, encoding, delimiter)
    elif spec.names:
        names = list(spec.names)
    else:
        raise DataError("a file without a header needs column names", file=spec.label)
    first_line = 2 if spec.header else 1
    quotes = _has_quote(path, spec.quoting)
    # Blank lines are read as (empty) rows so that row k stays on line k + first_line.
    try:
        return _read_csv_arrow(spec, path, names, delimiter, encoding, quotes, first_line)
    except _NeedsExactPath:
        pass
    except _NotUtf8:
        if spec.encoding is None and encoding == "utf-8":
            encoding = "latin-1"
            try:
                return _read_csv_arrow(spec, path, names, delimiter, encoding, quotes, first_line)
            except _NeedsExactPath:
                pass
    return _read_csv_exact(spec, path, names, delimiter, encoding)


class _NeedsExactPath(Exception):
    pass


class _NotUtf8(Exception):
    pass


def _decodes(data: bytes, encoding: str) -> bool:
    # The 64 KiB head may end inside a multi-byte character: only judge complete lines.
    cut = data.rfind(b"\n")
    try:
        (data[: cut + 1] if cut > 0 else data).decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _first_line(head: bytes, encoding: str) -> str:
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    text = line.decode(encoding, errors="replace")
    return text.removeprefix("\ufeff")


def _sniff_delimiter(path: Path, head: bytes, encoding: str) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    line = _first_line(head, encoding)
    counts = [line.count(d) for d in _DELIMITERS]
    best = max(range(len(_DELIMITERS)), key=lambda k: (counts[k], -k))
    return _DELIMITERS[best] if counts[best] else ","


def _header_names(spec: SourceFile, head: bytes, encoding: str, delimiter: str) -> list[str]:
    line = _first_line(head, encoding)
    fields = next(
        csv.reader(
            [line],
            delimiter=delimiter,
            quoting=csv.QUOTE_MINIMAL if spec.quoting else csv.QUOTE_NONE,
        ),
        [],
    )
    names = [f.strip() for f in fields]
    seen: set[str] = set()
    for k, name in enumerate(names):
        if not name:
            names[k] = name = f"column_{k + 1}"
        if name in seen:
            raise DataError(
                f"duplicate column name '{name}' in the header", file=spec.label, line=1
            )
        seen.add(name)
    return names


def _has_quote(path: Path, quoting: bool) -> bool:
    """Whether a quote character occurs (then values may span lines); a memchr-speed scan."""
    if not quoting:
        return False
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.find(b'"') >= 0


def _read_csv_arrow(
    spec: SourceFile,
    path: Path,
    names: list[str],
    delimiter: str,
    encoding: str,
    quotes: bool,
    first_line: int,
) -> RawTable:
    """pyarrow's reader, multithreaded; for a file with rows of the wrong number of fields,
    a second single-threaded pass that skips them and learns their record numbers."""
    try:
        return _arrow_pass(spec, path, names, delimiter, encoding, quotes, first_line, False)
    except _NeedsExactPath:
        return _arrow_pass(spec, path, names, delimiter, encoding, quotes, first_line, True)


def _arrow_pass(
    spec: SourceFile,
    path: Path,
    names: list[str],
    delimiter: str,
    encoding: str,
    quotes: bool,
    first_line: int,
    skip_invalid: bool,
) -> RawTable:
    invalid: list[tuple[int, str, int]] = []  # (record number, text, number of fields)

    def skip(row: pacsv.InvalidRow) -> str:
        if row.number is None:  # only known when reading on one thread
            raise _NeedsExactPath
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    read = pacsv.ReadOptions(
        column_names=names,
        skip_rows=1 if spec.header else 0,
        encoding="utf8" if encoding.lower().replace("-", "") == "utf8" else encoding,
        use_threads=not skip_invalid,
    )
    parse = pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char='"' if spec.quoting else False,
        newlines_in_values=quotes,
        # Blank lines stay (empty) rows so that every record keeps its number; see below.
        ignore_empty_lines=False,
        invalid_row_handler=skip if skip_invalid else None,
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(path, read, parse, convert)
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "UTF8" in msg or "UTF-8" in msg:
            raise _NotUtf8 from None
        if not skip_invalid and ("CSV parse error" in msg or "Expected" in msg):
            raise _NeedsExactPath from None
        raise DataError(f"cannot read as CSV: {msg}", file=spec.label) from None
    n = table.num_rows
    # Records in file order: the kept rows and the skipped invalid ones.
    total = n + len(invalid)
    first_record = 2 if spec.header else 1  # pyarrow numbers records from 1, header included
    bad = np.asarray([number - first_record for number, _, _ in invalid], dtype=np.int64)
    kept = np.arange(total, dtype=np.int64)
    if len(bad):
        kept = np.delete(kept, bad)
    starts = np.arange(total, dtype=np.int64) + first_line
    if quotes and total:
        # A quoted value may span lines: record r starts after the extra newlines of those
        # before it.
        extra = np.zeros(total, dtype=np.int64)
        for col in table.columns:
            extra[kept] += pc.fill_null(pc.count_substring(col, "\n"), 0).to_numpy()
        for k, (_, text, _) in zip(bad, invalid, strict=True):
            extra[k] = text.count("\n")
        starts += np.concatenate([[0], np.cumsum(extra)[:-1]])
    positions = starts[kept]
    malformed = tuple(
        (int(starts[k]), n_fields) for k, (_, _, n_fields) in zip(bad, invalid, strict=True)
    )
    if n:
        # A row whose every cell is empty (a blank line, or only delimiters) carries no data
        # and is not a row; dropping it here keeps every other row's line number.
        blank = np.asarray(pc.equal(table.column(0), "").to_numpy(zero_copy_only=False), dtype=bool)
        if blank.any():
            idx = np.flatnonzero(blank)
            for col in table.columns[1:]:
                cells = pc.utf8_trim_whitespace(col.take(pa.array(idx)))
                blank[idx] &= np.asarray(
                    pc.equal(cells, "").to_numpy(zero_copy_only=False), dtype=bool
                )
            if blank.any():
                table, positions = table.filter(pa.array(~blank)), positions[~blank]
    columns = {n_: table.column(k) for k, n_ in enumerate(names)}
    return RawTable(
        spec.label,
        "line",
        columns,
        positions,
        1 if spec.header else None,
        malformed,
        len(names),
    )


def _read_csv_exact(
    spec: SourceFile, path: Path, names: list[str], delimiter: str, encoding: str
) -> RawTable:
    try:
        return _read_csv_python(spec, path, names, delimiter, encoding)
    except UnicodeDecodeError:
        if spec.encoding is not None:
            raise DataError(f"cannot decode the file as {spec.encoding}", file=spec.label) from None
        return _read_csv_python(spec, path, names, delimiter, "latin-1")


def _read_csv_python(
    spec: SourceFile, path: Path, names: list[str], delimiter: str, encoding: str
) -> RawTable:
    ncol = len(names)
    cells: list[list[str]] = []
    positions: list[int] = []
    malformed: list[tuple[int, int]] = []
    enc = "utf-8-sig" if encoding.lower().replace("-", "") == "utf8" else encoding
    with open(path, newline="", encoding=enc) as fh:
        reader = csv.reader(
            fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if spec.quoting else csv.QUOTE_NONE
        )
        try:
            if spec.header:
                next(reader, None)
            prev = reader.line_num
            for rec in reader:
                start, prev = prev + 1, reader.line_num
                if all(c == "" for c in rec) and len(rec) in (0, 1, ncol):
                    continue  # a blank line (or only delimiters) is not a row
                if len(rec) != ncol:
                    malformed.append((start, len(rec)))
                    continue
                cells.append(rec)
                positions.append(start)
        except csv.Error as exc:
            raise DataError(
                f"cannot parse the line: {exc}", file=spec.label, line=reader.line_num
            ) from None
    by_column = list(zip(*cells, strict=True)) if cells else [()] * ncol
    columns = {
        name: pa.chunked_array([pa.array(list(values), type=pa.string())])
        for name, values in zip(names, by_column, strict=True)
    }
    return RawTable(
        spec.label,
        "line",
        columns,
        np.asarray(positions, dtype=np.int64),
        1 if spec.header else None,
        tuple(malformed),
        ncol,
    )
