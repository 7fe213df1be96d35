"""The serving contract: every model is served through an adapter that implements
`ServingModel`, and a runtime refuses to activate a model whose adapter does not."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import SerendipError
from serendip.models import Recommender
from serendip.models.baselines import Popularity
from serendip.models.factorization import IALS
from serendip.pipeline.recommender import PipelineRecommender
from serendip.pipeline.serving import PipelineServing, serving_model
from serendip.service.runtime import ModelRuntime
from serendip.serving import LiveUser, ServingModel, ZooServing
from tests.conftest import make_toy_platform


@cache
def _ds() -> Dataset:
    return make_toy_platform()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    ds = _ds()
    return {
        "ials": IALS(factors=8, iterations=5, regularization=1.0).fit(ds).save(base / "ials"),
        "popularity": Popularity().fit(ds).save(base / "popularity"),
        "pipeline": PipelineRecommender(dict(PipelineRecommender.quick_params))
        .fit(ds)
        .save(base / "pipeline"),
    }


def test_every_model_is_served_through_an_adapter_that_implements_the_contract(
    artifacts: dict[str, Path],
) -> None:
    pipe = serving_model(Recommender.load(artifacts["pipeline"]))
    zoo = serving_model(Recommender.load(artifacts["ials"]))
    assert isinstance(pipe, PipelineServing) and isinstance(pipe, ServingModel)
    assert isinstance(zoo, ZooServing) and isinstance(zoo, ServingModel)
    assert pipe.caches_candidates and not zoo.caches_candidates


class _Incomplete:
    """An adapter that lacks most of the contract (no candidates, final list, explanations)."""

    def __init__(self, model: Recommender) -> None:
        self.model = model


def test_a_model_whose_adapter_does_not_implement_the_contract_is_not_activated(
    artifacts: dict[str, Path],
) -> None:
    rt = ModelRuntime(adapter=_Incomplete)  # type: ignore[arg-type]
    with pytest.raises(SerendipError, match=r"'v1'.*_Incomplete does not implement the serving"):
        rt.load(artifacts["popularity"], "v1")
    assert rt.active_version is None
    good = ModelRuntime()
    good.load(artifacts["popularity"], "v1")
    good._adapter = _Incomplete  # type: ignore[assignment]
    with pytest.raises(SerendipError, match="does not implement"):
        good.load(artifacts["ials"], "v2")
    assert good.active_version == "v1"  # the old version keeps serving


def test_zoo_halves_equal_the_models_own_recommend(artifacts: dict[str, Path]) -> None:
    model = Recommender.load(artifacts["ials"])
    zoo = ZooServing(model)
    users = ["u001", "u010", "somebody-new"]
    contexts = zoo.contexts([LiveUser(u) for u in users])
    ranked = zoo.candidates(contexts)
    for user, ctx, cands in zip(users, contexts, ranked, strict=True):
        recs = model.recommend([user], 7)  # one user a call, as a request scores them
        items, scores = zoo.final_list(ctx, cands, 7, None)
        np.testing.assert_array_equal(items, recs.items[0][recs.items[0] >= 0])
        np.testing.assert_array_equal(scores, recs.scores[0][: len(items)])


def test_pipeline_halves_equal_its_serving_entry_point(artifacts: dict[str, Path]) -> None:
    model = Recommender.load(artifacts["pipeline"])
    assert isinstance(model, PipelineRecommender)
    serving = PipelineServing(model)
    users = ["u001", "u010", "somebody-new"]
    contexts = serving.contexts([LiveUser(u) for u in users])
    served = model.recommend_contexts(model.user_contexts(users), 8, explain=True)
    for ctx, cands, want in zip(contexts, serving.candidates(contexts), served, strict=True):
        items, scores = serving.final_list(ctx, cands, 8, None)
        np.testing.assert_array_equal(items, want.items)
        np.testing.assert_array_equal(scores, want.scores)
        assert want.explanations is not None
        pos = {int(i): j for j, i in enumerate(cands.items)}
        for i, s, expl in zip(items.tolist(), scores.tolist(), want.explanations, strict=True):
            j = pos.get(i, -1)
            nan = np.full(len(serving.sources), np.nan, np.float32)
            got = serving.explain(
                ctx,
                i,
                cands.source_score[j] if j >= 0 else nan,
                cands.source_rank[j] if j >= 0 else nan,
                s,
            )
            assert got == expl


def test_live_events_and_follows_reach_the_pipeline_context(artifacts: dict[str, Path]) -> None:
    model = Recommender.load(artifacts["pipeline"])
    assert isinstance(model, PipelineRecommender)
    serving = PipelineServing(model)
    fitted = serving.contexts([LiveUser("u001")])[0]
    item = next(
        str(model.items_.id(j)) for j in range(len(model.items_)) if j not in set(fitted.history)
    )
    followee = next(u for u in ("u050", "u051", "u052") if u not in serving.followees("u001"))
    live = LiveUser("u001", ((item, 2.0e9, "like"),), frozenset({followee}), frozenset())
    ctx = serving.contexts([live])[0]
    assert int(ctx.history[0]) == model.items_.index(item)  # the newest event comes first
    assert ctx.now == 2.0e9
    assert model.users_.index(followee) in set(ctx.followees.tolist())
