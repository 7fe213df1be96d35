"""Explanations name only true evidence, and never a user whose activity is private."""

from __future__ import annotations

import dataclasses
import re
from functools import cache

import numpy as np
import pytest

from serendip.data.dataset import Dataset, UserTable
from serendip.models.base import Evidence
from serendip.pipeline.candidates import CandidateSource, Proposal, UserContext
from serendip.pipeline.explain import Explainer, SourceHit
from serendip.pipeline.recommender import PipelineRecommender
from tests.conftest import make_toy_platform


def _with_private(ds: Dataset, share: float, seed: int) -> Dataset:
    private = np.random.default_rng(seed).random(ds.n_users) < share
    m = ds.user_meta
    meta = UserTable(m.created_at, m.interests, private, dict(m.attributes))
    return dataclasses.replace(ds, user_meta=meta, _cache={})


@cache
def _fitted() -> tuple[Dataset, PipelineRecommender]:
    ds = _with_private(make_toy_platform(seed=2, n_users=80, n_items=150), 0.35, seed=0)
    model = PipelineRecommender(dict(PipelineRecommender.quick_params)).fit(ds)
    return ds, model


def test_every_item_is_explained_with_true_evidence_and_no_private_user() -> None:
    ds, model = _fitted()
    seen = ds.seen()
    follow = ds.social.adjacency(ds.n_users)
    private_ids = set(ds.users.ids[ds.user_meta.private].tolist())
    assert private_ids
    users = list(ds.users.ids[:50])
    served = model.recommend_contexts(model.user_contexts(users), 10, explain=True)
    kinds = set()
    for s in served:
        u = ds.users.index(s.user)
        history = set(seen[u].indices.tolist())
        followees = set(follow[u].indices.tolist())
        assert s.explanations is not None and len(s.explanations) == len(s.items)
        for item, exp in zip(s.items, s.explanations, strict=True):
            assert exp.item == str(ds.items.id(int(item))) and exp.text
            named = set(re.findall(r"u\d{3}", exp.text))
            assert not named & private_ids, exp.text
            for ev in exp.evidence:
                kinds.add(ev.kind)
                if ev.kind == "item":
                    assert ds.items.index(ev.id) in history, "cited item outside the history"
                if ev.kind in ("followee", "user", "author"):
                    assert ev.id not in private_ids, "a private user is cited"
                    v = ds.users.index(ev.id)
                if ev.kind == "followee":
                    assert v in followees
                    assert seen[v, int(item)] > 0, "cited followee never interacted with it"
                if ev.kind == "user":
                    assert seen[v, int(item)] > 0
                if ev.kind == "author":
                    assert v in followees and ds.item_meta.author[int(item)] == ev.id
            m = re.match(r"(\d+) (people|person) you follow", exp.text)
            if m:
                assert int(m.group(1)) == sum(e.kind == "followee" for e in exp.evidence)
    assert {"item", "followee"} <= kinds  # the test saw both kinds of evidence


def test_explain_of_the_model_agrees_with_the_served_explanation() -> None:
    ds, model = _fitted()
    u = str(ds.users.ids[3])
    served = model.recommend_contexts(model.user_contexts([u]), 5, explain=True)[0]
    assert served.explanations is not None
    for item, exp in zip(served.item_ids, served.explanations, strict=True):
        again = model.explain(u, item)
        assert again.text == exp.text
        assert again.evidence == exp.evidence


class _Liar(CandidateSource):
    """A source whose evidence is all wrong: an item the user never had, a followee who never
    touched the item, a private followee, a non-followed user posing as a followee."""

    name = "liar"
    kind = "followee"

    def fit(self, dataset: Dataset) -> _Liar:
        return self

    def propose(self, ctx: UserContext, n: int) -> Proposal:
        return Proposal.empty()

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        return [
            Evidence("item", "i9", 1.0),
            Evidence("followee", "bob", 1.0),
            Evidence("followee", "carol", 1.0),
            Evidence("followee", "dave", 1.0),
        ]


class _Honest(_Liar):
    name = "honest"

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        return [Evidence("followee", "erin", 0.5), Evidence("followee", "carol", 0.9)]


@pytest.fixture()
def explainer() -> Explainer:
    from scipy import sparse as sp

    from serendip.data.vocabulary import Vocabulary

    users = Vocabulary.from_unique(np.array(["me", "bob", "carol", "dave", "erin"]))
    items = Vocabulary.from_unique(np.array([f"i{j}" for j in range(10)]))
    inter = np.zeros((5, 10))
    inter[2, 1] = inter[3, 1] = inter[4, 1] = 1  # carol, dave and erin touched i1; bob did not
    inter[0, 0] = 1
    return Explainer(
        items=items,
        users=users,
        titles=np.array([f"Title {j}" for j in range(10)], dtype=object),
        categories=np.array(["c"] * 10, dtype=object),
        item_authors=np.array([""] * 10, dtype=object),
        private=np.array([False, False, True, False, False]),
        interactions=sp.csr_matrix(inter),
    )


def test_false_or_private_evidence_is_dropped(explainer: Explainer) -> None:
    ctx = UserContext(
        user="me",
        user_idx=0,
        history=np.array([0]),
        history_time=np.array([np.nan]),
        history_event=np.zeros(1, np.int8),
        followees=np.array([1, 2, 4]),  # bob, carol (private), erin; not dave
    )
    sources = {"liar": _Liar(), "honest": _Honest()}
    hits = [SourceHit("liar", 1.0, 1), SourceHit("honest", 0.5, 2)]
    exp = explainer.explain(ctx, 1, hits, sources, 0.7)
    # the liar had nothing true to say; the honest source's private followee is dropped
    assert exp.text == "1 person you follow liked this"
    assert [(e.kind, e.id) for e in exp.evidence] == [("source", "honest"), ("followee", "erin")]
    alone = explainer.explain(ctx, 1, hits[:1], sources, 0.7)
    assert alone.text == "Recommended for you" and "carol" not in str(alone.to_dict())


def test_a_user_who_turns_private_is_no_longer_cited_nor_used_without_a_refit() -> None:
    ds = make_toy_platform(seed=2, n_users=80, n_items=150)  # everyone public at fit time
    model = PipelineRecommender(dict(PipelineRecommender.quick_params)).fit(ds)
    users = list(ds.users.ids[:50])

    def cited() -> dict[str, int]:
        out: dict[str, int] = {}
        served = model.recommend_contexts(model.user_contexts(users), 10, explain=True)
        for s in served:
            for exp in s.explanations or ():
                for ev in exp.evidence:
                    if ev.kind in ("followee", "user", "author"):
                        out[ev.id] = out.get(ev.id, 0) + 1
        return out

    before = cited()
    assert before, "the toy platform yields social explanations"
    top = max(before, key=lambda u: before[u])
    assert model.set_private({top: True, "nobody-known": True}) == [top]
    assert model.set_private({top: True}) == []  # no change, nothing to redo
    assert top not in cited()
    explained = [
        model.explain(u, i) for u in users[:5] for i in model.recommend([u], 3).item_ids(0)
    ]
    assert all(ev.id != top for e in explained for ev in e.evidence)
    assert model.set_private({top: False}) == [top]
    assert top in cited()  # public again: may be cited again
