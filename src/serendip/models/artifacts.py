"""The one artifact format of a fitted model: a directory with `manifest.json`, the two
vocabularies as JSON lines-free `.npy` string arrays, and NumPy/SciPy arrays. No pickle anywhere:
arrays load with `allow_pickle=False`, so an artifact from elsewhere cannot run code."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from serendip.data.vocabulary import Vocabulary
from serendip.errors import SerendipError

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "Artifact",
    "atomic_directory",
    "read_artifact",
    "write_artifact",
]

ARTIFACT_FORMAT = "serendip-model"
ARTIFACT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Artifact:
    model: str
    config: dict[str, Any]
    users: Vocabulary
    items: Vocabulary
    arrays: dict[str, Any]
    meta: dict[str, Any]
    manifest: dict[str, Any]


def _safe_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in "._-" for c in name):
        raise SerendipError(f"invalid artifact array name '{name}'")
    return name


def write_artifact(
    directory: Path,
    *,
    model: str,
    config: Mapping[str, Any],
    users: Vocabulary,
    items: Vocabulary,
    arrays: Mapping[str, np.ndarray | sp.spmatrix],
    meta: Mapping[str, Any],
    extra: Callable[[Path], None] | None = None,
    sections: Mapping[str, Any] | None = None,
) -> Path:
    """Write atomically: into a temporary sibling directory, then rename over `directory`.

    `extra(tmp_dir)`, when given, writes further files (e.g. member artifacts of a hybrid in
    subdirectories) inside the same atomic write; `sections` are further top-level manifest
    entries (e.g. `tuning`: how the parameters were chosen)."""
    from serendip import __version__

    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        files: dict[str, dict[str, str]] = {}
        np.save(tmp / "users.npy", users.ids.astype(str), allow_pickle=False)
        np.save(tmp / "items.npy", items.ids.astype(str), allow_pickle=False)
        for name, arr in arrays.items():
            fname = _safe_name(name)
            if sp.issparse(arr):
                sp.save_npz(tmp / f"{fname}.npz", sp.csr_matrix(arr), compressed=False)  # type: ignore[arg-type]
                files[name] = {"file": f"{fname}.npz", "kind": "sparse"}
            else:
                a = np.asarray(arr)
                if a.dtype == object:
                    a = a.astype(str)
                np.save(tmp / f"{fname}.npy", a, allow_pickle=False)
                files[name] = {"file": f"{fname}.npy", "kind": "dense"}
        manifest = {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "model": model,
            "serendip_version": __version__,
            "config": dict(config),
            "n_users": len(users),
            "n_items": len(items),
            "arrays": files,
            "meta": dict(meta),
        }
        reserved = set(manifest) & set(sections or {})
        if reserved:
            raise ValueError(f"manifest sections {sorted(reserved)} are the artifact's own")
        manifest.update(sections or {})
        if extra is not None:
            extra(tmp)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_json_default))
    return directory


@contextmanager
def atomic_directory(directory: Path) -> Iterator[Path]:
    """Fill a directory so that readers see the old one or the complete new one, never half.

    Yields an empty temporary sibling of `directory` (same file system, so the final rename is
    atomic); when the block ends without error it replaces `directory` (an existing one is
    renamed aside first, then removed). On error the temporary directory is removed and
    `directory` is left as it was.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        yield tmp
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: Dense arrays at least this large are memory-mapped read-only at load: the server processes
#: of one machine then share one copy of a model in the page cache, and a load costs no copy.
MMAP_MIN_BYTES = 1 << 20


def _dense(path: Path) -> np.ndarray:
    if path.stat().st_size >= MMAP_MIN_BYTES:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    return np.load(path, allow_pickle=False)


def read_artifact(directory: Path) -> Artifact:
    manifest_path = Path(directory) / "manifest.json"
    if not manifest_path.is_file():
        raise SerendipError(f"{directory}: not a model artifact (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise SerendipError(
            f"{manifest_path}: invalid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    if manifest.get("format") != ARTIFACT_FORMAT:
        raise SerendipError(f"{manifest_path}: not a Serendip model artifact")
    if int(manifest.get("version", -1)) > ARTIFACT_VERSION:
        raise SerendipError(
            f"{manifest_path}: artifact version {manifest['version']} is newer than this Serendip "
            f"understands ({ARTIFACT_VERSION}); upgrade Serendip"
        )
    base = Path(directory)
    arrays: dict[str, Any] = {}
    try:
        users = Vocabulary.shared(np.load(base / "users.npy", allow_pickle=False))
        items = Vocabulary.shared(np.load(base / "items.npy", allow_pickle=False))
        for name, spec in manifest["arrays"].items():
            path = base / _safe_name(spec["file"])
            arrays[name] = (
                sp.csr_matrix(sp.load_npz(path)) if spec["kind"] == "sparse" else _dense(path)
            )
    except (OSError, ValueError, KeyError) as exc:
        raise SerendipError(f"{directory}: damaged model artifact ({exc})") from None
    return Artifact(
        model=manifest["model"],
        config=manifest["config"],
        users=users,
        items=items,
        arrays=arrays,
        meta=manifest.get("meta", {}),
        manifest=manifest,
    )


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
