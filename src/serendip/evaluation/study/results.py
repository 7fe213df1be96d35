"""A study's output files: results.json (everything) and results.csv (one flat line per row).

results.json:
    {"study": {"profile", "config", "code_version", "created", "seconds", "notes"},
     "rows": [row, ...],            # one per dataset x protocol x model, see `runner`
     "significance": [comparison, ...]}

results.csv: one line per row; nested keys flattened with dots (`metrics.ndcg@10`,
`cost.fit_seconds`, `slices.cold.ndcg@10`); `params` as a JSON string.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from serendip.jsonsafe import jsonable

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "flatten_row",
    "jsonable",
    "read_results",
    "rows_frame",
    "write_results",
]

#: Columns that lead results.csv, in this order; the others follow sorted.
_LEADING = (
    "dataset",
    "protocol",
    "model",
    "kind",
    "family",
    "status",
    "error",
    "n_test_users",
    "seed",
    "code_version",
    "params",
)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader (or an interrupted run) never sees half a file:
    a temporary file in the same directory, fsync'd, then renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def flatten_row(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A result row as one flat dict: nested keys joined with dots, `params` as JSON."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if not prefix and key == "params":
            out[name] = json.dumps(jsonable(value), sort_keys=True)
        elif isinstance(value, Mapping):
            out.update(flatten_row(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(jsonable(value))
        else:
            out[name] = jsonable(value)
    return out


def rows_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as a flat frame, leading columns first."""
    flat = [flatten_row(r) for r in rows]
    columns: list[str] = [c for c in _LEADING if any(c in f for f in flat)]
    rest = sorted({c for f in flat for c in f} - set(columns))
    return pd.DataFrame(flat, columns=columns + rest)


def write_results(results: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write results.json and results.csv into `out_dir` (atomically); returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / "results.json", out_dir / "results.csv"
    atomic_write_text(json_path, json.dumps(jsonable(results), indent=2) + "\n")
    atomic_write_text(csv_path, rows_frame(results.get("rows", [])).to_csv(index=False))
    return json_path, csv_path


def read_results(out_dir: Path) -> dict[str, Any]:
    """results.json of a finished study."""
    return dict(json.loads((out_dir / "results.json").read_text(encoding="utf-8")))
