"""Selection recipes behind product defaults: re-derivable on any data, never on test.

Both read only validation data carved from a training set, so a user can re-derive a default
on their own data. The weighted hybrid's blend (`select_blend`, `serendip select-blend`):
members fitted once per validation carving (random per-user splits of train, one seed each),
their scores normalised per user as `WeightedHybrid` does, the carvings' users stacked (each
once per carving); weights maximising mean NDCG@k over them are searched (optuna TPE, seeded,
equal weights first), then scored on holdout carvings whose users did not shape them. With its
defaults, on the training part of MovieLens 100K's random 80/20 split (seed 42), it re-derives
`TUNED_BLEND`. The pipeline's choice on validation folds: `ties`, `validation_reference` (what
the floors are measured against), `floors_met`, `choice_key` / `choose` (the order of
settings) and `matched_temporal_folds` (validation windows as long as the test window).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, SerendipError
from serendip.evaluation.metrics import TIE, TIE_SE, hit_matrix, ndcg, standard_error, ties
from serendip.evaluation.splits import Split, temporal_split, validation_split

__all__ = [
    "DEFAULT_HOLDOUT_SEEDS",
    "DEFAULT_SEARCH_SEEDS",
    "TIE",
    "TIE_SE",
    "BlendCarvings",
    "BlendSelection",
    "Floors",
    "choice_key",
    "choose",
    "floors_met",
    "matched_temporal_folds",
    "select_blend",
    "standard_error",
    "ties",
    "validation_reference",
]

#: The carvings the default blend's weights were searched on, and the holdout carvings it was
#: chosen by (10% of each user's training interactions held out in each).
DEFAULT_SEARCH_SEEDS: tuple[int, ...] = tuple(range(42, 52))
DEFAULT_HOLDOUT_SEEDS: tuple[int, ...] = (52, 53, 54, 55)

#: Progress callback: (what is being done, steps done, steps in all).
Progress = Callable[[str, int, int], None]


# =============================================================================== blend search
class BlendCarvings:
    """Members' normalised scores for the validation users of one or more carvings, stacked.

    Carving `seed`: `validation_split(train, "random", test_fraction=fraction, seed=seed,
    min_interactions=5)`; every member (key -> registry name and parameters, as in
    `WeightedHybridConfig.members`) is fitted on its training part and scores that carving's
    validation users (at most `max_users` of them, a seeded sample). Scores are kept as float32
    after per-user normalisation (`normalization`, `rank_constant`, as `WeightedHybrid`), so a
    blend only re-weights arrays.
    """

    def __init__(
        self,
        train: Dataset,
        members: Mapping[str, Mapping[str, Any]],
        seeds: Sequence[int],
        *,
        fraction: float = 0.1,
        normalization: str = "rank",
        rank_constant: float = 60.0,
        k: int = 10,
        max_users: int | None = 5000,
        progress: Progress | None = None,
        done: int = 0,
        total: int | None = None,
    ) -> None:
        from serendip.models.base import top_k
        from serendip.models.hybrid import normalise, parse_members
        from serendip.models.registry import create_model

        if not seeds:
            raise ConfigError("at least one carving seed is needed")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        specs = parse_members(members, "members")
        self.keys = [s.key for s in specs]
        self.seeds = tuple(int(s) for s in seeds)
        self.k = k
        total = total or len(self.seeds) * len(specs)
        parts: dict[str, list[np.ndarray]] = {key: [] for key in self.keys}
        alone: dict[str, list[np.ndarray]] = {key: [] for key in self.keys}
        truths, seens = [], []
        self.fit_seconds = 0.0
        #: whether some carving had more than `max_users` validation users (a sample was drawn)
        self.sampled = False
        for sd in self.seeds:
            carving = validation_split(
                train, "random", test_fraction=fraction, seed=sd, min_interactions=5
            )
            truth = carving.test.seen()
            users = np.flatnonzero(np.diff(truth.indptr) > 0)
            if len(users) == 0:
                raise SerendipError(
                    f"carving {sd} holds out no interactions: too few users with at least 5 "
                    "interactions, or a validation fraction too small for their histories"
                )
            if max_users is not None and len(users) > max_users:
                self.sampled = True
                rng = np.random.default_rng(sd)
                users = np.sort(rng.choice(users, max_users, replace=False))
            seen = carving.train.seen()[users]
            truth = truth[users]
            truths.append(truth)
            seens.append(seen)
            r, c = seen.nonzero()
            n_truth = np.diff(truth.indptr)
            for spec in specs:
                if progress is not None:
                    progress(f"carving {sd}: fitting {spec.key}", done, total)
                t0 = time.perf_counter()
                model = create_model(spec.model, dict(spec.params)).fit(carving.train)
                raw = np.asarray(model._score_warm(users), dtype=np.float32)
                self.fit_seconds += time.perf_counter() - t0
                masked = raw.copy()
                masked[r, c] = -np.inf
                recs, _ = top_k(masked, k)
                alone[spec.key].append(np.asarray(ndcg(hit_matrix(recs, truth), n_truth)))
                parts[spec.key].append(
                    normalise(raw, seen, normalization, rank_constant=rank_constant).astype(  # type: ignore[arg-type]
                        np.float32
                    )
                )
                done += 1
        if progress is not None:
            progress("carvings fitted", done, total)
        self.done = done
        self.parts = {key: np.vstack(b) for key, b in parts.items()}
        self.member_ndcg = {key: float(np.concatenate(v).mean()) for key, v in alone.items()}
        self.truth: sp.csr_matrix = sp.vstack(truths).tocsr()
        self.seen: sp.csr_matrix = sp.vstack(seens).tocsr()
        self.n_users = self.seen.shape[0]

    def evaluator(self, keys: Sequence[str]) -> Callable[[np.ndarray], float]:
        """Mean NDCG@k over the stacked users of the blend with these weights (one per key, in
        `keys`' order; weights <= 0 leave their member out)."""
        from serendip.models.base import top_k

        sub = [self.parts[key] for key in keys]
        r, c = self.seen.nonzero()
        truth = self.truth
        n_truth = np.diff(truth.indptr)
        k = self.k

        def evaluate(weights: np.ndarray) -> float:
            scores = np.zeros(sub[0].shape, np.float32)
            for part, x in zip(sub, weights, strict=True):
                if x > 0:
                    scores += np.float32(x) * part
            scores[r, c] = -np.inf
            recs, _ = top_k(scores, k)
            return float(ndcg(hit_matrix(recs, truth), n_truth).mean())

        return evaluate

    def ndcg(self, weights: Mapping[str, float]) -> float:
        """Mean NDCG@k of a blend {member key: weight} (keys missing here weigh 0)."""
        unknown = set(weights) - set(self.keys)
        if unknown:
            raise ConfigError(f"weights name keys that are not members: {sorted(unknown)}")
        keys = [key for key in self.keys if weights.get(key, 0.0) > 0]
        if not keys:
            raise ConfigError("at least one member needs a positive weight")
        return self.evaluator(keys)(np.array([weights[key] for key in keys]))


@dataclass(frozen=True)
class BlendSelection:
    """What `select_blend` chose and how it scored (mean NDCG@k over the stacked validation
    users of the search carvings; `holdout_ndcg` over the holdout carvings' users, None without
    holdout seeds). `params()` is the `WeightedHybrid` configuration."""

    members: dict[str, dict[str, Any]]
    weights: dict[str, float]
    normalization: str
    rank_constant: float
    validation_ndcg: float
    equal_weights_ndcg: float
    holdout_ndcg: float | None
    equal_weights_holdout_ndcg: float | None
    member_ndcg: dict[str, float]
    member_holdout_ndcg: dict[str, float]
    seeds: tuple[int, ...]
    holdout_seeds: tuple[int, ...]
    validation_fraction: float
    k: int
    trials: int
    n_users: int
    n_holdout_users: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def params(self) -> dict[str, Any]:
        """The chosen blend as `WeightedHybrid` parameters."""
        return {
            "members": {key: dict(p) for key, p in self.members.items()},
            "weights": dict(self.weights),
            "normalization": self.normalization,
            "rank_constant": self.rank_constant,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready, plus `params`."""
        out = asdict(self)
        out["seeds"] = list(self.seeds)
        out["holdout_seeds"] = list(self.holdout_seeds)
        out["params"] = self.params()
        return out


def _optuna_search(
    evaluate: Callable[[np.ndarray], float], keys: Sequence[str], trials: int, seed: int
) -> tuple[np.ndarray, float]:
    """TPE over one weight in [0, 1] per key (normalised to sum 1), the equal weights first."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.enqueue_trial({key: 1.0 for key in keys})

        def objective(trial: Any) -> float:
            w = np.array([trial.suggest_float(key, 0.0, 1.0) for key in keys])
            return evaluate(w / w.sum()) if w.sum() > 0 else 0.0

        study.optimize(objective, n_trials=trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    w = np.array([study.best_params[key] for key in keys])
    return w / w.sum(), float(study.best_value)


def select_blend(
    train: Dataset,
    members: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    normalization: str | None = None,
    rank_constant: float | None = None,
    seeds: Sequence[int] = DEFAULT_SEARCH_SEEDS,
    holdout_seeds: Sequence[int] = DEFAULT_HOLDOUT_SEEDS,
    validation_fraction: float = 0.1,
    k: int = 10,
    trials: int = 200,
    max_users: int | None = 5000,
    seed: int = 42,
    progress: Progress | None = None,
) -> BlendSelection:
    """Search the weighted hybrid's member weights on validation carvings of `train`.

    `train` is all the search may read (hold test data out before: the benchmark passes the
    training part of its split). members: {key: params} as `WeightedHybridConfig.members`
    (default: its default members); normalization / rank_constant default to the default
    blend's. Each member is fitted once per carving (`seeds` and `holdout_seeds`, each holding
    out `validation_fraction` of every user's interactions); weights are searched on the
    stacked users of the `seeds` carvings (`trials` optuna TPE trials seeded with `seed`, the
    equal weights first) and rounded to 4 decimals; the holdout carvings only score the result.
    See the module docstring. (A single carving's exhaustive grid over the weights:
    `WeightedHybrid.tune_weights(method="grid")`.)
    """
    from serendip.models.hybrid import WeightedHybrid, WeightedHybridConfig

    t0 = time.perf_counter()
    defaults = WeightedHybridConfig()
    chosen = {key: dict(p) for key, p in (members or defaults.members).items()}
    # validates the members, the normalisation and the rank constant (ConfigError if wrong)
    cfg = WeightedHybrid(
        {
            "members": chosen,
            "weights": {key: 1.0 for key in chosen},
            "normalization": normalization or defaults.normalization,
            "rank_constant": defaults.rank_constant if rank_constant is None else rank_constant,
        }
    ).config
    assert isinstance(cfg, WeightedHybridConfig)
    if trials < 1:
        raise ConfigError(f"trials must be at least 1, got {trials}")
    if not 0.0 < validation_fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    overlap = set(seeds) & set(holdout_seeds)
    if overlap:
        raise ConfigError(
            f"holdout seeds must differ from the search seeds; both hold {sorted(overlap)}"
        )
    total = (len(seeds) + len(holdout_seeds)) * len(chosen)
    common: dict[str, Any] = {
        "fraction": validation_fraction,
        "normalization": cfg.normalization,
        "rank_constant": cfg.rank_constant,
        "k": k,
        "max_users": max_users,
        "progress": progress,
        "total": total,
    }
    search = BlendCarvings(train, chosen, seeds, **common)
    hold = (
        BlendCarvings(train, chosen, holdout_seeds, done=search.done, **common)
        if holdout_seeds
        else None
    )
    keys = search.keys
    evaluate = search.evaluator(keys)
    equal = evaluate(np.full(len(keys), 1.0 / len(keys)))
    if progress is not None:
        progress(f"searching the weights ({trials} trials)", total, total)
    w, value = _optuna_search(evaluate, keys, trials, seed)
    weights = {key: round(float(x), 4) for key, x in zip(keys, w, strict=True)}
    notes = []
    if search.sampled or (hold is not None and hold.sampled):
        notes.append(f"at most {max_users} validation users per carving (a seeded sample)")
    uniform = {key: 1.0 / len(keys) for key in keys}
    return BlendSelection(
        members=chosen,
        weights=weights,
        normalization=cfg.normalization,
        rank_constant=cfg.rank_constant,
        validation_ndcg=value,
        equal_weights_ndcg=equal,
        holdout_ndcg=None if hold is None else hold.ndcg(weights),
        equal_weights_holdout_ndcg=None if hold is None else hold.ndcg(uniform),
        member_ndcg=search.member_ndcg,
        member_holdout_ndcg={} if hold is None else hold.member_ndcg,
        seeds=search.seeds,
        holdout_seeds=() if hold is None else hold.seeds,
        validation_fraction=validation_fraction,
        k=k,
        trials=trials,
        n_users=search.n_users,
        n_holdout_users=0 if hold is None else hold.n_users,
        seconds=time.perf_counter() - t0,
        notes=notes,
    )


# ========================================================================= pipeline choice
@dataclass(frozen=True, slots=True)
class Floors:
    """The pipeline's floors against the best single model (issue 5): NDCG@10 at least
    `1 + ndcg_gain` times its, and on social data out-of-network HitRate@10 at least
    `oon_ratio` times its; coverage and novelty at least its."""

    ndcg_gain: float = 0.03
    oon_ratio: float = 1.5


def validation_reference(
    metrics: Mapping[str, Mapping[str, Any]],
    per_user_ndcg: Mapping[str, np.ndarray],
    *,
    k: int = 10,
    tie: float = TIE,
    tie_se: float = TIE_SE,
) -> dict[str, Any]:
    """What the pipeline's floors are measured against on validation: the best single model by
    mean NDCG@k (`metrics`: model -> its validation metrics), its NDCG upper bound (mean +
    `tie_se` standard errors of its per-user NDCG), and coverage / novelty / out-of-network
    HitRate as the best among the models tied with it (so a floor never hangs on which of two
    indistinguishable models won the draw)."""
    key = f"ndcg@{k}"
    best = max(metrics, key=lambda m: metrics[m][key])
    tied = ties(per_user_ndcg, best, tie=tie, tie_se=tie_se)
    return {
        "model": best,
        "ties": tied,
        key: metrics[best][key],
        f"{key}_upper": metrics[best][key] + tie_se * standard_error(per_user_ndcg[best]),
        **{
            name: max((metrics[m].get(name) or 0) for m in tied)
            for name in (f"coverage@{k}", f"novelty@{k}", f"oon_hit_rate@{k}")
        },
    }


def floors_met(
    m: Mapping[str, Any],
    ref: Mapping[str, Any],
    social: bool,
    floors: Floors = Floors(),
    *,
    k: int = 10,
) -> dict[str, bool]:
    """Which floors a validation result `m` meets against the reference `ref`: as cautious on
    NDCG as on the others -- the NDCG floor against the best single model's upper confidence
    bound (when `ref` has one), as coverage, novelty and out-of-network take the best of the
    models tied with it. "oon" only on social data."""
    nd, cov, nov, oon = (f"{name}@{k}" for name in ("ndcg", "coverage", "novelty", "oon_hit_rate"))
    out = {
        "ndcg": (m[nd] or 0) >= (1 + floors.ndcg_gain) * (ref.get(f"{nd}_upper", ref[nd]) or 0),
        "coverage": (m[cov] or 0) >= (ref[cov] or 0),
        "novelty": (m[nov] or 0) >= (ref[nov] or 0),
    }
    if social:
        out["oon"] = (m[oon] or 0) >= floors.oon_ratio * (ref[oon] or 0)
    return out


def choice_key(setting: Mapping[str, Any], k: int = 10) -> tuple[bool, int, bool, float]:
    """Order of validation settings (the best is the max). The NDCG floor comes first -- the
    issue's headline; its other floors are guards "at no loss of NDCG" -- so a setting short of
    it ranks by NDCG alone (the closest to the floor first). Among settings that meet it: most
    floors met; then, if the out-of-network floor is the one missed (social data), the highest
    out-of-network HitRate -- the margin above the NDCG floor is spent on discovery -- else the
    best NDCG. `setting["floors_met"]` is `floors_met`'s answer."""
    met = setting["floors_met"]
    if not met["ndcg"]:
        return (False, 0, False, float(setting[f"ndcg@{k}"]))
    chase_oon = met.get("oon") is False
    value = (setting[f"oon_hit_rate@{k}"] or 0.0) if chase_oon else setting[f"ndcg@{k}"]
    return (True, sum(met.values()), not chase_oon, float(value))


def choose(settings: Sequence[Mapping[str, Any]], k: int = 10) -> Mapping[str, Any]:
    """The setting `choice_key` ranks first (the first of equals)."""
    if not settings:
        raise SerendipError("no validation settings to choose from")
    return max(settings, key=lambda s: choice_key(s, k))


def matched_temporal_folds(train: Dataset, n_folds: int, window: float, step: float) -> list[Split]:
    """Temporal validation folds whose test windows are as long as the real test window,
    stepping back: fold j trains on what precedes train's interaction-time quantile
    1 - j x step - window and is tested on the window that follows, up to quantile 1 - j x step
    (fold 0's window ends where train ends, as the test's does). `window`, `step`: shares of
    train's interactions (a test window of 20% of the data is 25% of an 80% train)."""
    if n_folds < 1:
        raise ConfigError(f"n_folds must be at least 1, got {n_folds}")
    if not 0.0 < window < 1.0 or step < 0.0 or (n_folds - 1) * step + window >= 1.0:
        raise ConfigError(
            f"window {window} and step {step} leave no training data for {n_folds} folds"
        )
    ts = train.interactions.timestamp
    ordered = np.sort(ts[~np.isnan(ts)])
    if len(ordered) == 0:
        raise SerendipError("temporal folds need timestamps; the training data has none")

    def at(q: float) -> float:
        return float(ordered[min(int(np.ceil(q * len(ordered))), len(ordered) - 1)])

    folds = []
    for j in range(n_folds):
        hi = 1.0 - j * step
        part = train if j == 0 else train.filter_interactions(~(ts >= at(hi)))
        folds.append(temporal_split(part, cut=at(hi - window)))
    return folds
