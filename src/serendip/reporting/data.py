"""The report's inputs read once, and its tables as data.

A `Table` is rows of `Cell`s. A cell that shows a number read from an input file names where
(`source`: ``study:rows/3/metrics/ndcg@10``, ``scale:points/1/metrics/fit_wall_s``,
``costs:machines/vm8/usd_per_hour``, ``analysis:counts/n_users``: the file, then a JSON pointer
into it); a number computed from several of them lists them (`inputs`) and says how (`formula`).
`resolve` follows a pointer, so a test can check every cell against the files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serendip.errors import DataError

__all__ = [
    "Cell",
    "StudyView",
    "Table",
    "fmt_number",
    "load_analysis",
    "load_study",
    "resolve",
]

#: Protocol names the decision prefers, in order, when the costs file names none.
PROTOCOL_PREFERENCE = ("temporal", "leave-last", "random")


@dataclass(frozen=True, slots=True)
class Cell:
    value: float | str | None
    text: str
    source: str | None = None
    inputs: tuple[str, ...] = ()
    formula: str = ""

    @property
    def numeric(self) -> bool:
        return isinstance(self.value, (int, float)) and not isinstance(self.value, bool)


@dataclass(slots=True)
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""

    def column(self, name: str) -> list[Cell]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def find(self, first: str) -> list[Cell]:
        """The row whose first cell's text is `first`."""
        for r in self.rows:
            if r[0].text == first:
                return r
        raise KeyError(first)


def fmt_number(x: float | None, digits: int = 3, unit: str = "") -> str:
    """A number for a reader: '–' for missing, thousands separators, `digits` significant."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    ax = abs(x)
    if ax >= 1000 or (float(x).is_integer() and ax >= 1):
        s = f"{x:,.0f}"
    elif ax == 0:
        s = "0"
    else:
        s = f"{x:.{digits}g}" if ax < 1 else f"{x:,.{max(digits - len(str(int(ax))), 0)}f}"
    return f"{s} {unit}".strip() if unit else s


def text(value: str) -> Cell:
    return Cell(value, value)


def sourced(value: Any, source: str, digits: int = 3, unit: str = "") -> Cell:
    v = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return Cell(v, fmt_number(v, digits, unit), source if v is not None else None)


def derived(
    value: float | None, inputs: Sequence[str], formula: str, digits: int = 3, unit: str = ""
) -> Cell:
    return Cell(value, fmt_number(value, digits, unit), None, tuple(inputs), formula)


def money(value: float | None, inputs: Sequence[str], formula: str) -> Cell:
    return Cell(value, "–" if value is None else f"${value:,.0f}", None, tuple(inputs), formula)


def resolve(documents: Mapping[str, Any], pointer: str) -> Any:
    """The value at ``<document>:<a/b/0/c>`` in `documents` (KeyError when absent)."""
    name, _, path = pointer.partition(":")
    node: Any = documents[name]
    for part in path.split("/") if path else []:
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, Mapping):
            node = node[part]
        else:
            raise KeyError(pointer)
    return node


@dataclass(frozen=True, slots=True)
class StudyView:
    """A study's results.json, with the dataset x protocol the decision reads."""

    directory: Path
    results: Mapping[str, Any]
    metric: str
    k: int
    dataset: str
    protocol: str

    @property
    def rows(self) -> list[Mapping[str, Any]]:
        return list(self.results["rows"])

    def indexed(self, protocol: str | None = None) -> list[tuple[int, Mapping[str, Any]]]:
        """(index in results.json's rows, row) of the finished rows of the main dataset under
        `protocol` (default: the main protocol)."""
        proto = protocol or self.protocol
        return [
            (i, r)
            for i, r in enumerate(self.rows)
            if r.get("dataset") == self.dataset
            and r.get("protocol") == proto
            and r.get("status") == "ok"
        ]

    def failed(self) -> list[Mapping[str, Any]]:
        return [r for r in self.rows if r.get("status") != "ok"]

    def protocols(self) -> list[str]:
        seen: list[str] = []
        for r in self.rows:
            if r.get("dataset") == self.dataset and r.get("protocol") not in seen:
                seen.append(str(r.get("protocol")))
        return seen

    def cold_protocol(self, which: str) -> str | None:
        """The protocol named like ``cold-users`` / ``cold-items`` on the main dataset."""
        return next((p for p in self.protocols() if which in p), None)

    def significance(
        self, model: str, protocol: str | None = None
    ) -> tuple[int, Mapping[str, Any]] | None:
        proto = protocol or self.protocol
        for j, c in enumerate(self.results.get("significance") or []):
            if (
                isinstance(c, Mapping)
                and c.get("dataset") == self.dataset
                and c.get("protocol") == proto
                and c.get("model") == model
            ):
                return j, c
        return None

    def plots(self) -> list[Path]:
        folder = self.directory / "plots"
        return sorted(folder.glob("*.png")) if folder.is_dir() else []


def load_study(directory: Path | str, *, dataset: str = "", protocol: str = "") -> StudyView:
    """Read ``DIR/results.json`` as `serendip study` writes it; `DataError` when it is missing,
    not JSON, has no finished row, or `dataset`/`protocol` name nothing in it."""
    d = Path(directory)
    path = d / "results.json"
    if not path.is_file():
        raise DataError(
            "no results.json: pass the output directory of `serendip study`", file=str(d)
        )
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    if not isinstance(results, Mapping) or not isinstance(results.get("rows"), list):
        raise DataError("expected an object with a list of rows", file=str(path), field="rows")
    rows = [r for r in results["rows"] if isinstance(r, Mapping)]
    ok = [r for r in rows if r.get("status") == "ok"]
    if not ok:
        raise DataError(
            "no finished row: the study has nothing to report", file=str(path), field="rows"
        )
    for i, r in enumerate(rows):
        for key in ("dataset", "protocol", "model", "family"):
            if not isinstance(r.get(key), str):
                raise DataError(f"row {i} has no {key}", file=str(path), field=f"rows[{i}].{key}")
    study: Mapping[str, Any] = results["study"] if isinstance(results.get("study"), Mapping) else {}
    config: Mapping[str, Any] = study["config"] if isinstance(study.get("config"), Mapping) else {}
    metric = str(config.get("metric") or "ndcg@10")
    try:
        k = int(metric.split("@")[1])
    except (IndexError, ValueError):
        raise DataError(
            f"metric {metric!r} has no @K", file=str(path), field="study.config.metric"
        ) from None
    datasets = list(dict.fromkeys(str(r["dataset"]) for r in ok))
    if dataset and dataset not in datasets:
        raise DataError(
            f"dataset {dataset!r} not in the study (has: {', '.join(datasets)})", file=str(path)
        )
    ds = dataset or datasets[0]
    protos = list(dict.fromkeys(str(r["protocol"]) for r in ok if r["dataset"] == ds))
    if protocol and protocol not in protos:
        raise DataError(
            f"protocol {protocol!r} not in the study's {ds} (has: {', '.join(protos)})",
            file=str(path),
        )
    proto = protocol or next(
        (p for p in PROTOCOL_PREFERENCE if p in protos),
        next((p for p in protos if "cold" not in p), protos[0]),
    )
    return StudyView(d, results, metric, k, ds, proto)


def load_analysis(path: Path | str | None) -> dict[str, Any] | None:
    """analysis.json of `serendip analyze` (a file or its output directory); None when absent."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "analysis.json"
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", file=str(p), line=exc.lineno) from None
    return doc if isinstance(doc, dict) else None
