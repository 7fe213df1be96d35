"""Score top-K recommendation lists against a test set: `evaluate_recommendations`.

The protocol, the same for every model of a study:

- A user's truth is their test items, minus (with `exclude_train_from_truth`, the default)
  items already in their train or fold-in history, since lists skip seen items. Test users
  are those with non-empty truth; every average is over ALL of them (no list scores 0).
- Lists are top-K over the full catalog, nothing sampled; longer lists are cut to K, missing
  slots of shorter ones are misses.
- Popularity (novelty, average popularity, serendipity's baseline) is the number of distinct
  training users per item. Every metric is also reported per activity slice
  (`ActivitySlices`). Formulas: `serendip.evaluation.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from serendip.data.dataset import Dataset
from serendip.data.vocabulary import Vocabulary
from serendip.errors import ConfigError, DataError
from serendip.evaluation import metrics as m

__all__ = [
    "METRIC_DESCRIPTIONS",
    "ActivitySlices",
    "EvaluationResult",
    "TopKLists",
    "evaluate_recommendations",
    "recs_from_frame",
]

#: What each reported metric means (keys without the "@K" suffix).
METRIC_DESCRIPTIONS: dict[str, str] = {
    "precision": "hits / K",
    "recall": "hits / test items",
    "recall_capped": "hits / min(test items, K)",
    "ndcg": "binary NDCG, ideal DCG over min(test items, K)",
    "map": "mean AP, AP normalised by min(test items, K)",
    "mrr": "mean reciprocal rank of the first hit",
    "hit_rate": "share of users with at least one hit",
    "coverage": "distinct recommended items / catalog items",
    "gini": "Gini of exposure over all catalog items (0 = equal)",
    "novelty": "mean self-information -log2(train users of item / train users), bits",
    "ild": "intra-list diversity: mean pairwise content distance",
    "serendipity": "hits the popularity baseline's top-K would not show, / K",
    "arp": "average training popularity (users) of recommended items",
    "oon_share": "share of recommended items outside the user's network",
    "oon_hit_share": "share of all hits that are outside the user's network (pooled)",
    "oon_hit_rate": "share of users with at least one out-of-network hit",
}

SLICE_NAMES: tuple[str, ...] = ("cold", "light", "heavy")


class ActivitySlices(BaseModel):
    """How test users are bucketed by training activity (number of distinct training items).

    Always: "cold" = fewer than `cold_below` items. Then, by `method`:
    - "thresholds": "light" = cold_below .. heavy_above items (inclusive), "heavy" = more.
    - "quantile": "heavy" = non-cold users whose activity exceeds the `heavy_quantile` quantile
      of the non-cold test users' activity (0.8 -> about the most active 20%), "light" = the
      other non-cold users. Adapts the buckets to datasets of any density.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["thresholds", "quantile"] = "thresholds"
    cold_below: int = Field(default=5, ge=0)
    heavy_above: int = Field(default=20, ge=0)
    heavy_quantile: float = Field(default=0.8, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> ActivitySlices:
        if self.method == "thresholds" and self.heavy_above < self.cold_below - 1:
            raise ValueError(
                f"heavy_above ({self.heavy_above}) must be >= cold_below - 1 ({self.cold_below - 1})"
            )
        return self

    def heavy_threshold(self, activity: np.ndarray) -> float:
        """Activity above which a non-cold user is heavy."""
        if self.method == "thresholds":
            return float(self.heavy_above)
        warm = activity[activity >= self.cold_below]
        return float(np.quantile(warm, self.heavy_quantile)) if len(warm) else float("inf")

    def assign(self, activity: np.ndarray) -> np.ndarray:
        """Slice code per user (int8: 0 cold, 1 light, 2 heavy; names in `SLICE_NAMES`)."""
        activity = np.asarray(activity)
        code = np.ones(len(activity), dtype=np.int8)
        code[activity > self.heavy_threshold(activity)] = 2
        code[activity < self.cold_below] = 0
        return code

    def describe(self, activity: np.ndarray) -> dict[str, str]:
        """Human-readable bounds of each slice for these users."""
        t = self.heavy_threshold(activity)
        t_str = f"{t:g}"
        return {
            "cold": f"< {self.cold_below} training items",
            "light": f"{self.cold_below} .. {t_str} training items",
            "heavy": f"> {t_str} training items"
            + (f" (quantile {self.heavy_quantile:g})" if self.method == "quantile" else ""),
        }


@dataclass(frozen=True, slots=True, eq=False)
class TopKLists:
    """Ranked lists as indices: users (n,) int64 user indices (unique); items (n, K) int64 item
    indices, best first, -1 padded. Anything with these two attributes is accepted where a
    `TopKLists` is (e.g. a model's batch output)."""

    users: np.ndarray
    items: np.ndarray


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Scores of one set of recommendation lists.

    - `metrics`: "name@K" -> value, averaged over all test users (see `METRIC_DESCRIPTIONS`).
    - `slices`: slice name -> "name@K" -> value over that slice's users (empty slices absent).
    - `slice_sizes`: slice name -> number of test users; `slice_bounds`: their definitions.
    - `diagnostics`: counts about the inputs (users without lists, listed training items, ...).
    - `notes`: metric families that were skipped and why.
    - `per_user`: one row per test user (external ID, slice, n_truth, every per-user metric),
      when asked for with `keep_per_user`.
    - `timings_s`: seconds per stage (not part of `to_dict`).
    """

    ks: tuple[int, ...]
    n_users: int
    metrics: Mapping[str, float]
    slices: Mapping[str, Mapping[str, float]]
    slice_sizes: Mapping[str, int]
    slice_bounds: Mapping[str, str]
    diagnostics: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    per_user: pd.DataFrame | None = None
    timings_s: Mapping[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def to_dict(self, *, per_user: bool = False) -> dict[str, Any]:
        """JSON-ready dict (floats, ints, strings, lists)."""
        out: dict[str, Any] = {
            "ks": list(self.ks),
            "n_users": self.n_users,
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "slices": {s: {k: float(v) for k, v in d.items()} for s, d in self.slices.items()},
            "slice_sizes": dict(self.slice_sizes),
            "slice_bounds": dict(self.slice_bounds),
            "diagnostics": {
                k: int(v) if float(v).is_integer() and not k.endswith("share") else float(v)
                for k, v in self.diagnostics.items()
            },
            "notes": list(self.notes),
        }
        if per_user and self.per_user is not None:
            out["per_user"] = self.per_user.to_dict(orient="records")
        return out


# --------------------------------------------------------------------------- inputs
def recs_from_frame(
    frame: pd.DataFrame,
    users: Vocabulary,
    items: Vocabulary,
    *,
    source: str | None = None,
    line_numbers: bool = True,
    k: int | None = None,
) -> TopKLists:
    """Ranked lists from a frame with columns user, item (external IDs) and rank (1 = best).

    Without `rank`, a `score` column orders each user's list (descending; ties by row order).
    The K best ranks of each user are kept when `k` is given. Raises `DataError` naming the line
    (header = line 1; when `source` names the text file the frame came from, else the 0-based
    row, as for Parquet with `line_numbers=False`) and field of the first bad row:
    a missing column, an empty ID, a rank that is not a positive integer, an unknown user or
    item, an item listed twice for a user, or a rank used twice by a user.
    """

    def fail(problem: str, row: int | None = None, fld: str | None = None) -> DataError:
        if row is None:
            return DataError(problem, file=source, field=fld)
        if source is not None and line_numbers:
            return DataError(problem, file=source, line=row + 2, field=fld)
        return DataError(f"row {row}: {problem}", file=source, field=fld)

    missing = [c for c in ("user", "item") if c not in frame.columns]
    if "rank" not in frame.columns and "score" not in frame.columns:
        missing.append("rank")
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; expected user,item,rank[,score]",
            file=source,
            line=1 if source is not None and line_numbers else None,
            field=missing[0],
        )
    n = len(frame)
    uidx, user_id = _map_ids(frame["user"], users, "user", fail)
    iidx, item_id = _map_ids(frame["item"], items, "item", fail)
    if "rank" in frame.columns:
        raw = frame["rank"]
        rank_num = _numbers(raw)
        bad = ~np.isfinite(rank_num) | (rank_num < 1) | (rank_num != np.floor(rank_num))
        if bad.any():
            row = int(np.argmax(bad))
            raise fail(f"rank '{raw.iloc[row]}' is not a positive integer", row, "rank")
        rank = rank_num.astype(np.int64)
    else:
        score = _numbers(frame["score"])
        if np.isnan(score).any():
            row = int(np.argmax(np.isnan(score)))
            raise fail(f"score '{frame['score'].iloc[row]}' is not a number", row, "score")
        order = np.lexsort((np.arange(n), -score, uidx))
        rank = np.empty(n, dtype=np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(uidx[order])) + 1] if n else np.zeros(0, np.int64)
        rank[order] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])) + 1
    n_items = max(len(items), 1)
    max_rank = int(rank.max(initial=0)) + 1
    for what, key, fld in (
        ("lists item '{}' twice", uidx * n_items + iidx, "item"),
        ("uses rank {} twice", uidx * max_rank + rank, "rank"),
    ):
        srt = np.sort(key)
        if (srt[1:] == srt[:-1]).any():
            # Rare error path: find the first row that repeats an earlier one.
            row = int(np.argmax(pd.Series(key).duplicated().to_numpy()))
            shown = item_id(row) if fld == "item" else rank[row]
            raise fail(f"user '{user_id(row)}' {what.format(shown)}", row, fld)
    order = np.argsort(uidx * max_rank + rank)
    su = uidx[order]
    uniq_users, starts, counts = np.unique(su, return_index=True, return_counts=True)
    pos = np.arange(n) - np.repeat(starts, counts)
    width = int(counts.max(initial=0)) if k is None else k
    out = np.full((len(uniq_users), width), -1, dtype=np.int64)
    keep = pos < width
    row_of = np.repeat(np.arange(len(uniq_users)), counts)
    out[row_of[keep], pos[keep]] = iidx[order][keep]
    return TopKLists(users=uniq_users.astype(np.int64), items=out)


def _map_ids(
    column: pd.Series,
    vocab: Vocabulary,
    name: str,
    fail: Callable[[str, int | None, str | None], DataError],
) -> tuple[np.ndarray, Callable[[int], str]]:
    """Dense indices of a column of external IDs (int64), and a row -> ID accessor.

    Works on the distinct values (factorized once), so a 10M-row frame with 100K users costs
    one hash pass plus 100K string operations.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    clean = (
        pd.Series(np.asarray(uniques, dtype=object)).astype(str).str.strip().to_numpy(dtype=object)
    )
    empty = np.r_[clean == "", True]  # the last slot stands for NaN (code -1)
    per_row_empty = empty[codes]
    if per_row_empty.any():
        raise fail(f"empty {name} ID", int(np.argmax(per_row_empty)), name)
    known = vocab.indices(clean)
    idx = known[codes]
    if (idx < 0).any():
        row = int(np.argmax(idx < 0))
        where = (
            "appears in neither train nor test"
            if name == "user"
            else ("is not in the catalog (train, test or items)")
        )
        raise fail(f"{name} '{clean[codes[row]]}' {where}", row, name)
    return idx, lambda row: str(clean[codes[row]])


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as float64, NaN where a cell is not a number (strings are stripped first)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column.astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)


