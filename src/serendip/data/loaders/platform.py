"""The synthetic platform directory written by `serendip generate`.

`manifest.json` ({"format": "serendip-platform", "preset", "seed", counts, config}) and
`interactions.parquet`, `items.parquet`, `users.parquet`, `social.parquet` in the CLI's
formats; `truth/` (the generator's ground truth) is not part of the `Dataset`. The files go
through the same validation as any user's files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from serendip.data.dataset import Dataset
from serendip.data.loaders._files import Progress, load_files
from serendip.data.loaders._read import SourceFile
from serendip.data.loaders._report import LoadReport, OnBadRows
from serendip.errors import DataError

__all__ = ["PLATFORM_FORMAT", "is_platform_dir", "load_platform", "read_manifest"]

#: The value of "format" in the manifest of a generated platform directory.
PLATFORM_FORMAT = "serendip-platform"


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed manifest.json of a platform directory (a `DataError` if absent or invalid)."""
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise DataError("not a platform directory (no manifest.json)", file=str(Path(directory)))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON: {exc}", file=str(path)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != PLATFORM_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise DataError(
            f'expected "format": "{PLATFORM_FORMAT}", found {json.dumps(found)}',
            file=str(path),
        )
    return manifest


def is_platform_dir(directory: str | os.PathLike[str]) -> bool:
    """Whether `directory` has a manifest.json saying it is a generated platform."""
    try:
        read_manifest(directory)
    except DataError:
        return False
    return True


def load_platform(
    directory: str | os.PathLike[str],
    *,
    on_bad_rows: OnBadRows = "raise",
    report: LoadReport | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Load a generated platform directory; the Dataset is named "platform-<preset>".

    items/users/social.parquet are optional; interactions.parquet is required. With
    users.parquet, it lists every user.

    >>> ds = load_platform("data/small")  # doctest: +SKIP
    """
    root = Path(directory)
    manifest = read_manifest(root)
    interactions = root / "interactions.parquet"
    if not interactions.is_file():
        raise DataError("file not found", file=str(interactions))

    def optional(name: str) -> SourceFile | None:
        path = root / f"{name}.parquet"
        return SourceFile(path, format="parquet") if path.is_file() else None

    preset = manifest.get("preset")
    return load_files(
        SourceFile(interactions, format="parquet"),
        optional("items"),
        optional("users"),
        optional("social"),
        on_bad_rows,
        report,
        name=f"platform-{preset}" if preset else root.name,
        progress=progress,
    )
