"""Peer libraries used raw, as their own documentation shows, beside Serendip's models.

The study asks where Serendip stands against what a user would pick instead, so each peer is
the library's own estimator, built and called as its README and examples do, with its own
defaults; only the glue differs (a `Dataset` in, a `RecLists` out, duck-typed like a zoo
model). implicit (https://github.com/benfred/implicit), as its README shows:
`model.fit(user_items)`, then
`model.recommend(userids, user_items[userids], N=k, filter_already_liked_items=True)`.
Confidence is the raw matrix (summed values: listen or event counts; a rating counts 1),
through `bm25_weight` for ALS as implicit's examples do (`weighting="none"`: off).
implicit uses every core where `random_state` keeps it deterministic (ALS, item-kNN); BPR's
Hogwild SGD races between threads, so one; BLAS is single-threaded during a fit, as implicit
asks. Cornac (optional `peers` extra): its `EASE` and `BPR` on the same confidence triples.
LensKit is left out: its current release pins pandas below the version Serendip uses.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import EVENT_TYPES, Dataset, MatrixConfig
from serendip.data.vocabulary import Vocabulary
from serendip.errors import CapacityError, ConfigError, NotFittedError
from serendip.models.base import (
    Choice,
    FloatRange,
    IntRange,
    RecLists,
    RecRequest,
    SearchSpace,
    empty_lists,
    resolve_users,
    top_k,
)

__all__ = [
    "PEERS",
    "CornacBPRPeer",
    "CornacEASEPeer",
    "ImplicitALSPeer",
    "ImplicitBM25Peer",
    "ImplicitBPRPeer",
    "ImplicitItemKNNPeer",
    "Peer",
    "confidence_matrix",
]

_RATING = EVENT_TYPES.index("rating")


def confidence_matrix(dataset: Dataset, confidence: str = "auto") -> sp.csr_matrix:
    """The users x items float32 CSR a peer learns from (rows/columns = the dataset's indices).

    confidence: "binary" (every observed pair 1), "values" (interaction values summed per pair,
    a missing value counting 1: listen counts, or the number of events), or "auto": "binary"
    when every interaction is an explicit rating (a rating is not a confidence), else "values".
    """
    if confidence not in ("auto", "binary", "values"):
        raise ConfigError(f"confidence must be auto, binary or values, got {confidence!r}")
    if confidence == "auto":
        events = dataset.interactions.event
        confidence = "binary" if len(events) and bool(np.all(events == _RATING)) else "values"
    if confidence == "binary":
        config = MatrixConfig(binary=True)
    else:
        config = MatrixConfig(
            event_weights=dict.fromkeys(EVENT_TYPES, 1.0), value_transform="linear"
        )
    return sp.csr_matrix(dataset.matrix(config), dtype=np.float32)


def threadpool_limits_blas() -> Any:
    """BLAS single-threaded while a library fits with its own threads (implicit's advice)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


class Peer:
    """Glue shared by the peers: parameter validation, timing, batch recommendation, saving.

    The shape of a `Recommender` where the study touches it: `fit(train)` returns the peer,
    `recommend(users, k)` is a template (the fitted check and the request resolved once, as
    the models' `recommend` does) around `_recommend_rows(request)`. Peers take no
    candidates, filters or context: they are the libraries used as their READMEs show.

    Subclasses set `name`, `description`, `defaults` (the library's own defaults plus our
    `seed`/`confidence`/`num_threads`), `search_space`, and implement `_build()` (the library's
    estimator from `self.params`) and optionally `_weigh(matrix)` (what the library's examples do
    to the matrix before `fit`).
    """

    name: ClassVar[str] = "peer"
    family: ClassVar[str] = "peer"
    library: ClassVar[str] = ""
    description: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Any]] = {}
    search_space: ClassVar[SearchSpace] = {}
    #: Parameters that fit in well under a second on the `tiny` preset (tests, quick profile).
    quick_params: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        given = dict(params or {})
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"invalid parameters for peer '{self.name}': {', '.join(unknown)} "
                f"(valid: {', '.join(self.defaults)})"
            )
        self.params: dict[str, Any] = {**self.defaults, **given}
        self.model_: Any = None

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    def _check_fitted(self) -> None:
        if self.model_ is None:
            raise NotFittedError(f"peer '{self.name}' is not fitted: call fit(train) first")

    # -------------------------------------------------------------- the library's calls
    def _build(self) -> Any:
        raise NotImplementedError

    def _weigh(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        return user_items

    def fit(self, train: Dataset) -> Self:
        """Build the user x item matrix and call the library's `fit`; sets `fit_seconds_`
        (matrix building and weighting included, as a user would pay them)."""
        from implicit.utils import ParameterWarning

        start = time.perf_counter()
        self.users_: Vocabulary = train.users
        self.items_: Vocabulary = train.items
        self.user_items_ = confidence_matrix(train, str(self.params.get("confidence", "auto")))
        with threadpool_limits_blas(), warnings.catch_warnings():
            # the kNN models convert their own intermediate COO to CSR and say so; our input is CSR
            warnings.simplefilter("ignore", ParameterWarning)
            model = self._build()  # ALS checks the BLAS threads when it is built
            model.fit(self._weigh(self.user_items_).tocsr(), show_progress=False)
        self.model_ = model
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def recommend(self, users: Sequence[str] | np.ndarray, k: int = 10) -> RecLists:
        """Top-k unseen items per user; unknown users, and users without training
        interactions, get an empty (-1 padded) list: the peers have no cold-start path of their
        own."""
        self._check_fitted()
        user_ids, user_idx = resolve_users(users, k, self.users_)
        items, scores = self._recommend_rows(RecRequest(user_ids, user_idx, k))
        return RecLists(user_ids, items, scores, self.items_)

    def _recommend_rows(self, request: RecRequest) -> tuple[np.ndarray, np.ndarray]:
        """items (n, k), scores (n, k) via the library's batch `recommend`."""
        k, uidx = request.k, request.user_idx
        items, scores = empty_lists(len(request), k)
        # a user without training interactions is as unknown to the library as a new one
        active = np.diff(self.user_items_.indptr) > 0
        rows = np.flatnonzero((uidx >= 0) & active[np.maximum(uidx, 0)])
        n = min(k, len(self.items_))
        for start in range(0, len(rows), 1000):
            batch = rows[start : start + 1000]
            ids = uidx[batch]
            got, sc = self.model_.recommend(
                ids, self.user_items_[ids], N=n, filter_already_liked_items=True
            )
            got = np.asarray(got, dtype=np.int64).reshape(len(batch), -1)
            sc = np.asarray(sc, dtype=np.float32).reshape(len(batch), -1)
            # implicit pads short lists with -1 and the float32 minimum as the score
            bad = (got < 0) | ~np.isfinite(sc) | (sc <= np.finfo(np.float32).min)
            got[bad] = -1
            sc[bad] = -np.inf
            items[batch, : got.shape[1]] = got
            scores[batch, : sc.shape[1]] = sc
        return items, scores

    def save(self, directory: str | Path) -> Path:
        """The library's own `save` plus a small JSON of our parameters; returns the directory
        (its size on disk is the model's size)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_model(directory)
        (directory / "peer.json").write_text(
            json.dumps({"peer": self.name, "library": self.library, "params": self.params})
        )
        return directory

    def _save_model(self, directory: Path) -> None:
        """implicit's `save`: one .npz."""
        self.model_.save(str(directory / "model.npz"))


# ----------------------------------------------------------------------------- implicit
_SHARED: dict[str, Any] = {"seed": 42, "confidence": "auto", "num_threads": 0}


class ImplicitALSPeer(Peer):
    """implicit's `AlternatingLeastSquares`, its defaults, on the bm25-weighted matrix."""

    name = "implicit-als"
    library = "implicit"
    description = "implicit's AlternatingLeastSquares used raw (bm25-weighted confidence)."
    defaults: ClassVar[Mapping[str, Any]] = {
        **_SHARED,
        "factors": 100,
        "regularization": 0.01,
        "alpha": 1.0,
        "iterations": 15,
        # bm25_weight's own defaults, as implicit's last.fm example uses them for ALS
        "weighting": "bm25",
        "K1": 100.0,
        "B": 0.8,
    }
    search_space: ClassVar[SearchSpace] = {
        "factors": IntRange(16, 256, log=True),
        "regularization": FloatRange(1e-3, 100.0, log=True),
        "alpha": FloatRange(0.1, 50.0, log=True),
        "iterations": IntRange(5, 30),
        "weighting": Choice(("bm25", "none")),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {"factors": 8, "iterations": 5}

    def _build(self) -> Any:
        from implicit.als import AlternatingLeastSquares

        p = self.params
        return AlternatingLeastSquares(
            factors=int(p["factors"]),
            regularization=float(p["regularization"]),
            alpha=float(p["alpha"]),
            iterations=int(p["iterations"]),
            num_threads=int(p["num_threads"]),
            random_state=int(p["seed"]),
            use_gpu=False,
        )

    def _weigh(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        if self.params["weighting"] == "none":
            return user_items
        if self.params["weighting"] != "bm25":
            raise ConfigError(f"weighting must be bm25 or none, got {self.params['weighting']!r}")
        from implicit.nearest_neighbours import bm25_weight

        weighted = bm25_weight(user_items, K1=float(self.params["K1"]), B=float(self.params["B"]))
        return sp.csr_matrix(weighted, dtype=np.float32)


class ImplicitBPRPeer(Peer):
    """implicit's `BayesianPersonalizedRanking`, its defaults (one thread: see the module)."""

    name = "implicit-bpr"
    library = "implicit"
    description = "implicit's BayesianPersonalizedRanking used raw."
    defaults: ClassVar[Mapping[str, Any]] = {
        **_SHARED,
        "num_threads": 1,
        "factors": 100,
        "learning_rate": 0.01,
        "regularization": 0.01,
        "iterations": 100,
    }
    search_space: ClassVar[SearchSpace] = {
        "factors": IntRange(16, 256, log=True),
        "learning_rate": FloatRange(1e-3, 0.1, log=True),
        "regularization": FloatRange(1e-4, 0.1, log=True),
        "iterations": IntRange(20, 300, log=True),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {"factors": 8, "iterations": 10}

    def _build(self) -> Any:
        from implicit.bpr import BayesianPersonalizedRanking

        p = self.params
        return BayesianPersonalizedRanking(
            factors=int(p["factors"]),
            learning_rate=float(p["learning_rate"]),
            regularization=float(p["regularization"]),
            iterations=int(p["iterations"]),
            num_threads=int(p["num_threads"]),
            random_state=int(p["seed"]),
            use_gpu=False,
        )


class ImplicitItemKNNPeer(Peer):
    """implicit's `CosineRecommender` (item-item kNN, K nearest neighbours per item)."""

    name = "implicit-itemknn"
    library = "implicit"
    description = "implicit's CosineRecommender (item-kNN) used raw."
    defaults: ClassVar[Mapping[str, Any]] = {**_SHARED, "K": 20}
    search_space: ClassVar[SearchSpace] = {"K": IntRange(5, 1000, log=True)}

    def _build(self) -> Any:
        from implicit.nearest_neighbours import CosineRecommender

        return CosineRecommender(
            K=int(self.params["K"]), num_threads=int(self.params["num_threads"])
        )


class ImplicitBM25Peer(Peer):
    """implicit's `BM25Recommender` (item-item kNN over BM25-weighted co-occurrence)."""

    name = "implicit-bm25"
    library = "implicit"
    description = "implicit's BM25Recommender (item-kNN, BM25 weighting) used raw."
    defaults: ClassVar[Mapping[str, Any]] = {**_SHARED, "K": 20, "K1": 1.2, "B": 0.75}
    search_space: ClassVar[SearchSpace] = {
        "K": IntRange(5, 1000, log=True),
        "K1": FloatRange(0.1, 100.0, log=True),
        "B": FloatRange(0.0, 1.0),
    }

    def _build(self) -> Any:
        from implicit.nearest_neighbours import BM25Recommender

        p = self.params
        return BM25Recommender(
            K=int(p["K"]), K1=float(p["K1"]), B=float(p["B"]), num_threads=int(p["num_threads"])
        )


# ----------------------------------------------------------------------------- cornac
class CornacPeer(Peer):
    """Cornac (https://cornac.preferred.ai) used raw: `cornac.data.Dataset.from_uir` of
    (user, item, confidence) triples, `model.fit(train_set)`, and `model.score(user_idx)` over
    the catalogue, best unseen first (its `recommend` returns IDs without scores). Cornac keeps
    its own index of users and items; items it never saw score -inf. `save` is cornac's own
    (a pickle; written only to measure the model's size, never read back here)."""

    library = "cornac"

    def fit(self, train: Dataset) -> Self:
        import cornac

        start = time.perf_counter()
        self.users_ = train.users
        self.items_ = train.items
        self.user_items_ = confidence_matrix(train, str(self.params.get("confidence", "auto")))
        coo = self.user_items_.tocoo()
        users = train.users.lookup(coo.row)
        items = train.items.lookup(coo.col)
        triples = list(zip(users, items, coo.data.astype(float).tolist(), strict=True))
        train_set = cornac.data.Dataset.from_uir(triples, seed=int(self.params["seed"]))
        model = self._build()
        with threadpool_limits_blas():
            model.fit(train_set)
        self.model_ = model
        self.train_set_ = train_set
        # cornac's item index -> ours; cornac's user index of each of our users (-1: absent)
        self.cornac_items_ = train.items.indices(
            np.asarray(list(train_set.iid_map.keys()), dtype=object)
        )[np.argsort(np.fromiter(train_set.iid_map.values(), np.int64))]
        uid = train_set.uid_map
        self.cornac_user_ = np.array(
            [uid.get(str(u), -1) for u in train.users.lookup(np.arange(len(train.users)))],
            dtype=np.int64,
        )
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _recommend_rows(self, request: RecRequest) -> tuple[np.ndarray, np.ndarray]:
        """items (n, k), scores (n, k): the top-k unseen items from cornac's scores; users
        cornac never saw (unknown, or without training interactions) keep an empty list."""
        k, uidx = request.k, request.user_idx
        cidx = np.where(uidx >= 0, self.cornac_user_[np.maximum(uidx, 0)], -1)
        items, scores = empty_lists(len(request), k)
        rows = np.flatnonzero(cidx >= 0)
        n_items = len(self.items_)
        for start in range(0, len(rows), 256):
            batch = rows[start : start + 256]
            block = np.full((len(batch), n_items), -np.inf, np.float32)
            for j, row in enumerate(batch):
                block[j, self.cornac_items_] = np.ravel(self.model_.score(int(cidx[row])))
            seen = self.user_items_[uidx[batch]]
            r, c = seen.nonzero()
            block[r, c] = -np.inf
            items[batch], scores[batch] = top_k(block, k)
        return items, scores

    def _save_model(self, directory: Path) -> None:
        """cornac's own `save` (a pickle, written only to measure the model's size)."""
        self.model_.save(str(directory))


class CornacEASEPeer(CornacPeer):
    """Cornac's `EASE` (EASEᴿ), its defaults (lamb=500, non-negative weights)."""

    name = "cornac-ease"
    description = "Cornac's EASE used raw."
    defaults: ClassVar[Mapping[str, Any]] = {
        **_SHARED,
        "lamb": 500.0,
        "posB": True,
        "max_memory_mb": 8192.0,
    }
    search_space: ClassVar[SearchSpace] = {
        "lamb": FloatRange(1.0, 5000.0, log=True),
        "posB": Choice((True, False)),
    }

    def fit(self, train: Dataset) -> Self:
        """Refuses, before it starts, a catalogue whose dense item x item matrices (cornac keeps
        several, float64) would not fit in `max_memory_mb`."""
        need_mb = 4 * 8 * train.n_items**2 / 2**20
        if need_mb > float(self.params["max_memory_mb"]):
            raise CapacityError(
                f"peer '{self.name}': {train.n_items:,} items need about {need_mb:,.0f} MB of "
                f"dense item x item matrices, over max_memory_mb={self.params['max_memory_mb']}"
            )
        return super().fit(train)

    def _build(self) -> Any:
        from cornac.models import EASE

        return EASE(
            lamb=float(self.params["lamb"]),
            posB=bool(self.params["posB"]),
            verbose=False,
            seed=int(self.params["seed"]),
        )


class CornacBPRPeer(CornacPeer):
    """Cornac's `BPR`, its defaults (one thread, as for implicit's BPR: Hogwild SGD)."""

    name = "cornac-bpr"
    description = "Cornac's BPR used raw."
    defaults: ClassVar[Mapping[str, Any]] = {
        **_SHARED,
        "num_threads": 1,
        "k": 10,
        "max_iter": 100,
        "learning_rate": 0.001,
        "lambda_reg": 0.01,
    }
    search_space: ClassVar[SearchSpace] = {
        "k": IntRange(8, 256, log=True),
        "max_iter": IntRange(20, 500, log=True),
        "learning_rate": FloatRange(1e-4, 0.1, log=True),
        "lambda_reg": FloatRange(1e-4, 0.1, log=True),
    }

    def _build(self) -> Any:
        from cornac.models import BPR

        p = self.params
        return BPR(
            k=int(p["k"]),
            max_iter=int(p["max_iter"]),
            learning_rate=float(p["learning_rate"]),
            lambda_reg=float(p["lambda_reg"]),
            num_threads=int(p["num_threads"]),
            seed=int(p["seed"]),
        )


def _cornac_peers() -> tuple[type[Peer], ...]:
    """Cornac's peers where cornac is installed (the optional `peers` extra), else none."""
    import importlib.util

    return (CornacEASEPeer, CornacBPRPeer) if importlib.util.find_spec("cornac") else ()


_IMPLICIT: tuple[type[Peer], ...] = (
    ImplicitALSPeer,
    ImplicitBPRPeer,
    ImplicitItemKNNPeer,
    ImplicitBM25Peer,
)

#: Peer name -> class, in the order a leaderboard lists them (cornac's where it is installed).
PEERS: Mapping[str, type[Peer]] = {cls.name: cls for cls in (*_IMPLICIT, *_cornac_peers())}
