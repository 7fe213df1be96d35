"""Collaborative source: any fitted model of the zoo, through its batch `recommend`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.data.vocabulary import Vocabulary
from serendip.errors import SerendipError
from serendip.models.ann import AnnRetrieval
from serendip.models.base import Evidence, Recommender
from serendip.models.registry import create_model, get_model_class
from serendip.pipeline.candidates import Proposal, UserContext
from serendip.pipeline.sources._base import SourceBase, SourceConfig

__all__ = ["CollaborativeConfig", "CollaborativeSource", "SecondCollaborativeSource"]

_PREFIX = "model."
_ANN_PREFIX = "ann."


class CollaborativeConfig(SourceConfig):
    """model: a registry name of the zoo (`serendip models`), e.g. "ials", "ease", "item-knn";
    params: its hyperparameters (validated by the model)."""

    model: str = "ials"
    params: dict[str, Any] = Field(default_factory=dict)


class CollaborativeSource(SourceBase[CollaborativeConfig]):
    """Top-n of a wrapped `Recommender`. Known users are scored in one batch call (their live
    history and exclusions are masked through `context`); users the model never saw take its
    cold-start path with their context history. Evidence: the model's own `explain` (history
    items, neighbours, factors...; social models never name private users).

    Use `CollaborativeSource.from_model(fitted)` to wrap a model fitted elsewhere.
    """

    name = "collaborative"
    kind = "item"
    Config: ClassVar[type[SourceConfig]] = CollaborativeConfig

    @classmethod
    def from_model(cls, model: Recommender, dataset: Dataset) -> Self:
        """Wrap an already fitted model (fitted on `dataset`'s vocabularies)."""
        src = cls(model=model.name, params=model.get_params())
        src._bind(dataset)
        src.model_ = model
        src._fitted = True
        return src

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        self.model_ = create_model(cfg.model, dict(cfg.params)).fit(dataset)

    # ------------------------------------------------------------------ proposing
    def propose(self, ctx: UserContext, n: int) -> Proposal:
        return self.propose_batch([ctx], n)[0]

    def propose_batch(self, contexts: Sequence[UserContext], n: int) -> list[Proposal]:
        self._check_fitted()
        if not contexts or n <= 0:
            return [Proposal.empty() for _ in contexts]
        ids = self.items_.ids
        users = [c.user for c in contexts]
        # the model shares the dataset's vocabulary, so the context's index says who it knows
        known = [c.user_idx >= 0 for c in contexts]
        # Only users the model never saw need their history as item IDs (the cold-start
        # fold-in, masked by the model). For known users the model masks its training items;
        # live history beyond them and exclusions are masked by `_finish`, so the model is
        # asked for that many extra items.
        context: dict[str, list[str]] = {}
        train = self.model_.train_
        extras = []
        for c, warm in zip(contexts, known, strict=True):
            hist = np.asarray(c.history, np.int64)
            hist = hist[(hist >= 0) & (hist < len(ids))]
            if warm:
                seen = train.indices[train.indptr[c.user_idx] : train.indptr[c.user_idx + 1]]
                extras.append(int(np.count_nonzero(~np.isin(hist, seen))) + len(c.exclude))
            else:
                extras.append(len(c.exclude))
                if len(hist):
                    context[c.user] = [str(x) for x in ids[hist]]
        nows = np.array([c.now for c in contexts], dtype=np.float64)
        latest = float(np.nanmax(nows)) if np.isfinite(nows).any() else np.inf
        cached = getattr(self, "_allowed", None)
        if cached is None or cached[0] != latest:
            created = ~(self.created_at_ > latest)
            cached = (latest, created, bool(created.all()))
            self._allowed = cached
        mask, everything = cached[1], cached[2]

        def allowed(idx: np.ndarray) -> np.ndarray:
            return mask[idx]

        extra = max(extras) + 16
        # no filter when every item exists at the request time (serving: now is after every
        # creation), so the model's retrieval is not handed a catalog-wide mask per request
        recs = self.model_.recommend(
            users,
            n + extra,
            exclude_seen=True,
            filters=None if everything else allowed,
            context=context or None,
        )
        out = []
        for row, c in enumerate(contexts):
            items, scores = recs.items[row], recs.scores[row]
            ok = items >= 0
            out.append(self._finish(c, items[ok], scores[ok], n))
        return out

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        self._check_fitted()
        try:
            return list(self.model_.evidence(ctx.user, self.items_.id(item)))
        except SerendipError:
            return []

    # ------------------------------------------------------------------ state
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        m = self.model_
        # ANN indexes travel in the arrays (serialised); other extra files cannot be embedded
        embeds_ann = isinstance(m, AnnRetrieval)
        if type(m)._save_extra is not Recommender._save_extra and not embeds_ann:
            raise SerendipError(
                f"model '{m.name}' keeps member artifacts and cannot be embedded in a source"
            )
        arrays, meta = self._base_state()
        inner, inner_meta = m._state()
        base: dict[str, Any] = {
            **m._core_state(),
            "_users": m.users_.ids.astype(str),
            "_items": m.items_.ids.astype(str),
        }
        for k, v in {**base, **inner}.items():
            arrays[_PREFIX + k] = v
        meta["model"] = {
            "name": m.name,
            "config": m.config.model_dump(mode="json"),
            "meta": inner_meta,
        }
        if embeds_ann:
            indexes, entries = m.ann_arrays()
            for purpose, data in indexes.items():
                arrays[_ANN_PREFIX + purpose] = data
            meta["model"]["ann_entries"] = entries
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._set_base_state(arrays, meta)
        info = meta["model"]
        inner = {k[len(_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_PREFIX)}
        m = get_model_class(info["name"])(info["config"])
        m._restore_core(
            inner,
            Vocabulary.shared(np.asarray(inner["_users"]).astype(str)),
            Vocabulary.shared(np.asarray(inner["_items"]).astype(str)),
        )
        m._set_state(inner, info["meta"])
        if isinstance(m, AnnRetrieval) and (info["meta"].get("ann") or {}).get("indexes"):
            entries = info.get("ann_entries")
            if entries is None:  # saved before the indexes travelled with it: rebuilt
                m.build_ann()
            else:
                m.set_ann_arrays(
                    {
                        k[len(_ANN_PREFIX) :]: v
                        for k, v in arrays.items()
                        if k.startswith(_ANN_PREFIX)
                    },
                    entries,
                )
        m._fitted = True
        self.model_ = m


class SecondCollaborativeSource(CollaborativeSource):
    """A second zoo model as its own source (`collaborative-2`, off by default): the ranker
    then sees both models' scores and ranks per candidate (a learned blend of two
    collaborative models), and the candidate union gains the second model's recall."""

    name = "collaborative-2"
