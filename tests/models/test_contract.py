"""The shared contract suite: every model of the registry is held to the same behaviour.

A new model needs no test code here: registering it (serendip.models.registry) enrols it, and it
runs with its own `quick_params`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, NotFittedError, SerendipError
from serendip.models import ItemFilter, Recommender, get_model_class
from serendip.models.registry import MODELS
from tests.conftest import make_toy_platform

K = 5


@cache
def _data() -> tuple[Dataset, Dataset]:
    """Toy platform and a train part of it (last interaction of each user held out)."""
    ds = make_toy_platform(seed=3)
    ts = ds.interactions.timestamp
    order = np.lexsort((ts, ds.interactions.user))
    last = np.zeros(ds.n_interactions, bool)
    users_sorted = ds.interactions.user[order]
    last[order[np.r_[users_sorted[1:] != users_sorted[:-1], True]]] = True
    return ds, ds.filter_interactions(~last)


def _model_class(name: str) -> type[Recommender]:
    try:
        return get_model_class(name)
    except ConfigError as exc:
        pytest.skip(f"model '{name}' not implemented yet: {exc}")


@cache
def _fitted(name: str) -> Recommender:
    cls = _model_class(name)
    _, train = _data()
    return cls(dict(cls.quick_params)).fit(train)


NAMES = sorted(MODELS)


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_registry_entry_matches_class(name: str) -> None:
    cls = _model_class(name)
    assert cls.name == name
    # `serendip models` lists the registry's text without importing the class (no torch):
    # the two must say the same thing.
    assert cls.description and cls.description == MODELS[name].description


def test_unknown_parameter_is_a_config_error_listing_valid_names(name: str) -> None:
    cls = _model_class(name)
    with pytest.raises(ConfigError, match="valid:"):
        cls({"definitely_not_a_param": 1})


def test_use_before_fit_is_a_clear_error(name: str) -> None:
    cls = _model_class(name)
    model = cls(dict(cls.quick_params))
    with pytest.raises(NotFittedError, match="not fitted"):
        model.recommend(["u001"], K)


def test_lists_are_sorted_unique_unseen_and_at_most_k(name: str) -> None:
    model = _fitted(name)
    _, train = _data()
    users = list(train.users.ids[:20])
    recs = model.recommend(users, K)
    assert recs.items.shape == (20, K)
    seen = train.seen()
    for r, u in enumerate(users):
        items = recs.items[r][recs.items[r] >= 0]
        scores = recs.scores[r][recs.items[r] >= 0]
        assert len(items) == len(set(items.tolist())), "duplicates in a list"
        assert np.all(np.diff(scores) <= 1e-6), "list not sorted by score"
        uidx = train.users.index(u)
        hist = set(seen.indices[seen.indptr[uidx] : seen.indptr[uidx + 1]].tolist())
        assert not hist & set(items.tolist()), "training items recommended"
        assert len(items) >= 1


def test_batch_equals_single_user(name: str) -> None:
    model = _fitted(name)
    _, train = _data()
    users = list(train.users.ids[:6])
    batch = model.recommend(users, K)
    for r, u in enumerate(users):
        single = model.recommend([u], K)
        np.testing.assert_array_equal(single.items[0], batch.items[r])


def test_deterministic_under_seed(name: str) -> None:
    cls = _model_class(name)
    _, train = _data()
    users = list(train.users.ids[:10])
    a = cls(dict(cls.quick_params)).fit(train).recommend(users, K)
    b = _fitted(name).recommend(users, K)
    np.testing.assert_array_equal(a.items, b.items)


def test_unknown_user_takes_the_cold_start_path(name: str) -> None:
    model = _fitted(name)
    recs = model.recommend(["nobody-knows-me"], K)
    assert (recs.items[0] >= 0).sum() == K
    ds, _ = _data()
    hist = list(ds.items.ids[:3])
    recs = model.recommend(["nobody-knows-me"], K, context={"nobody-knows-me": hist})
    got = set(recs.item_ids(0))
    assert got and not got & set(hist)


def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    model = _fitted(name)
    _, train = _data()
    users = list(train.users.ids[:10])
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.recommend(users, K).items, model.recommend(users, K).items)
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "m").iterdir())


def test_score_agrees_with_ranking(name: str) -> None:
    model = _fitted(name)
    _, train = _data()
    u = str(train.users.ids[0])
    recs = model.recommend([u], K)
    s = model.score(u, recs.item_ids(0))
    np.testing.assert_allclose(s, recs.scores[0][: len(s)], rtol=1e-4, atol=1e-5)


def test_candidates_and_filters_are_respected(name: str) -> None:
    model = _fitted(name)
    ds, train = _data()
    u = str(train.users.ids[1])
    cands = list(ds.items.ids[::3])
    recs = model.recommend([u], K, candidates=cands)
    assert set(recs.item_ids(0)) <= set(cands)
    recs = model.recommend([u], K, filters=ItemFilter(include_categories=frozenset({"cat1"})))
    cat = dict(zip(ds.items.ids, ds.item_meta.category, strict=True))
    assert all(cat[i] == "cat1" for i in recs.item_ids(0))


def test_explain_names_evidence_the_user_has(name: str) -> None:
    model = _fitted(name)
    _, train = _data()
    u = str(train.users.ids[2])
    item = model.recommend([u], 1).item_ids(0)[0]
    exp = model.explain(u, item)
    assert exp.user == u and exp.item == item and exp.model == name
    hist = set(train.items.lookup(train.seen()[train.users.index(u)].indices))
    for ev in exp.evidence:
        if ev.kind == "item":
            assert ev.id in hist, "explanation cites an item outside the user's history"


def test_similar_items_or_clear_refusal(name: str) -> None:
    model = _fitted(name)
    ds, _ = _data()
    item = str(ds.items.ids[0])
    try:
        sims = model.similar_items(item, K)
    except SerendipError as exc:
        assert "similarity" in str(exc)
        return
    assert item not in sims.item_ids(0)


def test_update_folds_in_events(name: str) -> None:
    cls = _model_class(name)
    if not cls.supports_update:
        model = _fitted(name)
        with pytest.raises(SerendipError):
            model.update(pd.DataFrame({"user": ["u001"], "item": ["i001"]}))
        return
    _, train = _data()
    model = cls(dict(cls.quick_params)).fit(train)
    u = str(train.users.ids[4])
    top = model.recommend([u], 1).item_ids(0)[0]
    model.update(pd.DataFrame({"user": [u], "item": [top], "event": ["like"], "timestamp": [2e9]}))
    assert top not in model.recommend([u], K).item_ids(0)
