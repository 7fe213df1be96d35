"""The production recommender: sources -> merge -> features -> ranker -> rerank -> explanations,
as one model of the zoo (`pipeline`).

`fit` runs the ranker's training recipe (`serendip.pipeline.ranker.train_ranker`: stage one on
the past window, labels from the following window), then refits stage one on the whole training
data for serving. `recommend` is batch first like every model; `recommend_contexts` serves given
`UserContext`s (live state: history, follows, interests, the request time) and returns
explanations on request. Users the fitted data never saw are served from their context:
declared interests (content), followees (in-network, fresh-followed) and trending, and the mix
moves to history-based sources as their events arrive (`update`). Never below its best source:
the fit checks the ranker on its newest label window against every source alone and popularity,
per segment of users (known, folded in at request time, cold start), and a segment where an
alternative wins beyond the noise is served that order (`serendip.pipeline.fallback`; the
check's outcome is `fallback` and the manifest's `meta.fallback`).

The artifact is the shared format (manifest + arrays, no pickle); the LightGBM model is stored as
its text dump, `ranker.txt`, next to the arrays.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from serendip.data.dataset import EVENT_CODES, Dataset
from serendip.errors import ConfigError, DataError, SerendipError
from serendip.models.base import (
    Explanation,
    ModelConfig,
    Recommender,
    RecRequest,
    SearchSpace,
    empty_lists,
)
from serendip.pipeline.candidates import CandidateFrame, UserContext
from serendip.pipeline.config import SEARCH_SEEDS, SEARCH_SPACE, PipelineConfig
from serendip.pipeline.context import dedupe_history
from serendip.pipeline.explain import Explainer, SourceHit
from serendip.pipeline.fallback import RANKER, FallbackReport, order_scores, segment_of
from serendip.pipeline.ranker import (
    LambdaRanker,
    RankerReport,
    StageOne,
    fusion_scores,
    train_ranker,
)
from serendip.pipeline.rerank import (
    CatalogRules,
    ExposureCounter,
    allowed_candidates,
    diversity_vectors,
    rerank,
)
from serendip.pipeline.sources.content import shared_item_vectors
from serendip.serving.contract import RankedCandidates
from serendip.threads import limit_threads

__all__ = ["PipelineRecommender", "RankedCandidates", "ServedList"]

_SEP = "\x1f"  # joins a user's interests into one string in the artifact
_RANKER_FILE = "ranker.txt"


@dataclass(frozen=True, slots=True, eq=False)
class ServedList:
    """One user's final list: item indices and external IDs, displayed scores (non-increasing),
    and one `Explanation` per item when asked for."""

    user: str
    items: np.ndarray
    item_ids: tuple[str, ...]
    scores: np.ndarray
    explanations: tuple[Explanation, ...] | None = None


class PipelineRecommender(Recommender[PipelineConfig]):
    """Two-stage recommender: candidate sources, a LambdaRank ranker, MMR re-ranking with
    rules, and an explanation for every item. Every knob: `PipelineConfig`."""

    name = "pipeline"
    description = (
        "Two-stage pipeline: social, collaborative, content, trending and exploration sources, "
        "a LightGBM LambdaRank ranker, diversity re-ranking with rules, explanations."
    )
    family = "pipeline"
    Config: ClassVar[type[ModelConfig]] = PipelineConfig
    search_space: ClassVar[SearchSpace] = SEARCH_SPACE
    #: tried right after the defaults by `fit --tune` (why: `config.SEARCH_SEEDS`)
    search_seeds: ClassVar[tuple[dict[str, Any], ...]] = SEARCH_SEEDS
    quick_params: ClassVar[Mapping[str, Any]] = {
        "sources": {
            "collaborative": {"params": {"model": "item-knn", "params": {"k": 20}}, "quota": 20},
            "recent-item-knn": {"quota": 15},
            "in-network": {"quota": 15},
            "content": {"quota": 15},
            "fresh-followed": {"quota": 10},
            "trending": {"quota": 20},
            "explore": {"quota": 10},
        },
        "ranker": {
            "n_estimators": 30,
            "num_leaves": 7,
            "min_child_samples": 5,
            "early_stopping_rounds": 10,
            "label_fraction": 0.3,
            "n_windows": 1,
            "n_models": 1,
            "colsample_bytree": 0.9,
        },
        "rerank": {"pool": 40},
    }
    supports_update = True

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        self.ranker_: LambdaRanker | None
        with shared_item_vectors():  # the label windows share the catalogue's vectors
            self.ranker_, self.report_ = train_ranker(dataset, cfg)
            self.stage_ = StageOne(cfg).fit(dataset)
        self._serving_state(dataset)

    def _serving_state(self, ds: Dataset) -> None:
        """What serving needs beyond the sources: per-user history (deduplicated, most recent
        first), follows, interests, privacy, item titles and creation times, content vectors
        for diversity, and the live state (removed items, folded-in events)."""
        it = ds.interactions
        self.hist_indptr_, self.hist_items_, self.hist_time_, self.hist_event_ = _history_store(
            ds.n_users, ds.n_items, it.user, it.item, it.timestamp, it.event
        )
        self.follow_ = sp.csr_matrix(ds.social.adjacency(ds.n_users), dtype=np.float32)
        self.follow_.sort_indices()
        self.interests_ = np.asarray(ds.user_meta.interests, dtype=object)
        self.private_ = np.asarray(ds.user_meta.private, dtype=bool)
        self.titles_ = np.asarray(ds.item_meta.title, dtype=object)
        self.created_at_ = np.asarray(ds.item_published_at(), dtype=np.float64)
        self.content_ = diversity_vectors(ds.item_meta, self.config.rerank.diversity)
        self.now_ = float(np.nanmax(it.timestamp)) if it.has_timestamps else float("nan")
        self.removed_ = np.zeros(ds.n_items, dtype=bool)
        self.live_: dict[str, list[tuple[int, float, int]]] = {}
        self.__dict__.pop("_serving_exposure", None)  # what an old fit served says nothing now
        self._derive()

    def _derive(self) -> None:
        """Rebuild what follows from the state (after fit, load, update or removals)."""
        for cache in ("_live_now", "_pop_order", "_pop_scale", "_tail"):
            self.__dict__.pop(cache, None)  # lazy caches, recomputed on next use
        f = self.config.filters
        self.author_idx_ = self.users_.indices(np.asarray(self.item_author_).astype(str))
        self.rules_ = CatalogRules.build(
            self.item_author_,
            self.created_at_,
            item_ids=self.items_.ids,
            blocked_items=f.blocked_items,
            blocked_authors=f.blocked_authors,
            removed=self.removed_,
        )
        self.explainer_ = Explainer(
            items=self.items_,
            users=self.users_,
            titles=self.titles_,
            categories=self.item_category_,
            item_authors=self.item_author_,
            private=self.private_,
            interactions=self.train_,
            model=self.name,
        )

    # ------------------------------------------------------------------ contexts
    def user_contexts(
        self,
        users: Sequence[str],
        *,
        context: Mapping[str, Sequence[str]] | None = None,
        now: float | None = None,
    ) -> list[UserContext]:
        """Contexts from the fitted state plus folded-in events (`update`) plus `context`
        (external item IDs the caller knows each user interacted with). now: the request time
        (default: the newest time the model knows of)."""
        self._check_fitted()
        when = self._now() if now is None else float(now)
        out = []
        for user in users:
            uid = str(user)
            u = self.users_.get(uid)
            if u >= 0:
                s, e = self.hist_indptr_[u], self.hist_indptr_[u + 1]
                items = self.hist_items_[s:e]
                times = self.hist_time_[s:e]
                events = self.hist_event_[s:e]
                followees = self.follow_.indices[
                    self.follow_.indptr[u] : self.follow_.indptr[u + 1]
                ].astype(np.int64)
                interests = tuple(str(x) for x in (self.interests_[u] or ()))
            else:
                items, times = np.zeros(0, np.int64), np.zeros(0)
                events = np.zeros(0, np.int8)
                followees, interests = np.zeros(0, np.int64), ()
            extra = self.live_.get(uid, [])
            ctx_items = self._context_indices(uid, context)
            if extra or len(ctx_items):
                li = np.array([x[0] for x in extra] + ctx_items.tolist(), np.int64)
                lt = np.array([x[1] for x in extra] + [np.nan] * len(ctx_items))
                le = np.array([x[2] for x in extra] + [0] * len(ctx_items), np.int8)
                items, times, events = dedupe_history(
                    np.concatenate([items, li]),
                    np.concatenate([times, lt]),
                    np.concatenate([events, le]),
                )
            out.append(
                UserContext(
                    user=uid,
                    user_idx=int(u),
                    history=np.asarray(items, np.int64),
                    history_time=np.asarray(times, np.float64),
                    history_event=np.asarray(events, np.int8),
                    followees=followees,
                    interests=interests,
                    now=when,
                )
            )
        return out

    def _now(self) -> float:
        """The newest time the model knows of: training data or folded-in events."""
        times = [t for t in (self.now_, self._live_latest()) if math.isfinite(t)]
        return max(times) if times else float("nan")

    def _live_latest(self) -> float:
        cached: float | None = getattr(self, "_live_now", None)
        if cached is None:
            times = [t for evs in self.live_.values() for _, t, _ in evs if math.isfinite(t)]
            cached = max(times) if times else float("nan")
            self._live_now = cached
        return cached

    # ------------------------------------------------------------------ serving
    def recommend_contexts(
        self,
        contexts: Sequence[UserContext],
        k: int = 10,
        *,
        explain: bool = False,
        allowed: np.ndarray | None = None,
        exclude_seen: bool | None = None,
        exposure: ExposureCounter | None = None,
    ) -> list[ServedList]:
        """The final list of each context (the serving entry point).

        allowed: optional bool mask over the catalog (a request's candidates / item filters).
        exclude_seen: defaults to the config's `filters.exclude_seen`; sources never propose
        history items, so False only lets the backfill show them.
        exposure: what the exposure penalty counts (`rerank.exposure_penalty` > 0): by default
        the process's serving counter when `rerank.exposure_half_life` is set, else a counter
        of this call alone (contexts served in the order given); `recommend` passes one counter
        through all its batches.
        """
        self._check_fitted()
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if not contexts:
            return []
        cfg = self.config
        seen = cfg.filters.exclude_seen if exclude_seen is None else exclude_seen
        if exposure is None:
            exposure = self._exposure_counter()
        frame = self.stage_.frame(contexts)
        scores = self._rank(frame, contexts)
        bounds = np.searchsorted(frame.row, np.arange(len(contexts) + 1))
        out = []
        for r, ctx in enumerate(contexts):
            sel = np.arange(bounds[r], bounds[r + 1])
            items, shown = self._final_list(
                ctx, frame.item[sel], scores[sel], k, allowed, seen, exposure
            )
            explanations = None
            if explain:
                pos = {int(i): int(j) for j, i in enumerate(frame.item[sel])}
                explanations = tuple(
                    self.explainer_.explain(
                        ctx,
                        int(i),
                        self._hits(frame, sel[pos[int(i)]]) if int(i) in pos else [],
                        self.stage_.sources,
                        float(s),
                    )
                    for i, s in zip(items, shown, strict=True)
                )
            out.append(
                ServedList(
                    ctx.user,
                    items,
                    tuple(str(x) for x in self.items_.lookup(items)),
                    shown,
                    explanations,
                )
            )
        return out

    def _rank(self, frame: CandidateFrame, contexts: Sequence[UserContext]) -> np.ndarray:
        """Each candidate's score: the ranker's (fusion without one), or for the users of a
        segment the fallback check gave to a source or popularity, that order's
        (`serendip.pipeline.fallback.order_scores`, the ranker breaking its ties)."""
        if len(frame) == 0:
            return np.zeros(0, np.float32)
        if self.ranker_ is None:
            scores = fusion_scores(frame)
        else:
            scores = self.ranker_.predict(self.stage_.features(frame, contexts))
        report = self.report_.fallback
        if report is None or not report.active:
            return scores
        choice = np.array([report.choice(segment_of(c)) for c in contexts], dtype=object)
        out = scores
        for method in set(choice.tolist()) - {RANKER}:
            rows = (choice == method)[frame.row]
            out = np.where(rows, order_scores(frame, method, scores, self.popularity_), out)
        return np.asarray(out, np.float32)

    @property
    def fallback(self) -> FallbackReport | None:
        """The fit's fallback check: what serves each segment of users, with the validation
        scores it was chosen by (None: not run, e.g. an artifact from before the check)."""
        self._check_fitted()
        return self.report_.fallback

    def _hits(self, frame: CandidateFrame, row: int) -> list[SourceHit]:
        return [
            SourceHit(name, float(frame.score[row, j]), float(frame.rank[row, j]))
            for j, name in enumerate(frame.sources)
            if not np.isnan(frame.rank[row, j])
        ]

    def _final_list(
        self,
        ctx: UserContext,
        items: np.ndarray,
        scores: np.ndarray,
        k: int,
        allowed: np.ndarray | None,
        exclude_seen: bool,
        exposure: ExposureCounter | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Filters, re-ranking, then a popularity backfill when the candidates run short (so a
        list is full whenever the catalog allows; backfilled scores continue below the last).
        The final list is recorded in `exposure` (when given) for the lists served after it."""
        ok = self._rules_allow(items, ctx, allowed, exclude_seen)
        items, scores = items[ok], scores[ok]
        params = self.config.rerank
        wants_net = params.oon_target is not None or params.oon_boost > 0
        in_net = self._in_network(ctx, items) if wants_net else None
        chosen, shown = rerank(
            items,
            scores,
            k,
            params,
            content=self.content_,
            author=self.rules_.author,
            in_network=in_net,
            popularity=self._popularity_scale() if params.popularity_penalty > 0 else None,
            long_tail=self._long_tail() if params.tail_target is not None else None,
            exposure=exposure.shown(items) if exposure is not None else None,
        )
        if len(chosen) < k:
            extra = self._backfill(ctx, chosen, k - len(chosen), allowed, exclude_seen)
            if len(extra):
                last = float(shown[-1]) if len(shown) else 0.0
                fill = (last - 1.0 - 1e-3 * np.arange(len(extra))).astype(np.float32)
                chosen = np.concatenate([chosen, extra])
                shown = np.concatenate([shown, fill])
        if exposure is not None:
            exposure.record(chosen)
        return chosen, shown

    def _exposure_counter(self) -> ExposureCounter | None:
        """What a call counts exposure in, when the exposure penalty is on: the serving counter
        kept across calls (`rerank.exposure_half_life` set; created on first use, anew when the
        catalog or the half-life changed), else a fresh counter for this call alone."""
        params = self.config.rerank
        if params.exposure_penalty <= 0:
            return None
        if params.exposure_half_life is None:
            return ExposureCounter(len(self.items_))
        counter: ExposureCounter | None = getattr(self, "_serving_exposure", None)
        if (
            counter is None
            or counter.n_items != len(self.items_)
            or counter.half_life != params.exposure_half_life
        ):
            counter = ExposureCounter(len(self.items_), params.exposure_half_life)
            self._serving_exposure = counter
        return counter

    def _backfill(
        self,
        ctx: UserContext,
        chosen: np.ndarray,
        n: int,
        allowed: np.ndarray | None,
        exclude_seen: bool,
    ) -> np.ndarray:
        order = self._popular_order()
        ok = self._rules_allow(order, ctx, allowed, exclude_seen)
        if len(chosen):
            ok &= ~np.isin(order, chosen)
        return order[ok][:n]

    def _rules_allow(
        self,
        items: np.ndarray,
        ctx: UserContext,
        allowed: np.ndarray | None,
        exclude_seen: bool,
    ) -> np.ndarray:
        """Per item: passes the config's filters, the catalog rules and the request's mask."""
        f = self.config.filters
        return allowed_candidates(
            items,
            ctx,
            self.rules_,
            exclude_seen=exclude_seen,
            exclude_unpublished=f.exclude_unpublished,
            exclude_own=f.exclude_own,
            extra_allowed=allowed,
        )

    def _popular_order(self) -> np.ndarray:
        cached: np.ndarray | None = getattr(self, "_pop_order", None)
        if cached is None:
            cached = np.lexsort((np.arange(len(self.popularity_)), -self.popularity_))
            self._pop_order = cached
        return cached

    def _popularity_scale(self) -> np.ndarray:
        """Per item log(1 + interactions) over the catalog's largest, in [0, 1]: what the
        re-ranking's popularity penalty multiplies."""
        cached: np.ndarray | None = getattr(self, "_pop_scale", None)
        if cached is None:
            logp = np.log1p(np.asarray(self.popularity_, np.float64))
            top = float(logp.max()) if len(logp) else 0.0
            cached = logp / top if top > 0 else np.zeros_like(logp)
            self._pop_scale = cached
        return cached

    def _long_tail(self) -> np.ndarray:
        """Per item: outside the popular head (the most interacted-with items that together
        hold half of the training interactions; ties broken by item index)."""
        cached: np.ndarray | None = getattr(self, "_tail", None)
        if cached is None:
            pop = np.asarray(self.popularity_, np.float64)
            order = self._popular_order()
            total = float(pop.sum())
            cached = np.ones(len(pop), dtype=bool)
            if total > 0:
                before = np.cumsum(pop[order]) - pop[order]  # interactions held by more popular
                cached[order[before < 0.5 * total]] = False
            self._tail = cached
        return cached

    def _in_network(self, ctx: UserContext, items: np.ndarray) -> np.ndarray:
        """Per item: did a followee of the user interact with it (fitted data plus folded-in
        events) or author it? The complement is what the out-of-network metrics count."""
        f = np.asarray(ctx.followees, np.int64)
        f = f[(f >= 0) & (f < self.train_.shape[0])]
        if len(f) == 0 or len(items) == 0:
            return np.zeros(len(items), dtype=bool)
        t = self.train_
        touched = np.concatenate([t.indices[t.indptr[v] : t.indptr[v + 1]] for v in f])
        return np.isin(items, touched) | np.isin(self.author_idx_[items], f)

    # ------------------------------------------------------------------ the contract
    def _recommend_rows(self, request: RecRequest) -> tuple[np.ndarray, np.ndarray]:
        """`recommend` through the whole pipeline (contexts from the fitted state, folded-in
        events and the request's `context`; request time = the newest time known), 256 users a
        batch by default."""
        out_items, out_scores = empty_lists(len(request), request.k)
        batch = request.batch_size or 256
        exposure = self._exposure_counter()  # one count over every batch of this call
        for start in range(0, len(request), batch):
            ids = [str(u) for u in request.users[start : start + batch]]
            contexts = self.user_contexts(ids, context=request.context)
            served = self.recommend_contexts(
                contexts,
                request.k,
                allowed=request.allowed,
                exclude_seen=request.exclude_seen,
                exposure=exposure,
            )
            for j, s in enumerate(served):
                n = len(s.items)
                out_items[start + j, :n] = s.items
                out_scores[start + j, :n] = s.scores
        return out_items, out_scores

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense scores for the base class's paths: the final list's displayed scores, -inf
        for every item the pipeline would not show (it ranks candidates, not the catalog)."""
        return np.vstack([self._full_scores(self.users_.id(int(u))) for u in user_idx])

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        return self._full_scores("\x00cold")

    def _full_scores(self, user: str) -> np.ndarray:
        ctx = self.user_contexts([user])[0]
        depth = self.config.rerank.pool + 50
        # a fresh exposure count: a score is the user's own, it neither feels nor feeds the
        # serving counter
        fresh = ExposureCounter(len(self.items_))
        served = self.recommend_contexts([ctx], depth, exposure=fresh)[0]
        out = np.full(len(self.items_), -np.inf, np.float32)
        out[served.items] = served.scores
        return out

    def score(self, user: str, items: Sequence[str] | np.ndarray) -> np.ndarray:
        """Displayed scores of the given items in the user's (deep) final list; -inf for items
        the pipeline would not show, NaN for unknown items."""
        self._check_fitted()
        full = self._full_scores(str(user))
        iidx = self.items_.indices(np.asarray(list(items), dtype=object))
        out = np.full(len(iidx), np.nan, np.float32)
        ok = iidx >= 0
        out[ok] = full[iidx[ok]]
        return out

    def _similar(self, item_idx: int) -> np.ndarray:
        """Item similarity of the first source built on a zoo model that defines one."""
        for source in self.stage_.sources.values():
            model = getattr(source, "model_", None)
            if model is not None:
                try:
                    return np.asarray(model.item_similarities(item_idx), dtype=np.float32)
                except SerendipError:
                    continue
        raise SerendipError(f"model '{self.name}' has no source that defines item similarity")

    def explain(self, user: str, item: str) -> Explanation:
        """Why `item` is (or would be) recommended to `user`: the proposing sources' checked
        evidence and a sentence (see `serendip.pipeline.explain`)."""
        self._check_fitted()
        i = self.items_.get(str(item))
        if i < 0:
            raise SerendipError(f"unknown item '{item}'")
        ctx = self.user_contexts([str(user)])[0]
        frame = self.stage_.frame([ctx])
        rows = np.flatnonzero(frame.item == i)
        if len(rows):
            hits = self._hits(frame, int(rows[0]))
        else:  # not a candidate now: let every source say what it knows
            hits = [SourceHit(name, float("nan"), math.inf) for name in self.stage_.sources]
        score = float(self.score(str(user), [str(item)])[0])
        return self.explainer_.explain(ctx, i, hits, self.stage_.sources, score)

    # ------------------------------------------------------------------ live state
    def _update(self, events: pd.DataFrame) -> None:
        """Fold events (user, item and optionally timestamp, event) into the users' histories:
        the next request sees them (history sources, seen filter, in-network checks); the
        fitted sources and the ranker stay as they are until the next fit."""
        for col in ("user", "item"):
            if col not in events:
                raise DataError(f"events need a '{col}' column", field=col)
        users = events["user"].astype(str).to_numpy()
        iidx = self.items_.indices(events["item"].astype(str).to_numpy())
        ts = (
            pd.to_numeric(events["timestamp"], errors="coerce").to_numpy(np.float64)
            if "timestamp" in events
            else np.full(len(events), np.nan)
        )
        names = (
            events["event"].fillna("view").astype(str).str.lower().to_numpy()
            if "event" in events
            else np.full(len(events), "view", dtype=object)
        )
        codes = np.array([EVENT_CODES.get(str(n), -1) for n in names], dtype=np.int64)
        if (codes < 0).any():
            bad = names[int(np.argmax(codes < 0))]
            raise DataError(
                f"unknown event type '{bad}'; valid: {', '.join(EVENT_CODES)}", field="event"
            )
        ok = iidx >= 0
        for u, i, t, c in zip(users[ok], iidx[ok], ts[ok], codes[ok], strict=True):
            self.live_.setdefault(str(u), []).append((int(i), float(t), int(c)))
        uidx = self.users_.indices(users)
        known = ok & (uidx >= 0)
        if known.any():
            add = sp.csr_matrix(
                (np.ones(int(known.sum()), np.float32), (uidx[known], iidx[known])),
                shape=self.train_.shape,
            )
            merged = (self.train_ + add).tocsr()
            merged.data[:] = 1.0
            merged.sort_indices()
            self.train_ = merged
            self.popularity_ = np.asarray(merged.sum(axis=0)).ravel().astype(np.float32)
        self._derive()

    def set_private(self, flags: Mapping[str, bool]) -> list[str]:
        """Live privacy changes (user ID -> private), without a refit: from the next request a
        user who turned private is neither cited nor counted in explanations, and their activity
        is no longer used as social evidence for anyone (in-network, explore); a user who turned
        public may be again. Unknown users are ignored (they have no fitted activity). Returns
        the users whose flag changed. Lists computed before the change are the caller's to drop
        (`service.runtime` recomputes the followers' lists)."""
        self._check_fitted()
        changed = [
            (u, bool(flag))
            for uid, flag in flags.items()
            if (u := self.users_.get(str(uid))) >= 0 and bool(self.private_[u]) != bool(flag)
        ]
        if not changed:
            return []
        idx = np.array([u for u, _ in changed], dtype=np.int64)
        val = np.array([f for _, f in changed], dtype=bool)
        # copies, not in-place writes: the arrays may be read-only (memory-mapped artifacts)
        # and are shared by every reader of the previous state
        self.private_ = self.private_.copy()
        self.private_[idx] = val
        self.explainer_.private = self.private_
        for source in self.stage_.sources.values():
            social = getattr(source, "social_", None)
            if social is not None:
                private = social.private.copy()
                private[idx[idx < len(private)]] = val[idx < len(private)]
                source.social_ = dataclasses.replace(social, private=private)  # type: ignore[attr-defined]
        return [self.users_.id(int(u)) for u in idx]

    def remove_items(self, items: Iterable[str]) -> None:
        """Never show these items again (deleted from the catalog); unknown IDs are ignored."""
        self._check_fitted()
        idx = self.items_.indices(np.asarray(list(items), dtype=object))
        self.removed_[idx[idx >= 0]] = True
        self._derive()

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays: dict[str, Any] = {
            "hist.indptr": self.hist_indptr_,
            "hist.items": self.hist_items_,
            "hist.time": self.hist_time_,
            "hist.event": self.hist_event_,
            "follow": self.follow_,
            "interests": np.array(
                [_SEP.join(str(x) for x in (v or ())) for v in self.interests_], dtype=str
            ),
            "private": self.private_,
            "titles": self.titles_.astype(str),
            "created_at": self.created_at_,
            "content": self.content_,
            "removed": self.removed_,
        }
        live = [(u, i, t, c) for u, evs in self.live_.items() for i, t, c in evs]
        arrays["live.user"] = np.array([x[0] for x in live], dtype=str)
        arrays["live.item"] = np.array([x[1] for x in live], dtype=np.int64)
        arrays["live.time"] = np.array([x[2] for x in live], dtype=np.float64)
        arrays["live.event"] = np.array([x[3] for x in live], dtype=np.int8)
        source_meta: dict[str, Any] = {}
        for name, source in self.stage_.sources.items():
            a, m = source._state()
            source_meta[name] = m
            arrays.update({f"src.{name}.{k}": v for k, v in a.items()})
        fa, fm = self.stage_.builder._state()
        arrays.update({f"feat.{k}": v for k, v in fa.items()})
        meta = {
            "now": self.now_ if math.isfinite(self.now_) else None,
            "sources": source_meta,
            "features": fm,
            "ranker": None if self.ranker_ is None else _RANKER_FILE,
            "report": self.report_.to_dict(),
            "fallback": None if self.report_.fallback is None else self.report_.fallback.to_dict(),
        }
        return arrays, meta

    def _save_extra(self, directory: Path) -> None:
        if self.ranker_ is not None:
            (directory / _RANKER_FILE).write_text(self.ranker_.to_string())

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        from serendip.pipeline.sources import make_source

        cfg = self.config
        self.hist_indptr_ = np.asarray(arrays["hist.indptr"], np.int64)
        self.hist_items_ = np.asarray(arrays["hist.items"], np.int64)
        self.hist_time_ = np.asarray(arrays["hist.time"], np.float64)
        self.hist_event_ = np.asarray(arrays["hist.event"], np.int8)
        self.follow_ = sp.csr_matrix(arrays["follow"], dtype=np.float32)
        self.follow_.sort_indices()
        interests = np.empty(len(arrays["interests"]), dtype=object)
        interests[:] = [tuple(s.split(_SEP)) if s else () for s in arrays["interests"].tolist()]
        self.interests_ = interests
        self.private_ = np.asarray(arrays["private"], dtype=bool)
        self.titles_ = np.asarray(arrays["titles"]).astype(object)
        self.created_at_ = np.asarray(arrays["created_at"], np.float64)
        self.content_ = sp.csr_matrix(arrays["content"], dtype=np.float32)
        self.removed_ = np.asarray(arrays["removed"], dtype=bool).copy()
        self.now_ = float("nan") if meta.get("now") is None else float(meta["now"])
        self.live_ = {}
        for u, i, t, c in zip(
            arrays["live.user"].tolist(),
            arrays["live.item"].tolist(),
            arrays["live.time"].tolist(),
            arrays["live.event"].tolist(),
            strict=True,
        ):
            self.live_.setdefault(str(u), []).append((int(i), float(t), int(c)))
        stage = StageOne.__new__(StageOne)
        stage.quotas = cfg.quotas()
        stage.sources = {}
        for name, m in meta["sources"].items():
            prefix = f"src.{name}."
            src = make_source(name, **m.get("params", {}))
            src._set_state(
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}, m
            )
            stage.sources[name] = src
        from serendip.pipeline.features import FeatureBuilder

        builder = FeatureBuilder(list(stage.quotas))
        builder._set_state(
            {k[5:]: v for k, v in arrays.items() if k.startswith("feat.")}, meta["features"]
        )
        stage.builder = builder
        self.stage_ = stage
        self._ranker_file = meta.get("ranker")
        rep = meta.get("report") or {}
        self.report_ = RankerReport(
            cut=float("nan") if rep.get("cut") is None else float(rep["cut"]),
            n_label_users=int(rep.get("n_label_users", 0)),
            n_train_groups=int(rep.get("n_train_groups", 0)),
            n_valid_groups=int(rep.get("n_valid_groups", 0)),
            n_rows=int(rep.get("n_rows", 0)),
            positive_share=float(rep.get("positive_share", 0.0)),
            best_iteration=int(rep.get("best_iteration", 0)),
            valid_ndcg=rep.get("valid_ndcg"),
            # artifacts from before the fallback check have none: the ranker serves everyone
            fallback=FallbackReport.from_dict(meta["fallback"]) if meta.get("fallback") else None,
        )

    def _load_extra(self, directory: Path) -> None:
        limit_threads()  # a loaded pipeline serves requests one user at a time
        self.ranker_ = None
        if self._ranker_file:
            path = directory / str(self._ranker_file)
            if not path.is_file():
                raise SerendipError(f"{directory}: damaged pipeline artifact (no {path.name})")
            self.ranker_ = LambdaRanker.from_string(
                path.read_text(), self.config.ranker, seed=self.config.seed
            )
        self._derive()

    # ------------------------------------------------------------------ batch serving
    # Public entry points for a server that precomputes candidates in batch and finishes each
    # request itself (`serendip.service.runtime`): the expensive half of `recommend_contexts`
    # for many users at once, then the cheap half per request.
    @property
    def rerank_pool(self) -> int:
        """How many of the best allowed candidates enter the re-ranking."""
        return self.config.rerank.pool

    def ranked_candidates(
        self, contexts: Sequence[UserContext], *, depth: int | None = None
    ) -> list[RankedCandidates]:
        """Each context's candidates (sources, merge, ranker) that pass the static rules (seen,
        unpublished, own, blocked, removed; no request mask), best ranker score first (ties by
        item index, the re-ranking's order), cut to the `depth` best (None: all). Batch first:
        one call for many users costs far less per user than one call each."""
        self._check_fitted()
        if not contexts:
            return []
        seen = self.config.filters.exclude_seen
        frame = self.stage_.frame(contexts)
        scores = np.asarray(self._rank(frame, contexts), dtype=np.float32)
        bounds = np.searchsorted(frame.row, np.arange(len(contexts) + 1))
        out = []
        for r, ctx in enumerate(contexts):
            sel = np.arange(bounds[r], bounds[r + 1])
            sel = sel[self._rules_allow(frame.item[sel], ctx, None, seen)]
            sel = sel[np.lexsort((frame.item[sel], -scores[sel].astype(np.float64)))]
            total = len(sel)
            if depth is not None:
                sel = sel[:depth]
            out.append(
                RankedCandidates(
                    items=frame.item[sel].astype(np.int64),
                    scores=scores[sel],
                    sources=frame.sources,
                    source_score=np.asarray(frame.score[sel], np.float32),
                    source_rank=np.asarray(frame.rank[sel], np.float32),
                    total=total,
                )
            )
        return out

    def final_list(
        self,
        ctx: UserContext,
        items: np.ndarray,
        scores: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The cheap half for one user: filters (config rules plus the `allowed` mask),
        re-ranking and backfill over given candidates; (items, displayed scores). The exposure
        penalty, when on, counts in the serving counter (`rerank.exposure_half_life`)."""
        return self._final_list(
            ctx,
            items,
            scores,
            k,
            allowed,
            self.config.filters.exclude_seen,
            self._exposure_counter(),
        )

    @property
    def stateless_rerank(self) -> bool:
        """Does a final list depend only on the user's candidates and the request (no exposure
        counted across requests)? Then a server may compute it ahead and reuse it."""
        return self.config.rerank.exposure_penalty <= 0.0

    def explain_candidate(
        self,
        ctx: UserContext,
        item: int,
        sources: Sequence[str],
        source_score: np.ndarray,
        source_rank: np.ndarray,
        score: float,
    ) -> Explanation:
        """The explanation of candidate `item` from its per-source scores and ranks (NaN rank:
        that source did not propose it), as `recommend_contexts(explain=True)` gives."""
        hits = [
            SourceHit(name, float(source_score[j]), float(source_rank[j]))
            for j, name in enumerate(sources)
            if not np.isnan(source_rank[j])
        ]
        return self.explainer_.explain(ctx, int(item), hits, self.stage_.sources, float(score))


def _history_store(
    n_users: int,
    n_items: int,
    user: np.ndarray,
    item: np.ndarray,
    timestamp: np.ndarray,
    event: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-user deduplicated history as CSR-like arrays (indptr, items, times, events): one
    entry per (user, item), its latest time and strongest event, most recent first (unknown
    times last, ties by item index) -- the order `dedupe_history` gives, built for all users
    at once."""
    if len(user) == 0:
        z = np.zeros(0)
        return np.zeros(n_users + 1, np.int64), z.astype(np.int64), z, z.astype(np.int8)
    key = user.astype(np.int64) * n_items + item.astype(np.int64)
    t = np.where(np.isnan(timestamp), -np.inf, timestamp)
    order = np.argsort(key, kind="stable")
    k = key[order]
    uniq, start = np.unique(k, return_index=True)
    tmax = np.maximum.reduceat(t[order], start)
    emax = np.maximum.reduceat(event[order].astype(np.int8), start)
    users = uniq // n_items
    items = uniq % n_items
    o = np.lexsort((items, -tmax, users))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    times = tmax[o]
    return (
        indptr.astype(np.int64),
        items[o].astype(np.int64),
        np.where(np.isneginf(times), np.nan, times),
        emax[o].astype(np.int8),
    )
