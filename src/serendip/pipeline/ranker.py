"""Stage two: the learned ranker and its training recipe (`train_ranker`), all inside train:
1. `time_split`: sources and features are fitted on the past window; the last `label_fraction`
   of the interactions gives the labels (no timestamps: a seeded per-user random holdout).
2. `graded_labels`: a label-window pair not already in the past gets its strongest event's
   grade (`RankerParams.label_gains`).
3. The past-fitted stage one proposes candidates and features; a label user is one LambdaRank
   group, dropped without a labelled candidate or with < `min_history` past interactions.
4. `LambdaRanker` (LightGBM lambdarank; seeded, deterministic, few threads) early-stops on
   NDCG@`eval_at` of held-out label users; `n_models` = k > 1 averages k members over k user
   folds. With `prior_weight` w > 0 boosting starts from -w x `PRIOR_FEATURE` (the trending
   order), so where few groups teach the trees little the ranker stays near that baseline.
Stage one is then refitted on all of train; the ranker transfers because its features are
relative (ranks, normalised scores, ages relative to the request time).
5. The fallback check (`serendip.pipeline.fallback`, on unless `fallback.enabled` is off): on
   the newest label window, out of fold, the ranker against every source alone and popularity,
   per segment of users; `RankerReport.fallback` says what serves each segment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import EVENT_CODES, EVENT_TYPES, Dataset
from serendip.errors import ConfigError, NotFittedError
from serendip.pipeline.candidates import CandidateFrame, CandidateSource, UserContext
from serendip.pipeline.config import PipelineConfig, RankerParams
from serendip.pipeline.fallback import FallbackReport
from serendip.pipeline.tree_tables import TreeTables

__all__ = [
    "PRIOR_FEATURE",
    "LambdaRanker",
    "RankerReport",
    "StageOne",
    "fusion_scores",
    "graded_labels",
    "label_lookup",
    "time_split",
    "train_ranker",
]


# ----------------------------------------------------------------------------- stage one
class StageOne:
    """The sources, the merge and the feature builder of one pipeline, fitted together.

    `frame(contexts)` asks every source for its quota and merges the proposals into one
    `CandidateFrame`; `features(frame, contexts)` turns it into the ranker's float32 matrix.
    """

    def __init__(self, config: PipelineConfig) -> None:
        from serendip.pipeline.features import FeatureBuilder
        from serendip.pipeline.sources import make_source

        self.quotas = config.quotas()
        self.sources: dict[str, CandidateSource] = {
            name: make_source(name, **config.sources[name].params) for name in self.quotas
        }
        self.builder = FeatureBuilder(list(self.quotas))

    def fit(self, dataset: Dataset) -> Self:
        for source in self.sources.values():
            source.fit(dataset)
        self.builder.fit(dataset)
        return self

    def frame(self, contexts: Sequence[UserContext]) -> CandidateFrame:
        from serendip.pipeline.merge import merge_proposals

        per_source = {
            name: source.propose_batch(contexts, self.quotas[name])
            for name, source in self.sources.items()
        }
        return merge_proposals(per_source, len(contexts), self.quotas)

    def features(self, frame: CandidateFrame, contexts: Sequence[UserContext]) -> np.ndarray:
        return np.asarray(self.builder.build(frame, contexts), dtype=np.float32)

    @property
    def feature_names(self) -> list[str]:
        return list(self.builder.feature_names)


def fusion_scores(frame: CandidateFrame, quotas: Mapping[str, int] | None = None) -> np.ndarray:
    """Reciprocal-rank fusion of the sources' ranks (sum of 1 / (60 + rank)): the merged
    candidate order without a learned ranker (the fallback, and the baseline it must beat)."""
    rank = np.asarray(frame.rank, dtype=np.float64)
    return np.nansum(1.0 / (60.0 + rank), axis=1).astype(np.float32)


# ----------------------------------------------------------------------------- labels
def time_split(
    dataset: Dataset,
    label_fraction: float,
    *,
    seed: int = 0,
    per_user: bool = False,
    window: int = 0,
    random: bool = False,
) -> tuple[Dataset, Dataset, float]:
    """(past, future, cut) for one label window.

    Window 0: the label window is the last `label_fraction` of the timed interactions (a time
    quantile; untimed rows stay in the past); `cut` is the request time of the label window's
    contexts. Window j > 0 slides back by j * label_fraction: what comes after it is left out,
    so older windows add training groups without looking ahead. per_user: each user's latest
    `label_fraction` of timed interactions instead (at least one, none for users with fewer
    than 2); `cut` is then the newest past timestamp. Without timestamps, or with `random`:
    each user's interactions are held out at random with probability `label_fraction` (seeded,
    one draw per window) and `cut` is NaN.
    """
    it = dataset.interactions
    drop = np.zeros(len(it), dtype=bool)
    if (window + 1) * label_fraction >= 1.0:
        raise ConfigError(
            f"label window {window} with label_fraction {label_fraction} leaves no past"
        )
    if it.has_timestamps and not per_user and not random:
        ts = it.timestamp
        timed = ~np.isnan(ts)
        cut = float(np.quantile(ts[timed], 1.0 - (window + 1) * label_fraction))
        upper = float(np.quantile(ts[timed], 1.0 - window * label_fraction)) if window else np.inf
        future = timed & (ts >= cut) & (ts < upper)
        drop = timed & (ts >= upper)
    elif it.has_timestamps and not random:
        ts = it.timestamp
        timed = ~np.isnan(ts)
        rows = np.flatnonzero(timed)
        order = rows[np.lexsort((ts[rows], it.user[rows]))]
        users = it.user[order]
        start = np.searchsorted(users, users, side="left")
        count = np.bincount(users, minlength=dataset.n_users)[users]
        pos = np.arange(len(order)) - start  # 0 = the user's oldest
        n_f = np.where(count >= 2, np.maximum(1, np.floor(label_fraction * count)), 0)
        hi = count - window * n_f
        future = np.zeros(len(it), dtype=bool)
        future[order[(pos >= hi - n_f) & (pos < hi)]] = True
        drop[order[pos >= hi]] = True
        past_ts = ts[timed & ~future & ~drop]
        cut = float(past_ts.max()) if len(past_ts) else float("nan")
    else:
        rng = np.random.default_rng(seed + window)
        future = rng.random(len(it)) < label_fraction
        cut = float("nan")
    past = ~future & ~drop
    if not past.any() or not future.any():
        raise ConfigError(
            f"label_fraction {label_fraction} leaves no past or no label window in '{dataset.name}'"
        )
    return dataset.filter_interactions(past), dataset.filter_interactions(future), cut


def graded_labels(future: Dataset, past: Dataset | None, gains: Mapping[str, int]) -> sp.csr_matrix:
    """int32 CSR users x items: the grade of each (user, item) pair of `future` (its strongest
    event's gain; ratings >= 4 one above), 0 where the pair already occurs in `past`."""
    it = future.interactions
    gain = np.array([int(gains.get(e, 0)) for e in EVENT_TYPES], dtype=np.int32)
    grade = gain[it.event.astype(np.int64)]
    is_rating = it.event == EVENT_CODES["rating"]
    grade = grade + (is_rating & (np.nan_to_num(it.value, nan=0.0) >= 4.0)).astype(np.int32)
    keep = grade > 0
    m = sp.coo_matrix(
        (grade[keep], (it.user[keep], it.item[keep])), shape=(future.n_users, future.n_items)
    ).tocsr()
    # duplicates: keep the max grade (csr sums duplicates, so rebuild from the max)
    if m.nnz and len(it):
        key = it.user[keep].astype(np.int64) * future.n_items + it.item[keep]
        order = np.lexsort((-grade[keep], key))
        k_sorted = key[order]
        first = np.r_[True, k_sorted[1:] != k_sorted[:-1]]
        k_u = k_sorted[first]
        g_u = grade[keep][order][first]
        m = sp.csr_matrix(
            (g_u, (k_u // future.n_items, k_u % future.n_items)),
            shape=(future.n_users, future.n_items),
        )
    if past is not None:
        seen = past.seen()
        m = m - m.multiply(seen > 0)
        m.eliminate_zeros()
    m.sort_indices()
    return sp.csr_matrix(m, dtype=np.int32)


def label_lookup(labels: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """labels[users[j], items[j]] for every j (0 where absent), vectorised."""
    if len(users) == 0:
        return np.zeros(0, np.int32)
    return np.asarray(labels[users, items], dtype=np.int32).ravel()


# ----------------------------------------------------------------------------- the ranker
#: The feature whose negation, times `RankerParams.prior_weight`, is the ranker's init score:
#: the item's log rank by 7-day decayed count (the `trending` model's order; lower is better).
PRIOR_FEATURE = "item_trend_log_rank_7d"
#: The pair feature that is 0 for a candidate none of the user's followees interacted with or
#: authored (`RankerParams.oon_label_gain` raises those positives' labels).
OON_FEATURE = "in_network"
_MEMBER_SEP = "\n### serendip: next ranker member ###\n"


class LambdaRanker:
    """LightGBM LambdaRank over candidate features, stored as LightGBM's text model.

    One or more members (`fit`, then `add`): the score is the members' mean. Bagging members
    trained on different user folds, each early-stopped on its own held-out fold, steadies a
    ranker trained on a few hundred groups, where one early-stopping set of a few dozen users
    picks its best iteration by chance. Members are stored one after another in the text model.

    With `params.prior_weight` > 0 every score is the members' mean plus the prior (-weight x
    the `PRIOR_FEATURE` column, found by name among the feature names given at training).
    """

    def __init__(self, params: RankerParams, seed: int = 42) -> None:
        self.params = params
        self.seed = seed
        self.members_: list[tuple[Any, int]] = []  # (booster, best iteration)
        self.prior_col_: int | None = None  # the PRIOR_FEATURE column (prior on)
        #: the members' trees as lookup tables (`predict`), compiled on first use; False:
        #: not compilable, LightGBM predicts
        self._tables: TreeTables | bool | None = None

    def _set_prior_col(self, feature_names: Sequence[str] | None) -> None:
        if self.params.prior_weight <= 0:
            self.prior_col_ = None
            return
        names = [_lgb_name(n) for n in feature_names or ()]
        if PRIOR_FEATURE not in names:
            raise ConfigError(
                f"ranker prior_weight > 0 needs the feature '{PRIOR_FEATURE}' among the features"
            )
        self.prior_col_ = names.index(PRIOR_FEATURE)

    def prior(self, X: np.ndarray) -> np.ndarray:
        """The init score of each row: -prior_weight x its PRIOR_FEATURE (0 with the prior off)."""
        if self.prior_col_ is None:
            return np.zeros(len(X), np.float64)
        return -self.params.prior_weight * np.asarray(X[:, self.prior_col_], np.float64)

    @property
    def booster_(self) -> Any:
        """The first member's LightGBM booster (None before training)."""
        return self.members_[0][0] if self.members_ else None

    @property
    def best_iteration_(self) -> int:
        """The members' mean best iteration (rounded; 0 before training)."""
        if not self.members_:
            return 0
        return round(float(np.mean([best for _, best in self.members_])))

    def _estimator(self) -> Any:
        import lightgbm as lgb

        p = self.params
        return lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=p.n_estimators,
            learning_rate=p.learning_rate,
            num_leaves=p.num_leaves,
            min_child_samples=p.min_child_samples,
            subsample=p.subsample,
            subsample_freq=1 if p.subsample < 1.0 else 0,
            colsample_bytree=p.colsample_bytree,
            reg_lambda=p.reg_lambda,
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=p.num_threads,
            verbose=-1,
        )

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        *,
        valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> Self:
        """Train on rows grouped by user (`groups`: sizes, in row order); early stopping on
        NDCG@eval_at of `valid` = (X, y, groups) when given. Replaces any members."""
        self.members_ = []
        return self.add(X, y, groups, valid=valid, feature_names=feature_names)

    def add(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        *,
        valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> Self:
        """Train one more member as `fit` does (its seed offset by the member count)."""
        import lightgbm as lgb

        if self.params.prior_weight > 0 and feature_names is None:
            raise ConfigError("ranker prior_weight > 0 needs the feature names")
        self._set_prior_col(feature_names)
        est = self._estimator()
        est.set_params(random_state=self.seed + len(self.members_))
        kwargs: dict[str, Any] = {"group": groups}
        if self.prior_col_ is not None:
            kwargs["init_score"] = self.prior(X)
        if feature_names is not None:
            kwargs["feature_name"] = [_lgb_name(n) for n in feature_names]
        if valid is not None and len(valid[2]):
            if self.prior_col_ is not None:
                kwargs["eval_init_score"] = [self.prior(valid[0])]
            kwargs.update(
                eval_X=(valid[0],),
                eval_y=(valid[1],),
                eval_group=[valid[2]],
                eval_at=[self.params.eval_at],
                callbacks=[lgb.early_stopping(self.params.early_stopping_rounds, verbose=False)],
            )
        est.fit(X, y, **kwargs)
        booster = est.booster_
        best = int(getattr(est, "best_iteration_", 0) or 0)
        self.members_.append((booster, best if best > 0 else int(booster.current_iteration())))
        self._tables = None
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """float32 (m,): the members' mean score plus the prior. Read from the trees compiled
        into lookup tables where they allow it (`serendip.pipeline.tree_tables`: LightGBM's
        scores to the last bits of a float64, at a fraction of its per-call cost on the couple
        of hundred rows of a request), else by LightGBM."""
        if not self.members_:
            raise NotFittedError("the ranker is not trained")
        if len(X) == 0:
            return np.zeros(0, np.float32)
        tables = self._compiled()
        if tables is not None:
            out = tables.predict(X)
        else:
            out = np.zeros(len(X), np.float64)
            for booster, best in self.members_:
                out += booster.predict(X, num_iteration=best, num_threads=self.params.num_threads)
        return np.asarray(out / len(self.members_) + self.prior(X), dtype=np.float32)

    def _compiled(self) -> TreeTables | None:
        """The members' trees as tables (compiled once; None: LightGBM predicts)."""
        if self._tables is None:
            n_features = int(self.members_[0][0].num_feature())
            texts = [str(b.model_to_string(num_iteration=best)) for b, best in self.members_]
            self._tables = TreeTables.compile(texts, n_features) or False
        return self._tables if isinstance(self._tables, TreeTables) else None

    def predict_member(self, member: int, X: np.ndarray) -> np.ndarray:
        """One member's scores (with the prior), e.g. on the fold it was early-stopped on."""
        booster, best = self.members_[member]
        out = booster.predict(X, num_iteration=best, num_threads=self.params.num_threads)
        return np.asarray(out) + self.prior(X)

    def to_string(self) -> str:
        if not self.members_:
            raise NotFittedError("the ranker is not trained")
        return _MEMBER_SEP.join(
            str(booster.model_to_string(num_iteration=best)) for booster, best in self.members_
        )

    @classmethod
    def from_string(cls, text: str, params: RankerParams, seed: int = 42) -> LambdaRanker:
        import lightgbm as lgb

        r = cls(params, seed)
        for part in text.split(_MEMBER_SEP):
            booster = lgb.Booster(model_str=part)
            r.members_.append((booster, int(booster.current_iteration())))
        r._tables = None
        if r.members_:
            r._set_prior_col(r.members_[0][0].feature_name())
        return r

    def importance(self, names: Sequence[str]) -> dict[str, float]:
        """Total gain per feature over the members (for the report)."""
        if not self.members_:
            return {}
        gain = sum(b.feature_importance(importance_type="gain") for b, _ in self.members_)
        return {n: float(g) for n, g in zip(names, gain, strict=False)}


def _lgb_name(name: str) -> str:
    """LightGBM refuses some characters in feature names (JSON specials)."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)


# ----------------------------------------------------------------------------- the recipe
@dataclass
class RankerReport:
    """What training saw: sizes, the cut, the early-stopping score, feature importances."""

    cut: float
    n_label_users: int
    n_train_groups: int
    n_valid_groups: int
    n_rows: int
    positive_share: float
    best_iteration: int
    valid_ndcg: float | None
    importance: dict[str, float] = field(default_factory=dict)
    #: The fallback check's outcome (None: not run, e.g. `fallback.enabled` off)
    fallback: FallbackReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cut": None if not np.isfinite(self.cut) else self.cut,
            "n_label_users": self.n_label_users,
            "n_train_groups": self.n_train_groups,
            "n_valid_groups": self.n_valid_groups,
            "n_rows": self.n_rows,
            "positive_share": self.positive_share,
            "best_iteration": self.best_iteration,
            "valid_ndcg": self.valid_ndcg,
        }


@dataclass(frozen=True, slots=True, eq=False)
class _Groups:
    X: np.ndarray
    y: np.ndarray
    sizes: np.ndarray
    users: np.ndarray  # user index of each group

    def take(self, keep: np.ndarray) -> _Groups:
        """The groups where `keep` (bool, one per group) holds, in order."""
        rows = np.repeat(keep, self.sizes)
        return _Groups(self.X[rows], self.y[rows], self.sizes[keep], self.users[keep])


def _ranking_data(
    stage: StageOne,
    contexts: Sequence[UserContext],
    labels: sp.csr_matrix,
    *,
    oon_gain: int = 0,
    batch: int = 512,
) -> _Groups:
    """Candidates, features and labels of these contexts; groups without a positive dropped.
    `oon_gain` > 0 raises the label of every positive outside the user's network by that much."""
    oon_col = stage.feature_names.index(OON_FEATURE) if oon_gain > 0 else -1
    xs, ys, sizes, users = [], [], [], []
    for s in range(0, len(contexts), batch):
        part = contexts[s : s + batch]
        frame = stage.frame(part)
        if len(frame) == 0:
            continue
        X = stage.features(frame, part)
        part_users = np.array([c.user_idx for c in part], dtype=np.int64)
        y = label_lookup(labels, part_users[frame.row], frame.item)
        if oon_gain > 0:
            y = np.where((X[:, oon_col] == 0) & (y > 0), y + oon_gain, y)
        g = frame.group_sizes(len(part))
        pos_per_group = np.bincount(frame.row, weights=(y > 0), minlength=len(part))
        keep_group = pos_per_group > 0
        keep_row = keep_group[frame.row]
        xs.append(X[keep_row])
        ys.append(y[keep_row])
        sizes.append(g[keep_group])
        users.append(part_users[keep_group])
    if not xs:
        n_f = len(stage.feature_names)
        z = np.zeros(0, np.int64)
        return _Groups(np.zeros((0, n_f), np.float32), np.zeros(0, np.int32), z, z)
    return _Groups(
        np.vstack(xs),
        np.concatenate(ys),
        np.concatenate(sizes).astype(np.int64),
        np.concatenate(users),
    )


def _concat(parts: Sequence[_Groups]) -> _Groups:
    return _Groups(
        np.vstack([g.X for g in parts]),
        np.concatenate([g.y for g in parts]),
        np.concatenate([g.sizes for g in parts]),
        np.concatenate([g.users for g in parts]),
    )


def train_ranker(
    dataset: Dataset, config: PipelineConfig
) -> tuple[LambdaRanker | None, RankerReport]:
    """Run the recipe of the module docstring on `dataset` (the training data). Returns the
    trained ranker (None when the label window yields no labelled candidate at all, e.g. on
    a very small dataset: the pipeline then ranks by `fusion_scores`) and a report."""
    from serendip.pipeline.context import contexts_from_dataset

    p = config.ranker
    rng = np.random.default_rng(config.seed)
    # early-stopping users: one seeded share of all users, the same in every window
    valid_user = rng.random(dataset.n_users) < p.valid_fraction
    # with several members: each user's fold (member k is early-stopped on fold k), drawn
    # from its own stream so that one member trains exactly as before
    fold = np.random.default_rng([config.seed, 1]).integers(0, p.n_models, dataset.n_users)
    n_windows = p.n_windows
    if p.one_window_from and dataset.n_interactions >= p.one_window_from:
        n_windows = 1
    per_window = max(1, p.max_label_users // n_windows)
    parts: list[_Groups] = []
    may_validate: list[np.ndarray] = []  # per group: its window had enough users to hold out
    n_label_users = 0
    cut = float("nan")
    names: list[str] = []
    newest: _Window | None = None
    for w in range(n_windows):
        past, future, w_cut = time_split(
            dataset,
            p.label_fraction,
            seed=config.seed,
            per_user=p.label_split == "per-user",
            window=w,
            random=p.label_split == "random",
        )
        cut = w_cut if w == 0 else cut
        labels = graded_labels(future, past, p.label_gains)
        users = np.flatnonzero(np.diff(labels.indptr) > 0)
        n_past = np.bincount(past.interactions.user, minlength=past.n_users)
        if p.min_history > 0:
            users = users[n_past[users] >= p.min_history]
        if len(users) > per_window:
            users = np.sort(rng.choice(users, size=per_window, replace=False))
        n_label_users += len(users)
        stage = StageOne(config).fit(past)
        now = w_cut if np.isfinite(w_cut) else None
        if w == 0:
            newest = _Window(past, labels, stage, now, n_past)
        contexts = contexts_from_dataset(past, list(past.users.ids[users]), now=now)
        oon_gain = p.oon_label_gain if past.has_social else 0
        parts.append(_ranking_data(stage, contexts, labels, oon_gain=oon_gain))
        may_validate.append(np.full(len(parts[-1].sizes), len(users) >= 10))
        names = stage.feature_names
    data = _concat(parts)
    hold_ok = np.concatenate(may_validate)
    if p.n_models == 1:
        splits = [valid_user[data.users] & hold_ok]
    else:
        splits = [(fold[data.users] == k) & hold_ok for k in range(p.n_models)]
    n_valid = int(np.any(splits, axis=0).sum()) if len(data.sizes) else 0
    report = RankerReport(
        cut=cut,
        n_label_users=n_label_users,
        n_train_groups=len(data.sizes) if p.n_models > 1 else len(data.sizes) - n_valid,
        n_valid_groups=n_valid,
        n_rows=len(data.y),
        positive_share=float(np.mean(data.y > 0)) if len(data.y) else 0.0,
        best_iteration=0,
        valid_ndcg=None,
    )
    if len(data.sizes) == 0:
        report.fallback = _fallback_check(config, newest, None, [])
        return None, report
    ranker = LambdaRanker(p, seed=config.seed)
    held_scores: list[np.ndarray] = []
    held: list[_Groups] = []
    trained_on: list[np.ndarray] = []  # per member: the users whose groups it trained on
    for is_valid in splits:
        tr, va = data.take(~is_valid), data.take(is_valid)
        if len(tr.sizes) == 0:
            continue
        ranker.add(
            tr.X,
            tr.y,
            tr.sizes,
            valid=(va.X, va.y, va.sizes) if len(va.sizes) else None,
            feature_names=names,
        )
        trained_on.append(np.unique(tr.users))
        if len(va.sizes):
            held_scores.append(ranker.predict_member(len(ranker.members_) - 1, va.X))
            held.append(va)
    if not ranker.members_:
        report.fallback = _fallback_check(config, newest, None, [])
        return None, report
    report.fallback = _fallback_check(config, newest, ranker, trained_on)
    report.best_iteration = ranker.best_iteration_
    if held:
        # each held-out group scored by the member that did not train on it
        va = _concat(held)
        report.valid_ndcg = _mean_ndcg(np.concatenate(held_scores), va.y, va.sizes, p.eval_at)
    report.importance = ranker.importance(names)
    return ranker, report


@dataclass(frozen=True, slots=True, eq=False)
class _Window:
    """The newest label window, kept for the fallback check: its past (the carve's train), its
    graded labels (the carve's validation), the stage fitted on the past, the request time and
    each user's number of past interactions."""

    past: Dataset
    labels: sp.csr_matrix
    stage: StageOne
    now: float | None
    n_past: np.ndarray


def _fallback_check(
    config: PipelineConfig,
    window: _Window | None,
    ranker: LambdaRanker | None,
    trained_on: Sequence[np.ndarray],
) -> FallbackReport | None:
    """`serendip.pipeline.fallback`'s check on the newest label window. The ranker scores a
    user only with the members that never trained on that user (users every member trained
    on are left out); without a ranker, the fusion order stands for it."""
    import time

    from serendip.pipeline.context import contexts_from_dataset
    from serendip.pipeline.fallback import (
        COLD,
        FOLD_IN,
        KNOWN,
        SegmentChoice,
        choose,
        fold_in_context,
        validation_ndcg,
    )

    fb = config.fallback
    if not fb.enabled or window is None:
        return None
    t0 = time.perf_counter()
    p = config.ranker
    past, labels, stage = window.past, window.labels, window.stage
    n_users = past.n_users
    trained = np.zeros((len(trained_on), n_users), dtype=bool)
    for m, users in enumerate(trained_on):
        trained[m, users] = True
    scorable = np.ones(n_users, dtype=bool)
    if len(trained_on):
        scorable &= ~trained.all(axis=0)
    label_users = np.flatnonzero(np.diff(labels.indptr) > 0)
    has_past = window.n_past[label_users] >= max(p.min_history, 1)
    rng = np.random.default_rng([config.seed, 2])

    def sample(users: np.ndarray) -> np.ndarray:
        if len(users) > fb.max_users:
            users = rng.choice(users, size=fb.max_users, replace=False)
        return np.sort(users)

    warm = sample(label_users[has_past & scorable[label_users]])
    cold = sample(label_users[(window.n_past[label_users] == 0) & scorable[label_users]])
    popularity = np.asarray((past.seen() > 0).sum(axis=0), np.float64).ravel()

    def ranker_scores(
        frame: CandidateFrame, contexts: Sequence[UserContext], owners: np.ndarray
    ) -> np.ndarray:
        if ranker is None or len(frame) == 0:
            return fusion_scores(frame)
        X = stage.features(frame, contexts)
        allowed = ~trained[:, owners]  # members x rows
        total = np.zeros(len(frame), np.float64)
        for m in range(len(ranker.members_)):
            if allowed[m].any():
                total[allowed[m]] += ranker.predict_member(m, X[allowed[m]])
        return np.asarray(total / np.maximum(allowed.sum(axis=0), 1), np.float32)

    segments: dict[str, SegmentChoice] = {}
    for name, users in ((KNOWN, warm), (FOLD_IN, warm), (COLD, cold)):
        if len(users) == 0:
            continue
        contexts = contexts_from_dataset(past, list(past.users.ids[users]), now=window.now)
        if name == FOLD_IN:
            contexts = [fold_in_context(c) for c in contexts]
        elif name == COLD:  # a user with no past at all: nothing but the metadata
            contexts = [replace(c, user=f"\x00cold:{c.user}", user_idx=-1) for c in contexts]
        per_user = validation_ndcg(
            stage.frame, ranker_scores, contexts, users, labels, popularity, k=p.eval_at
        )
        segments[name] = choose(per_user, fb.serve if name != COLD else None)
    carve = (
        "random"
        if p.label_split == "random" or not past.interactions.has_timestamps
        else ("per-user latest" if p.label_split == "per-user" else "temporal")
    )
    return FallbackReport(carve, p.eval_at, segments, time.perf_counter() - t0)


def _mean_ndcg(scores: np.ndarray, y: np.ndarray, sizes: np.ndarray, k: int) -> float:
    """Mean graded NDCG@k over groups (gain 2^y - 1), for the report and the tests."""
    out = []
    start = 0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    for n in sizes:
        s, g = scores[start : start + n], y[start : start + n].astype(np.float64)
        start += n
        order = np.lexsort((np.arange(n), -s))[:k]
        dcg = float(((2 ** g[order] - 1) * disc[: len(order)]).sum())
        ideal = np.sort(g)[::-1][:k]
        idcg = float(((2**ideal - 1) * disc[: len(ideal)]).sum())
        out.append(dcg / idcg if idcg > 0 else 0.0)
    return float(np.mean(out)) if out else 0.0