def _align_recs(recs: Any, train: Dataset, test_users: np.ndarray, k: int) -> np.ndarray:
    """(len(test_users), k) item indices, row r = test_users[r]'s list, -1 padded."""
    n_users, n_items = train.n_users, train.n_items
    if isinstance(recs, pd.DataFrame):
        recs = recs_from_frame(recs, train.users, train.items, k=k)
    if isinstance(recs, np.ndarray):
        if recs.ndim != 2 or recs.shape[0] != n_users:
            raise ConfigError(
                f"a recommendation array must have one row per user ({n_users} x K), got shape {recs.shape}; "
                "pass TopKLists(users, items) for a subset of users"
            )
        recs = TopKLists(np.arange(n_users, dtype=np.int64), recs)
    if not (hasattr(recs, "users") and hasattr(recs, "items")):
        raise ConfigError(
            "recommendations must be a DataFrame (user,item,rank), an (n_users x K) index array "
            f"or an object with .users and .items, got {type(recs).__name__}"
        )
    users = np.asarray(recs.users).ravel()
    if users.dtype.kind in "OUS":
        # External user IDs, as a model's RecLists carries them.
        ids = users
        users = train.users.indices(ids)
        if (users < 0).any():
            bad = ids[np.argmax(users < 0)]
            raise ConfigError(
                f"recommendations name user '{bad}', who is in neither train nor test"
            )
    users = users.astype(np.int64, copy=False)
    items = np.asarray(recs.items)
    vocab = getattr(recs, "item_vocab", None)
    if isinstance(vocab, Vocabulary) and vocab is not train.items and vocab != train.items:
        items = _remap_items(items, vocab, train.items)
    items = m.check_recs(items, n_items)
    if items.shape[0] != len(users):
        raise ConfigError(f"recommendations have {len(users)} users but {items.shape[0]} lists")
    if len(users) and ((users < 0).any() or (users >= n_users).any()):
        raise ConfigError(f"recommendation user index out of range [0, {n_users})")
    if len(np.unique(users)) != len(users):
        raise ConfigError("recommendations list a user more than once")
    width = min(items.shape[1], k)
    out = np.full((len(test_users), k), -1, dtype=np.int64)
    row_of_user = np.full(n_users, -1, dtype=np.int64)
    row_of_user[test_users] = np.arange(len(test_users))
    dest = row_of_user[users]
    take = dest >= 0
    out[dest[take], :width] = items[take, :width]
    return out


