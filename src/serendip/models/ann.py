"""Approximate nearest-neighbour retrieval over item embeddings (faiss), for large catalogs.

Scoring every item costs O(n_items x d) per request; an `AnnIndex` answers "the k items with
the largest inner product (or cosine) with this query" from an HNSW graph in roughly
O(log n_items), with an exact flat index below a size threshold. Per-query exclusions (seen
items) are honoured by over-fetching, a global allowed-mask by a faiss ID selector. Embedding
models take `AnnOptions` and `AnnRetrieval`; the index is built at fit (deterministically:
single-threaded inserts) and saved with the model (a manifest entry with a checksum; no pickle).

>>> import numpy as np
>>> vecs = np.diag([4.0, 3.0, 2.0, 1.0]).astype(np.float32)
>>> index = AnnIndex.build(vecs, metric="ip")  # 4 items: an exact flat index
>>> index.search(np.ones((1, 4)), 2, exclude=[np.array([0])]).items.tolist()
[[1, 2]]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from serendip.errors import ConfigError, SerendipError
from serendip.models.base import ModelConfig, RecLists, RecRequest, empty_lists, top_k

if TYPE_CHECKING:
    from serendip.models.base import Recommender

    # For the type checker the mixin is a Recommender (it is only ever mixed into one, before
    # the model's base class), so `self.items_`, `super()._fit` ... are checked against the
    # real declarations; at run time it stays a plain mixin.
    _MixinBase = Recommender
else:
    _MixinBase = object

__all__ = [
    "AnnIndex",
    "AnnOptions",
    "AnnParams",
    "AnnResult",
    "AnnRetrieval",
    "Metric",
    "exact_top_k",
    "recall_at_k",
]

Metric = Literal["ip", "cosine"]

#: Largest number of neighbours one query fetches before giving up on the index (the caller then
#: scores that query exactly).
_MAX_FETCH = 8192


@dataclass(frozen=True, slots=True)
class AnnParams:
    """Index settings. m: HNSW graph degree (memory ~ 2 m int32 per item; higher = better
    recall); ef_construction: beam width while building (build time vs graph quality);
    ef_search: beam width while searching (latency vs recall; raised to k when k is larger);
    exact_below: catalogs smaller than this get an exact flat index instead of a graph.
    ivf_from: catalogs at least this large get an inverted-file index instead (k-means cells,
    `nprobe` of them searched per query): an HNSW graph of 1M items takes about 20 minutes to
    build on one core, an inverted file about a minute.

    Defaults: inner-product graphs need a high degree; the recall, latency and build times
    behind them are in benchmarks/results/ann.md."""

    m: int = 64
    ef_construction: int = 200
    ef_search: int = 512
    exact_below: int = 10_000
    ivf_from: int = 200_000
    nprobe: int = 64

    def __post_init__(self) -> None:
        if (
            self.m < 2
            or self.ef_construction < 1
            or self.ef_search < 1
            or self.exact_below < 0
            or self.ivf_from < 0
            or self.nprobe < 1
        ):
            raise ConfigError(f"invalid ANN parameters {self}")


@dataclass(frozen=True, slots=True, eq=False)
class AnnResult:
    """items: int64 (n, k) item indices, best first, -1 = none; scores: float32 (n, k), -inf
    where items is -1; complete: bool (n,), False where the index ran out before finding k
    allowed, non-excluded items (an exact search may still find more)."""

    items: np.ndarray
    scores: np.ndarray
    complete: np.ndarray


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        raise ConfigError("ANN retrieval needs faiss: pip install faiss-cpu") from None
    return faiss


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(np.divide(x, norms, out=np.zeros_like(x), where=norms > 0))


class AnnIndex:
    """Maximum-inner-product (or cosine) search over n item vectors; ids = row positions.

    Build with `AnnIndex.build`, read with `AnnIndex.load`. Thread-safe for concurrent `search`
    calls (faiss searches are read-only); not for concurrent builds.
    """

    def __init__(self, index: Any, *, metric: Metric, kind: str, params: AnnParams) -> None:
        self._index = index
        self.metric: Metric = metric
        self.kind = kind  # "hnsw", "ivf" or "flat"
        self.params = params

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls, vectors: np.ndarray, *, metric: Metric = "ip", params: AnnParams | None = None
    ) -> AnnIndex:
        """Index `vectors` (n, d); row i gets id i. metric "cosine" normalises rows (and later
        queries) so inner product = cosine. Deterministic: the HNSW graph is built on one thread
        (faiss's level generator has a fixed seed)."""
        faiss = _faiss()
        params = params or AnnParams()
        if metric not in ("ip", "cosine"):
            raise ConfigError(f"unknown ANN metric '{metric}'; valid: ip, cosine")
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] == 0:
            raise ConfigError(f"ANN index needs a 2-D (n, d>0) array, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise SerendipError("ANN index: item vectors contain NaN or infinite values")
        x = _normalise(x) if metric == "cosine" else np.ascontiguousarray(x)
        n, d = x.shape
        if n >= params.ivf_from and n >= params.exact_below:
            return cls(_build_ivf(faiss, x, params), metric=metric, kind="ivf", params=params)
        if n < params.exact_below:
            index = faiss.IndexFlatIP(d)
            index.add(x)
            return cls(index, metric=metric, kind="flat", params=params)
        index = faiss.IndexHNSWFlat(d, params.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.ef_construction
        index.hnsw.efSearch = params.ef_search
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            index.add(x)
        finally:
            faiss.omp_set_num_threads(threads)
        return cls(index, metric=metric, kind="hnsw", params=params)

    @property
    def n(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def set_ef_search(self, ef: int) -> None:
        """Change the search beam width of an HNSW index (no-op for a flat one)."""
        if ef < 1:
            raise ConfigError(f"ef_search must be at least 1, got {ef}")
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = int(ef)
        self.params = dataclasses.replace(self.params, ef_search=int(ef))

    def set_nprobe(self, nprobe: int) -> None:
        """Change how many cells an inverted-file index searches (kept for the others)."""
        if nprobe < 1:
            raise ConfigError(f"nprobe must be at least 1, got {nprobe}")
        if self.kind == "ivf":
            self._index.nprobe = int(nprobe)
        self.params = dataclasses.replace(self.params, nprobe=int(nprobe))

    @property
    def n_cells(self) -> int:
        """The inverted file's number of cells (0 for the other kinds)."""
        return int(self._index.nlist) if self.kind == "ivf" else 0

    # ------------------------------------------------------------------ searching
    def _raw(self, q: np.ndarray, k: int, allowed_bits: np.ndarray | None) -> tuple[Any, Any]:
        faiss = _faiss()
        if allowed_bits is None and self.kind == "flat":
            return self._index.search(q, k)
        kwargs: dict[str, Any] = {}
        if allowed_bits is not None:
            kwargs["sel"] = faiss.IDSelectorBitmap(self.n, faiss.swig_ptr(allowed_bits))
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.params.ef_search, k), **kwargs)
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.params.nprobe, **kwargs)
        else:
            params = faiss.SearchParameters(**kwargs)
        return self._index.search(q, k, params=params)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: Sequence[np.ndarray | Sequence[int]] | None = None,
        *,
        allowed: np.ndarray | None = None,
    ) -> AnnResult:
        """The k best items for each query row, best first.

        exclude: per query, item ids never to return (e.g. seen items); honoured by fetching
        k + len(exclude) neighbours (rounded up to a power of two, so a query's answer does not
        depend on the batch it comes in) and doubling while too many were excluded.
        allowed: bool (n,) mask applied inside the search (filters). Rows whose search ran out
        before k items are marked incomplete.
        """
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.shape[1] != self.dim:
            raise SerendipError(f"ANN query has {q.shape[1]} dimensions, the index {self.dim}")
        q = _normalise(q) if self.metric == "cosine" else np.ascontiguousarray(q)
        nq = len(q)
        if exclude is not None and len(exclude) != nq:
            raise SerendipError(f"exclude has {len(exclude)} rows for {nq} queries")
        excl = [
            np.unique(np.asarray(e, dtype=np.int64)) if e is not None and len(e) else None
            for e in (exclude if exclude is not None else [None] * nq)
        ]
        bits = None
        n_allowed = self.n
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (self.n,):
                raise SerendipError(f"allowed mask has shape {allowed.shape}, expected ({self.n},)")
            n_allowed = int(allowed.sum())
            if n_allowed < self.n:
                bits = np.packbits(allowed, bitorder="little")
        out_items = np.full((nq, k), -1, np.int64)
        out_scores = np.full((nq, k), -np.inf, np.float32)
        complete = np.zeros(nq, dtype=bool)
        fetch = np.array([_pow2(k + (0 if e is None else len(e))) for e in excl], dtype=np.int64)
        pending = np.arange(nq)
        while len(pending):
            retry = []
            for f in np.unique(fetch[pending]):
                rows = pending[fetch[pending] == f]
                kk = int(min(f, self.n))
                scores, ids = self._raw(q[rows], kk, bits)
                for r, row_ids, row_sc in zip(rows, ids, scores, strict=True):
                    keep = row_ids >= 0
                    if excl[r] is not None:
                        keep &= ~np.isin(row_ids, excl[r], assume_unique=False)
                    got_ids, got_sc = row_ids[keep][:k], row_sc[keep][:k]
                    available = n_allowed - (0 if excl[r] is None else len(excl[r]))
                    short = len(got_ids) < min(k, max(available, 0))
                    if short and kk < min(self.n, _MAX_FETCH):
                        fetch[r] = f * 2
                        retry.append(r)
                        continue
                    out_items[r, : len(got_ids)] = got_ids
                    out_scores[r, : len(got_ids)] = got_sc
                    complete[r] = not short
            pending = np.asarray(retry, dtype=np.int64)
        return AnnResult(out_items, out_scores, complete)

    # ------------------------------------------------------------------ persistence
    def entry(self) -> dict[str, Any]:
        """What a manifest records of the index besides its bytes."""
        return {
            "kind": self.kind,
            "metric": self.metric,
            "n": self.n,
            "dim": self.dim,
            "m": self.params.m,
            "ef_construction": self.params.ef_construction,
            "ef_search": self.params.ef_search,
            "exact_below": self.params.exact_below,
            "ivf_from": self.params.ivf_from,
            "nprobe": self.params.nprobe,
        }

    def save(self, directory: Path, name: str) -> dict[str, Any]:
        """Write the index to `directory/<name>.faiss`; returns its manifest entry."""
        faiss = _faiss()
        if not name.replace("_", "").replace("-", "").isalnum():
            raise SerendipError(f"invalid ANN index name '{name}'")
        path = Path(directory) / f"{name}.faiss"
        faiss.write_index(self._index, str(path))
        return {"file": path.name, **self.entry(), "sha256": _sha256(path)}

    def to_array(self) -> np.ndarray:
        """The index serialised as a uint8 array (for artifacts that embed it in their arrays:
        reading it back is a copy, where rebuilding an inverted file at 1M items is k-means)."""
        return np.asarray(_faiss().serialize_index(self._index), dtype=np.uint8)

    @classmethod
    def from_array(cls, data: np.ndarray, entry: Mapping[str, Any]) -> AnnIndex:
        """An index written by `to_array`, checked against its `entry`."""
        faiss = _faiss()
        try:
            index = faiss.deserialize_index(np.ascontiguousarray(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise SerendipError(f"damaged ANN index ({exc})") from None
        return cls._checked(index, entry, "embedded")

    @classmethod
    def load(cls, directory: Path, entry: Mapping[str, Any]) -> AnnIndex:
        """Read an index written by `save`, checking its checksum and shape against the
        manifest entry (a damaged or swapped file is an error, not wrong answers)."""
        faiss = _faiss()
        try:
            fname = str(entry["file"])
            if "/" in fname or "\\" in fname or fname.startswith("."):
                raise SerendipError(f"invalid ANN index file name '{fname}'")
            path = Path(directory) / fname
            if not path.is_file():
                raise SerendipError(f"{directory}: ANN index file {fname} is missing")
            if _sha256(path) != entry["sha256"]:
                raise SerendipError(f"{path}: ANN index is damaged (checksum mismatch)")
            index = faiss.read_index(str(path))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise SerendipError(f"{directory}: damaged ANN index entry ({exc})") from None
        return cls._checked(index, entry, str(directory))

    @classmethod
    def _checked(cls, index: Any, entry: Mapping[str, Any], where: str) -> AnnIndex:
        try:
            params = AnnParams(
                int(entry["m"]),
                int(entry["ef_construction"]),
                int(entry["ef_search"]),
                int(entry["exact_below"]),
                int(entry.get("ivf_from", AnnParams().ivf_from)),  # older manifests: none
                int(entry.get("nprobe", AnnParams().nprobe)),
            )
            metric = entry["metric"]
            kind = entry["kind"]
            n, dim = int(entry["n"]), int(entry["dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SerendipError(f"{where}: damaged ANN index entry ({exc})") from None
        if int(index.ntotal) != n or int(index.d) != dim:
            raise SerendipError(f"{where}: ANN index shape does not match its manifest")
        if kind == "hnsw":
            index.hnsw.efSearch = params.ef_search
        elif kind == "ivf":
            index.nprobe = params.nprobe
        return cls(index, metric=metric, kind=kind, params=params)


def _build_ivf(faiss: Any, x: np.ndarray, params: AnnParams) -> Any:
    """An inverted-file index over x: the largest power of two <= 4 sqrt(n) k-means cells
    (2,048 at 1M items), trained on a seeded sample of at most 64 points per cell, every row
    added, `nprobe` cells searched per query."""
    n, d = x.shape
    nlist = 1 << int(np.log2(max(1.0, 4.0 * np.sqrt(n))))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 0
    sample = x
    if n > 64 * nlist:
        pick = np.sort(np.random.default_rng(0).choice(n, size=64 * nlist, replace=False))
        sample = np.ascontiguousarray(x[pick])
    index.train(sample)
    index.add(x)
    index.nprobe = params.nprobe
    return index


def _pow2(x: int) -> int:
    return 1 << max(0, int(x) - 1).bit_length()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------- model integration
class AnnOptions(ModelConfig):
    """Config fields of a model that can retrieve through an ANN index.

    ann: True = always build an index, False = never, "auto" = when the catalog has at least
    `ann_min_items` items (below that, scoring every item is fast and exact). Catalogs under
    `ann_exact_below` items get an exact flat index. ann_m / ann_ef_construction /
    ann_ef_search: the HNSW graph degree and beam widths (see `AnnParams`).
    """

    ann: bool | Literal["auto"] = "auto"
    ann_min_items: int = Field(default=50_000, ge=0)
    ann_exact_below: int = Field(default=10_000, ge=0)
    ann_m: int = Field(default=64, ge=2, le=512)
    ann_ef_construction: int = Field(default=200, ge=1)
    ann_ef_search: int = Field(default=512, ge=1)
    ann_ivf_from: int = Field(default=200_000, ge=0)
    ann_nprobe: int = Field(default=64, ge=1)


class AnnRetrieval(_MixinBase):
    """Mixin for embedding models (its config an `AnnOptions`): `recommend` for warm users and `similar_items` go through
    ANN indexes when the config turns them on; everything else (cold users, candidate sets,
    restrictive filters, users whose exclusions exhaust the index) takes the exact path of the
    base class, so the contract holds either way.

    The model implements:
    - `_ann_vectors(purpose)`: (n_items, d) item vectors, purpose "recommend" or "similar";
    - `_ann_metric(purpose)`: "ip" or "cosine";
    - `_ann_queries(user_idx)`: (queries (n, d), usable bool (n,)) -- rows not usable (e.g. users
      that score by popularity) go the exact way;
    - optionally `_ann_offset()`: (n_items,) added to retrieved scores (item bias, tie-break),
      and `_ann_cold_query(history)`: the query of an unknown user with a context history.
    Purposes whose vectors and metric are the same share one index (`_ann_shared`).
    """

    _ann_shared: ClassVar[bool] = False
    ann_indexes_: dict[str, AnnIndex]

    # hooks -------------------------------------------------------------
    def _ann_vectors(self, purpose: str) -> np.ndarray:
        raise NotImplementedError

    def _ann_metric(self, purpose: str) -> Metric:
        raise NotImplementedError

    def _ann_queries(self, user_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _ann_offset(self) -> np.ndarray | None:
        return None

    def _ann_cold_query(self, history: np.ndarray) -> np.ndarray | None:
        """The query vector (d,) of an unknown user with these history item indices (distinct,
        int64, sorted), as the model's cold-start path would score them; None = score them
        exactly."""
        return None

    # machinery ---------------------------------------------------------
    def _ann_params(self) -> AnnParams:
        cfg: AnnOptions = self.config
        return AnnParams(
            cfg.ann_m,
            cfg.ann_ef_construction,
            cfg.ann_ef_search,
            cfg.ann_exact_below,
            cfg.ann_ivf_from,
            cfg.ann_nprobe,
        )

    def ann_wanted(self, n_items: int) -> bool:
        """Whether this configuration builds indexes for a catalog of `n_items`."""
        cfg: AnnOptions = self.config
        if cfg.ann == "auto":
            return n_items >= cfg.ann_min_items
        return bool(cfg.ann)

    def _purposes(self) -> tuple[str, ...]:
        return ("recommend",) if self._ann_shared else ("recommend", "similar")

    def build_ann(self) -> None:
        """(Re)build the indexes from the fitted item vectors (called at the end of fit)."""
        self.ann_indexes_ = {}
        if not self.ann_wanted(len(self.items_)):
            return
        for purpose in self._purposes():
            self.ann_indexes_[purpose] = AnnIndex.build(
                self._ann_vectors(purpose),
                metric=self._ann_metric(purpose),
                params=self._ann_params(),
            )

    def ann_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Each index as a uint8 array and its manifest entry, by purpose: for a model that
        embeds this one in its own arrays (a pipeline source), so loading it reads the indexes
        instead of rebuilding them."""
        indexes: dict[str, AnnIndex] = getattr(self, "ann_indexes_", None) or {}
        return (
            {purpose: index.to_array() for purpose, index in indexes.items()},
            {purpose: index.entry() for purpose, index in indexes.items()},
        )

    def set_ann_arrays(
        self, arrays: Mapping[str, np.ndarray], entries: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """The indexes `ann_arrays` gave, read back (each checked against its entry and the
        catalog's size)."""
        self.ann_indexes_ = {}
        for purpose, entry in entries.items():
            if purpose not in arrays:
                raise SerendipError(f"embedded ANN index '{purpose}' is missing")
            index = AnnIndex.from_array(arrays[purpose], entry)
            if index.n != len(self.items_):
                raise SerendipError(
                    f"embedded ANN index '{purpose}' has {index.n} items, the model "
                    f"{len(self.items_)}"
                )
            self.ann_indexes_[purpose] = index

    def ann_purposes(self) -> list[str]:
        """The purposes ("recommend", "similar") an index was built for, sorted."""
        return sorted(getattr(self, "ann_indexes_", None) or {})

    def _ann_index(self, purpose: str) -> AnnIndex | None:
        indexes = getattr(self, "ann_indexes_", None) or {}
        return indexes.get("recommend" if self._ann_shared else purpose)

    def _fit(self, dataset: Any) -> None:
        # abstract on Recommender, implemented by the model's base class (next in the MRO)
        super()._fit(dataset)  # type: ignore[safe-super]
        self.build_ann()

    # persistence: the index files live in the artifact directory, their entries in its meta.
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = super()._state()
        return arrays, {**meta, "ann": {"indexes": self.ann_purposes()}}

    def _save_extra(self, directory: Path) -> None:
        super()._save_extra(directory)
        entries = {
            purpose: index.save(directory, f"ann_{purpose}")
            for purpose, index in (getattr(self, "ann_indexes_", None) or {}).items()
        }
        if entries:
            (Path(directory) / "ann.json").write_text(json.dumps(entries, indent=2))

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self._ann_names = list((meta.get("ann") or {}).get("indexes", []))

    def _load_extra(self, directory: Path) -> None:
        super()._load_extra(directory)
        self.ann_indexes_ = {}
        names = getattr(self, "_ann_names", [])
        if not names:
            return
        path = Path(directory) / "ann.json"
        try:
            entries = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SerendipError(f"{directory}: ANN index manifest unreadable ({exc})") from None
        for purpose in names:
            if purpose not in entries:
                raise SerendipError(f"{directory}: ANN index '{purpose}' missing from ann.json")
            index = AnnIndex.load(Path(directory), entries[purpose])
            if index.n != len(self.items_):
                raise SerendipError(
                    f"{directory}: ANN index '{purpose}' has {index.n} items, the model "
                    f"{len(self.items_)}"
                )
            self.ann_indexes_[purpose] = index

    # retrieval ---------------------------------------------------------
    def _recommend_rows(self, request: RecRequest) -> tuple[np.ndarray, np.ndarray]:
        """As `Recommender._recommend_rows`; warm users (and unknown ones with a context history
        the model folds in) through the ANN index when one is built."""
        index = self._ann_index("recommend")
        if index is None or request.candidates is not None:
            return super()._recommend_rows(request)
        allowed = request.allowed
        if allowed is not None and allowed.mean() < 0.5:
            return super()._recommend_rows(request)  # a selective filter: graph search degrades
        k, context, exclude_seen = request.k, request.context, request.exclude_seen
        user_ids, uidx = request.users, request.user_idx
        warm = np.flatnonzero(uidx >= 0)
        queries, usable = self._ann_queries(uidx[warm])
        rows = warm[usable]
        queries = queries[usable]
        excl: list[np.ndarray] = []
        for r in rows:
            parts = []
            if exclude_seen:
                train = self.train_
                u = uidx[r]
                parts.append(train.indices[train.indptr[u] : train.indptr[u + 1]])
                if context:
                    parts.append(self._context_indices(str(user_ids[r]), context))
            excl.append(np.concatenate(parts) if parts else np.zeros(0, np.int64))
        # unknown users with a context history: their folded-in vector is a query like any other
        # (the serving runtime's real-time path); without history they score by popularity
        cold_rows, cold_queries = [], []
        for r in np.flatnonzero(uidx < 0) if context else ():
            hist = self._context_indices(str(user_ids[r]), context)
            hist = np.unique(np.asarray(hist, dtype=np.int64))
            q = self._ann_cold_query(hist) if len(hist) else None
            if q is not None and np.linalg.norm(q) > 0:
                cold_rows.append(r)
                cold_queries.append(np.asarray(q, np.float32))
                excl.append(hist if exclude_seen else np.zeros(0, np.int64))
        if cold_rows:
            rows = np.concatenate([rows, np.asarray(cold_rows, np.int64)])
            queries = np.vstack([queries, np.vstack(cold_queries)])
        out_items, out_scores = empty_lists(len(request), k)
        done = np.zeros(len(request), dtype=bool)
        if len(rows):
            # the offset (item bias, tie-break) is small next to the inner products: it re-orders
            # the retrieved list, it does not retrieve
            res = index.search(queries, k, excl, allowed=allowed)
            offset = self._ann_offset()
            items, scores = res.items, res.scores
            if offset is not None:
                valid = items >= 0
                scores = np.where(valid, scores + offset[np.maximum(items, 0)], -np.inf)
                order = np.lexsort((np.where(valid, items, len(self.items_)), -scores), axis=1)
                items = np.take_along_axis(items, order, axis=1)
                scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
            ok = res.complete
            out_items[rows[ok]] = items[ok]
            out_scores[rows[ok]] = scores[ok]
            done[rows[ok]] = True
        rest = np.flatnonzero(~done)
        if len(rest):  # the rest the exact way
            out_items[rest], out_scores[rest] = super()._recommend_rows(request.take(rest))
        return out_items, out_scores

    def similar_items(self, item: str, k: int = 10) -> RecLists:
        """As `Recommender.similar_items`; through the "similar" ANN index when one is built."""
        index = self._ann_index("similar")
        if index is None:
            return super().similar_items(item, k)
        self._check_fitted()
        i = self.items_.get(str(item))
        if i < 0:
            raise SerendipError(f"unknown item '{item}'")
        vec = self._ann_vectors("similar")[i][None, :]
        res = index.search(vec, k, [np.array([i])])
        if not res.complete[0]:
            return super().similar_items(item, k)
        return RecLists(np.array([str(item)], dtype=object), res.items, res.scores, self.items_)


def exact_top_k(
    vectors: np.ndarray, queries: np.ndarray, k: int, metric: Metric = "ip"
) -> np.ndarray:
    """Exact top-k item ids (n_queries, k) by brute force: the reference ANN recall is measured
    against (benchmarks, tests)."""
    v = _normalise(vectors) if metric == "cosine" else np.asarray(vectors, np.float32)
    q = _normalise(queries) if metric == "cosine" else np.asarray(queries, np.float32)
    out = []
    for start in range(0, len(q), 256):
        idx, _ = top_k(q[start : start + 256] @ v.T, k)
        out.append(idx)
    return np.vstack(out) if out else np.zeros((0, k), np.int64)


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |approx_row & exact_row| / |exact_row| (-1 padding ignored)."""
    hits = []
    for a, e in zip(approx, exact, strict=True):
        e = e[e >= 0]
        if len(e):
            hits.append(len(np.intersect1d(a[a >= 0], e)) / len(e))
    return float(np.mean(hits)) if hits else 1.0