def _remap_items(items: np.ndarray, source: Vocabulary, target: Vocabulary) -> np.ndarray:
    """Item indices of `source` (a model's vocabulary) as indices of `target` (-1 kept)."""
    items = np.asarray(items, dtype=np.int64)
    out = np.full(items.shape, -1, dtype=np.int64)
    listed = items >= 0
    mapped = target.indices(source.lookup(items[listed]))
    if (mapped < 0).any():
        bad = source.lookup(items[listed][mapped < 0][:1])[0]
        raise ConfigError(f"recommended item '{bad}' is not in the evaluation catalog")
    out[listed] = mapped
    return out


def _same_vocabularies(train: Dataset, test: Dataset) -> None:
    for what in ("users", "items"):
        a, b = getattr(train, what), getattr(test, what)
        if a is not b and a != b:
            raise ConfigError(
                f"train and test must share the {what[:-1]} vocabulary (split one Dataset, e.g. with "
                f"serendip.evaluation.splits, or load them with load_train_test); "
                f"train has {len(a)} {what}, test {len(b)}"
            )


# --------------------------------------------------------------------------- evaluation
def evaluate_recommendations(
    recs: pd.DataFrame | np.ndarray | TopKLists | Any,
    train: Dataset,
    test: Dataset,
    k: int | Sequence[int] = 10,
    *,
    embeddings: np.ndarray | None = None,
    baseline: np.ndarray | None = None,
    slices: ActivitySlices | None = None,
    exclude_train_from_truth: bool = True,
    fold_in: Dataset | None = None,
    keep_per_user: bool = False,
    progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Every metric of `recs` against `test` (sharing `train`'s vocabulary) for each cutoff in
    `k`, overall and per activity slice. recs: a DataFrame user,item,rank (external IDs; or
    `score`), an int array (n_users, K) of item indices (row u = user u, -1 padded), a
    `TopKLists`, or any object with `.users` and `.items` such as `RecLists`. embeddings:
    (n_items, d) for cosine diversity (else Jaccard on tags+category); baseline: (n_users, >= K)
    lists replacing serendipity's popularity one; fold_in: a cold-user split's history, seen like
    train. A metric family that cannot be computed (oon_* without a social graph) is in `notes`.

    >>> ds = Dataset.from_frames(pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"]}))
    >>> train, test = (ds.filter_interactions(np.array(b, bool)) for b in ([1, 0, 1], [0, 1, 0]))
    >>> recs = pd.DataFrame({"user": ["a"], "item": ["y"], "rank": [1]})
    >>> evaluate_recommendations(recs, train, test, k=2)["ndcg@2"]
    1.0
    """
    ks = _cutoffs(k)
    slices = slices or ActivitySlices()
    _same_vocabularies(train, test)
    stages = _Stages(progress)

    stages.start("truth")
    seen_train = train.seen()
    history = _history(seen_train, train, fold_in)
    truth, n_truth_excluded = _truth(test, history, exclude_train_from_truth)
    n_truth_all = np.diff(truth.indptr)
    test_users = np.flatnonzero(n_truth_all > 0)
    n_truth = n_truth_all[test_users]

    stages.start("align")
    lists = _align_recs(recs, train, test_users, ks[-1])

    stages.start("hits")
    hits = m.hit_matrix(lists, truth[test_users])
    in_seen = m.member(test_users, lists, history)

    stages.start("train statistics")
    popularity = np.bincount(seen_train.indices, minlength=train.n_items)
    activity_all = np.diff(seen_train.indptr)
    n_population = int((activity_all > 0).sum())
    activity = activity_all[test_users]

    notes: list[str] = []
    if len(test_users) == 0:
        notes.append("no test users (no test item outside what users have seen): every metric is 0")
    emb, features = _diversity_inputs(train, embeddings, notes)
    base = _baseline_rows(baseline, train.n_users, test_users)
    oon = None
    if train.has_social:
        stages.start("social")
        follows = train.social.adjacency(train.n_users)
        oon = m.out_of_network(lists, test_users, seen_train, follows, train.item_author_index())
    else:
        notes.append("oon_* skipped: no social graph")

    per_user, pooled_hits, pooled_oon_hits = _per_user_metrics(
        ks,
        stages,
        _Judged(test_users, n_truth, lists, hits, in_seen, history),
        popularity=popularity,
        n_population=n_population,
        baseline=base,
        oon=oon,
        embeddings=emb,
        features=features,
    )

    stages.start("aggregate")

    def aggregate(mask: np.ndarray) -> dict[str, float]:
        return _aggregate(mask, ks, lists, per_user, pooled_hits, pooled_oon_hits, train.n_items)

    overall = aggregate(np.ones(len(test_users), dtype=bool))
    slice_code = slices.assign(activity)
    by_slice, sizes = _by_slice(slice_code, aggregate)
    diagnostics = _diagnostics(
        lists,
        in_seen,
        n_truth,
        n_truth_excluded=n_truth_excluded,
        n_items=train.n_items,
        n_population=n_population,
    )
    frame = None
    if keep_per_user:
        frame = pd.DataFrame(
            {
                "user": train.users.lookup(test_users),
                "slice": np.asarray(SLICE_NAMES, dtype=object)[slice_code],
                "train_items": activity,
                "n_truth": n_truth,
                "list_length": (lists >= 0).sum(axis=1),
                **per_user,
            }
        )
    return EvaluationResult(
        ks=ks,
        n_users=len(test_users),
        metrics=overall,
        slices=by_slice,
        slice_sizes=sizes,
        slice_bounds=slices.describe(activity),
        diagnostics=diagnostics,
        notes=tuple(notes),
        per_user=frame,
        timings_s=stages.finish(),
    )


def _cutoffs(k: int | Sequence[int]) -> tuple[int, ...]:
    """The distinct cutoffs of `k` (one or several positive integers), ascending."""
    try:
        cutoffs: Sequence[Any] = [k] if np.ndim(k) == 0 else list(k)  # type: ignore[arg-type]
        ks = tuple(sorted({int(x) for x in cutoffs}))
    except (TypeError, ValueError):
        raise ConfigError(f"K must be a positive integer or a list of them, got {k!r}") from None
    if not ks or ks[0] < 1:
        raise ConfigError(f"K must be positive integers, got {k!r}")
    return ks


class _Stages:
    """Seconds per named stage (a stage lasts until the next starts); `progress` is told the
    name of each stage as it starts."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._since = time.perf_counter()

    def start(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings:
            self.timings[list(self.timings)[-1]] = now - self._since
        self._since = now
        self.timings[name] = 0.0
        if self.progress is not None:
            self.progress(name)

    def finish(self) -> dict[str, float]:
        """The timings, the last stage ended now (`progress` is told "done")."""
        self.start("done")
        self.timings.pop("done")
        return self.timings


def _history(seen_train: sp.csr_matrix, train: Dataset, fold_in: Dataset | None) -> sp.csr_matrix:
    """What each user has already seen: train, plus the fold-in history of cold users (binary)."""
    if fold_in is None:
        return seen_train
    _same_vocabularies(train, fold_in)
    history = (seen_train + fold_in.seen()).tocsr()
    history.data[:] = 1.0
    return history


def _truth(test: Dataset, history: sp.csr_matrix, exclude_seen: bool) -> tuple[sp.csr_matrix, int]:
    """Each user's test items (CSR, sorted indices), without what they have seen when
    `exclude_seen`; and how many (user, item) pairs that removed."""
    truth = test.seen()
    n_excluded = 0
    if exclude_seen and history.nnz and truth.nnz:
        overlap = truth.multiply(history).tocsr()
        overlap.eliminate_zeros()
        n_excluded = int(overlap.nnz)
        if n_excluded:
            truth = (truth - overlap).tocsr()
            truth.eliminate_zeros()
    truth = truth.tocsr()
    truth.sort_indices()
    return truth, n_excluded


def _diversity_inputs(
    train: Dataset, embeddings: np.ndarray | None, notes: list[str]
) -> tuple[np.ndarray | None, sp.csr_matrix | None]:
    """What intra-list diversity is measured on: the embeddings (checked) when given, else the
    items' tag+category sets; neither (a note says why) when items have no tags or categories."""
    if embeddings is not None:
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2 or emb.shape[0] != train.n_items:
            raise ConfigError(f"embeddings must have shape ({train.n_items}, d), got {emb.shape}")
        return emb, None
    features = m.content_features(train.item_meta)
    if features.nnz == 0:
        notes.append("ild skipped: items have no tags or categories and no embeddings were given")
        return None, None
    return None, features


def _baseline_rows(
    baseline: np.ndarray | None, n_users: int, test_users: np.ndarray
) -> np.ndarray | None:
    """The serendipity baseline's lists of the test users (checked: one row per user)."""
    if baseline is None:
        return None
    base = np.asarray(baseline)
    if base.ndim != 2 or base.shape[0] != n_users:
        raise ConfigError(f"baseline must have one row per user ({n_users} x K), got {base.shape}")
    return base[test_users]


@dataclass(frozen=True, eq=False)
class _Judged:
    """The test users' lists judged against their truth, one row per test user: users (user
    indices), n_truth, lists ((n, max K) item indices, -1 padded), hits and in_seen (bool, listed
    item in the truth / already seen), and history (what every user has seen, CSR)."""

    users: np.ndarray
    n_truth: np.ndarray
    lists: np.ndarray
    hits: np.ndarray
    in_seen: np.ndarray
    history: sp.csr_matrix


def _per_user_metrics(
    ks: tuple[int, ...],
    stages: _Stages,
    judged: _Judged,
    *,
    popularity: np.ndarray,
    n_population: int,
    baseline: np.ndarray | None,
    oon: np.ndarray | None,
    embeddings: np.ndarray | None,
    features: sp.csr_matrix | None,
) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Every per-user metric "name@K" for each cutoff (a stage each); and per cutoff, each user's
    number of hits and of out-of-network hits (pooled into oon_hit_share, with `oon`: bool,
    listed item outside the user's network). baseline: the test users' baseline lists, None =
    the popularity baseline. Diversity is skipped when there are neither embeddings nor
    features."""
    per_user: dict[str, np.ndarray] = {}
    pooled_hits: dict[int, np.ndarray] = {}
    pooled_oon_hits: dict[int, np.ndarray] = {}
    for kk in ks:
        stages.start(f"metrics@{kk}")
        h, r, at = judged.hits[:, :kk], judged.lists[:, :kk], f"@{kk}"
        per_user.update(_suffixed(_accuracy(h, judged.n_truth), at))
        per_user.update(_suffixed(_popularity_bias(r, popularity, n_population), at))
        if baseline is None:
            unexpected = m.unexpected_vs_popularity(
                r, judged.users, judged.history, popularity, in_seen=judged.in_seen[:, :kk]
            )
        else:
            unexpected = m.unexpected_vs_baseline(r, baseline[:, :kk])
        per_user["serendipity" + at] = m.serendipity(h, unexpected)
        pooled_hits[kk] = h.sum(axis=1)
        if oon is not None:
            oon_metrics, pooled_oon_hits[kk] = _out_of_network(oon[:, :kk], h, r)
            per_user.update(_suffixed(oon_metrics, at))
        if embeddings is not None or features is not None:
            stages.start(f"diversity@{kk}")
            per_user["ild" + at] = m.intra_list_distance(
                r, features=features, embeddings=embeddings
            )
    return per_user, pooled_hits, pooled_oon_hits


def _suffixed(metrics: dict[str, np.ndarray], at: str) -> dict[str, np.ndarray]:
    return {name + at: value for name, value in metrics.items()}


def _accuracy(h: np.ndarray, n_truth: np.ndarray) -> dict[str, np.ndarray]:
    """The per-user accuracy metrics of hit matrix `h` (test users x K)."""
    return {
        "precision": m.precision(h),
        "recall": m.recall(h, n_truth),
        "recall_capped": m.capped_recall(h, n_truth),
        "ndcg": m.ndcg(h, n_truth),
        "map": m.average_precision(h, n_truth),
        "mrr": m.reciprocal_rank(h),
        "hit_rate": m.hit_rate(h),
    }


def _popularity_bias(
    r: np.ndarray, popularity: np.ndarray, n_population: int
) -> dict[str, np.ndarray]:
    """Per-user novelty and average popularity of lists `r` (training popularity)."""
    return {
        "novelty": m.novelty(r, popularity, n_population),
        "arp": m.average_popularity(r, popularity),
    }


def _out_of_network(
    o: np.ndarray, h: np.ndarray, r: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-user out-of-network share and hit rate (o: bool, listed item outside the user's
    network), and each user's number of out-of-network hits (pooled into oon_hit_share)."""
    n_listed = np.maximum((r >= 0).sum(axis=1), 1)
    oon_hits = (o & h).sum(axis=1)
    metrics = {
        "oon_share": o.sum(axis=1) / n_listed,
        "oon_hit_rate": (oon_hits > 0).astype(np.float64),
    }
    return metrics, oon_hits


def _aggregate(
    mask: np.ndarray,
    ks: tuple[int, ...],
    lists: np.ndarray,
    per_user: Mapping[str, np.ndarray],
    pooled_hits: Mapping[int, np.ndarray],
    pooled_oon_hits: Mapping[int, np.ndarray],
    n_items: int,
) -> dict[str, float]:
    """Every metric over the test users in `mask`, "name@K" in `METRIC_DESCRIPTIONS` order per
    K: per-user metrics averaged (0 over no user), coverage and Gini over their lists, the
    out-of-network share of their pooled hits."""
    out: dict[str, float] = {}
    for kk in ks:
        at = f"@{kk}"
        r = lists[mask, :kk]
        for name in METRIC_DESCRIPTIONS:
            key = name + at
            if key in per_user:
                out[key] = float(per_user[key][mask].mean()) if mask.any() else 0.0
            elif name == "coverage":
                out[key] = m.catalog_coverage(r, n_items)
            elif name == "gini":
                out[key] = m.gini(m.exposure(r, n_items))
            elif name == "oon_hit_share" and kk in pooled_oon_hits:
                total = pooled_hits[kk][mask].sum()
                out[key] = float(pooled_oon_hits[kk][mask].sum() / total) if total else 0.0
    return out


def _by_slice(
    slice_code: np.ndarray, aggregate: Callable[[np.ndarray], dict[str, float]]
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """The metrics of each non-empty activity slice, and every slice's number of users."""
    by_slice: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    for code, name in enumerate(SLICE_NAMES):
        mask = slice_code == code
        sizes[name] = int(mask.sum())
        if mask.any():
            by_slice[name] = aggregate(mask)
    return by_slice, sizes


def _diagnostics(
    lists: np.ndarray,
    in_seen: np.ndarray,
    n_truth: np.ndarray,
    *,
    n_truth_excluded: int,
    n_items: int,
    n_population: int,
) -> dict[str, float]:
    """Counts about the inputs: users without or with short lists, listed seen items, truth."""
    list_len = (lists >= 0).sum(axis=1)
    n_listed = int(list_len.sum())
    return {
        "n_test_users": len(lists),
        "n_test_users_without_recs": int((list_len == 0).sum()),
        "n_test_users_short_lists": int(((list_len > 0) & (list_len < lists.shape[1])).sum()),
        "n_listed_items": n_listed,
        "listed_seen_items_share": float(in_seen.sum() / n_listed) if n_listed else 0.0,
        "n_truth_pairs": int(n_truth.sum()),
        "n_truth_pairs_excluded_as_training": n_truth_excluded,
        "n_catalog_items": n_items,
        "n_train_users": n_population,
    }
