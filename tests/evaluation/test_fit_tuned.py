"""`tune_and_fit`: carve validation the way the user judges, tune, refit on all, record."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, DataError
from serendip.evaluation.fit_tuned import _is_fixed, choose_protocol, save_tuned, tune_and_fit
from serendip.models.base import Choice, FloatRange, IntRange, Recommender
from serendip.models.registry import get_model_class


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    from serendip.data.loaders import load_files
    from serendip.data.synthetic import generate_platform

    out = generate_platform("tiny", seed=0, out=tmp_path_factory.mktemp("tiny") / "platform")
    return load_files(out / "interactions.parquet")


def _untimed(ds: Dataset) -> Dataset:
    it = ds.interactions
    return ds.with_interactions(replace(it, timestamp=np.full(len(it), np.nan)))


def _pairs(ds: Dataset) -> int:
    it = ds.interactions
    return len(set(zip(it.user.tolist(), it.item.tolist(), strict=True)))


def _in_space(name: str, params: dict[str, object]) -> None:
    for key, dim in get_model_class(name).search_space.items():
        value = params[key]
        if isinstance(dim, (IntRange, FloatRange)):
            assert dim.low <= value <= dim.high, (key, value, dim)  # type: ignore[operator]
        elif isinstance(dim, Choice):
            assert value in dim.options, (key, value, dim)


def test_item_knn_three_trials_refit_on_all_and_recorded(tiny: Dataset, tmp_path: Path) -> None:
    seen: list[float] = []
    model, record = tune_and_fit(
        tiny, "item-knn", trials=3, progress=lambda t: seen.append(t.value)
    )
    assert record.protocol == "temporal"  # timestamps exist
    assert record.trials == 3 and len(seen) == 3
    assert record.best_value == max(seen) >= record.default_value == seen[0]
    assert record.prefer is None  # interactions only: no social graph, the best wins
    _in_space("item-knn", record.best_params)
    assert model.train_.nnz == _pairs(tiny)  # refit on all of the data, not the carving
    assert model.config.model_dump()["k"] == record.best_params["k"]

    out = save_tuned(model, record, tmp_path / "m")
    tuning = json.loads((out / "manifest.json").read_text())["tuning"]
    assert tuning["protocol"] == "temporal" and tuning["trials"] == 3
    assert tuning["metric"] == "ndcg@10 on validation"
    assert tuning["best_params"] == record.best_params
    assert tuning["best_validation"] >= tuning["default_validation"]
    assert tuning["seconds"] > 0 and tuning["budget_s"] is None
    assert Recommender.load(out).config.model_dump()["k"] == record.best_params["k"]


def test_random_without_timestamps_and_fixed_params(tiny: Dataset) -> None:
    untimed = _untimed(tiny)
    assert choose_protocol(untimed) == "random"
    _, record = tune_and_fit(untimed, "ease", params={"l2": 50.0}, trials=3)
    assert record.protocol == "random"
    assert record.searched == () and record.trials == 1  # nothing left to search
    assert record.best_params == {"l2": 50.0} == record.fixed_params


def test_bad_combinations(tiny: Dataset) -> None:
    with pytest.raises(DataError, match="needs interaction timestamps"):
        choose_protocol(_untimed(tiny), "temporal")
    with pytest.raises(ConfigError, match="unknown protocol 'weekly'"):
        tune_and_fit(tiny, "popularity", protocol="weekly")
    with pytest.raises(ConfigError, match="not both"):
        tune_and_fit(tiny, "popularity", trials=3, budget_s=5.0)


def test_given_params_fix_search_dimensions_by_name_or_nested_path() -> None:
    assert _is_fixed("l2", {"l2": 1.0}) and not _is_fixed("l2", {})
    # the pipeline's dotted dimensions, fixed by a dotted key or through nested groups
    assert _is_fixed("ranker.n_estimators", {"ranker.n_estimators": 5})
    assert _is_fixed("ranker.n_estimators", {"ranker": {"n_estimators": 5}})
    assert not _is_fixed("ranker.n_estimators", {"ranker": {"num_leaves": 5}})
    assert _is_fixed("sources.collaborative.quota", {"sources.collaborative": {"quota": 3}})
    assert not _is_fixed("sources.collaborative.quota", {"sources": {"explore": {"quota": 3}}})


def test_a_time_budget_stops_the_search(tiny: Dataset) -> None:
    _, record = tune_and_fit(tiny, "ease", budget_s=0.3)
    assert record.trials >= 1 and record.requested_trials is None
    assert record.to_dict()["budget_s"] == 0.3


def test_too_little_data_to_hold_out_says_so(tmp_path: Path) -> None:
    from serendip.data.loaders import load_files

    path = tmp_path / "few.csv"
    path.write_text("user,item\nu1,a\nu1,b\nu2,a\nu2,c\n")
    with pytest.raises(DataError, match=r"validation carving .* is empty"):
        tune_and_fit(load_files(path), "ease", trials=2)


def test_the_pipeline_learns_from_random_label_windows_on_a_random_carving(
    tiny: Dataset, tmp_path: Path
) -> None:
    from serendip.evaluation.fit_tuned import implied_params
    from serendip.pipeline.recommender import PipelineRecommender

    quick = dict(PipelineRecommender.quick_params)
    model, record = tune_and_fit(_untimed(tiny), "pipeline", params=quick, trials=1)
    assert record.protocol == "random"
    assert record.implied_params == {"ranker.label_split": "random"}
    assert record.best_params["ranker.label_split"] == "random"
    assert model.config.ranker.label_split == "random"  # the refit learns as it was tuned
    assert model.fallback is not None and model.fallback.carve == "random"
    out = save_tuned(model, record, tmp_path / "m", sections={"lists": {"k": 10}})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tuning"]["implied_params"] == {"ranker.label_split": "random"}
    assert manifest["lists"] == {"k": 10}
    # time-ordered carvings keep the time windows; labels the user fixed stay as given
    assert implied_params("pipeline", "temporal", {}) == {}
    assert implied_params("pipeline", "random", {"ranker": {"label_split": "per-user"}}) == {}
    assert implied_params("ease", "random", {}) == {}


def test_with_a_social_graph_ties_go_to_out_of_network_hits(toy_platform: Dataset) -> None:
    _, record = tune_and_fit(toy_platform, "item-knn", trials=4)
    assert record.prefer == "oon_hit_rate@10" and 1 <= record.chosen_among <= 4
    assert record.to_dict()["ties_decided_by"] == "oon_hit_rate@10"
    assert record.best_value in record.trial_values
    if record.chosen_among == 1:
        assert record.best_value == max(record.trial_values)


def test_ties_within_validation_noise_go_to_the_preferred_metric() -> None:
    from serendip.evaluation.tuning import choose_trial

    rng = np.random.default_rng(0)
    base = rng.random(400)
    per_user = {
        0: base,  # the best NDCG, little discovery
        1: base - 0.001 + rng.normal(0, 0.01, 400),  # tied (within noise), more discovery
        2: base - 0.2,  # clearly worse, the most discovery
    }
    values = [float(v.mean()) for v in per_user.values()]
    assert choose_trial(values, per_user, [0.10, 0.30, 0.90]) == (1, 2)
    assert choose_trial(values, {}, [0.10, 0.30, 0.90]) == (0, 1)  # no per-user scores
    assert choose_trial(values, per_user, [0.50, 0.30, 0.90]) == (0, 2)


def test_a_discovery_gain_within_its_own_noise_does_not_override_the_best() -> None:
    from serendip.evaluation.tuning import choose_trial

    rng = np.random.default_rng(1)
    base = rng.random(500)
    per_user = {0: base, 1: base - 0.001 + rng.normal(0, 0.01, 500)}  # tied on NDCG
    values = [float(v.mean()) for v in per_user.values()]
    hits = (rng.random(500) < 0.3).astype(np.float64)
    one_more = hits.copy()
    one_more[np.flatnonzero(hits == 0)[:2]] = 1.0  # two more users with a hit: noise
    many_more = hits.copy()
    many_more[np.flatnonzero(hits == 0)[:60]] = 1.0  # sixty more: beyond noise
    for other, expected in ((one_more, 0), (many_more, 1)):
        per_user_preferred = {0: hits, 1: other}
        preferred: list[float | None] = [float(hits.mean()), float(other.mean())]
        # the scalar rule alone takes any gain; the per-user rule only one beyond noise
        assert choose_trial(values, per_user, preferred) == (1, 2)
        assert choose_trial(values, per_user, preferred, per_user_preferred) == (expected, 2)


def test_seeded_settings_run_right_after_the_defaults(tiny: Dataset) -> None:
    from serendip.evaluation.tuning import tune_model

    ds = _untimed(tiny)
    from serendip.evaluation.splits import validation_split

    carve = validation_split(ds, "random", test_fraction=0.2, seed=0, min_interactions=5)
    space = get_model_class("item-knn").search_space
    result = tune_model(
        "item-knn",
        carve.train,
        carve.test,
        space=space,
        n_trials=4,
        seeds=[{"k": 7}, {"not-a-dimension": 1}, {"k": 9}],
    )
    ks = [t.params.get("k") for t in result.trials]
    assert len(ks) == 4 and ks[1:3] == [7, 9]  # the unknown seed is skipped, not run
    # seeds count towards the trials: two trials leave room for the defaults and one seed
    two = tune_model("item-knn", carve.train, carve.test, space=space, n_trials=2,
                     seeds=[{"k": 7}, {"k": 9}])  # fmt: skip
    assert [t.params.get("k") for t in two.trials][1:] == [7]


def test_the_pipeline_seeds_out_of_network_knobs_only_with_a_social_graph(tiny: Dataset) -> None:
    from serendip.pipeline.config import SEARCH_SEEDS, SEARCH_SPACE

    assert all(set(s) <= set(SEARCH_SPACE) for s in SEARCH_SEEDS)
    assert any(any("oon" in k for k in s) for s in SEARCH_SEEDS)
    quick = dict(get_model_class("pipeline").quick_params)
    free = {k for k in SEARCH_SPACE if not _is_fixed(k, quick)}
    # no social graph: the first seed tried after the defaults is the first without "oon"
    first = next(s for s in SEARCH_SEEDS if set(s) <= free and not any("oon" in k for k in s))
    seen: list[dict[str, object]] = []
    tune_and_fit(
        _untimed(tiny), "pipeline", params=quick, trials=2,
        progress=lambda t: seen.append(t.params),
    )  # fmt: skip
    assert len(seen) == 2
    assert all(seen[1][k] == v for k, v in first.items())


def test_out_of_network_dimensions_are_searched_only_with_a_social_graph(
    tiny: Dataset, toy_platform: Dataset
) -> None:
    from serendip.evaluation.tuning import searchable
    from serendip.pipeline.config import SEARCH_SPACE

    assert not len(tiny.social) and len(toy_platform.social)
    oon = {k for k in SEARCH_SPACE if "oon" in k}
    assert oon and not oon & set(searchable(SEARCH_SPACE, tiny))
    assert oon <= set(searchable(SEARCH_SPACE, toy_platform))
    quick = dict(get_model_class("pipeline").quick_params)
    _, record = tune_and_fit(_untimed(tiny), "pipeline", params=quick, trials=1)
    assert record.searched and not any("oon" in k for k in record.searched)


def _quick_but_the_collaborative_source() -> dict[str, object]:
    """The pipeline's quick parameters as dotted keys, leaving its collaborative source free."""
    from serendip.pipeline.recommender import PipelineRecommender

    quick = PipelineRecommender.quick_params
    flat: dict[str, object] = {f"ranker.{k}": v for k, v in quick["ranker"].items()}
    flat["rerank.pool"] = quick["rerank"]["pool"]
    for name, spec in quick["sources"].items():
        flat[f"sources.{name}.quota"] = spec["quota"]
    return flat


def test_the_pipeline_chooses_its_collaborative_source_before_its_search(
    tiny: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serendip.errors import CapacityError
    from serendip.models.linear._ease import EASE

    def refuse(self: object, dataset: Dataset) -> None:
        raise CapacityError("too many items for this test")

    monkeypatch.setattr(EASE, "_fit", refuse)
    monkeypatch.setattr(
        "serendip.pipeline.config.COLLABORATIVE_CANDIDATES",
        {"ials": {}, "item-knn": {}, "ease": {}},
    )
    stages: list[str] = []
    pipeline_trials: list[dict[str, object]] = []

    def progress(rec: object) -> None:
        assert hasattr(rec, "stage") and hasattr(rec, "params")
        stages.append(rec.stage)
        if not rec.stage:
            pipeline_trials.append(rec.params)

    model, record = tune_and_fit(
        tiny, "pipeline", params=_quick_but_the_collaborative_source(), trials=3,
        progress=progress,
    )  # fmt: skip
    assert model.config.fallback.serve == record.best_params.get("fallback.serve")
    source = record.source_stage
    assert source is not None
    # each candidate tuned alone first (3 trials each: at most the count asked for)
    assert stages[:6] == ["collaborative:ials"] * 3 + ["collaborative:item-knn"] * 3
    assert stages.count("collaborative:ease") == 3 and len(pipeline_trials) == 3
    assert source.candidates["ease"]["validation"] is None  # refused: dropped out
    assert "too many items" in source.candidates["ease"]["error"]
    # the stage's own caps: a dense model beyond them drops out with the model's reason
    from serendip.evaluation.fit_tuned import tune_collaborative
    from serendip.evaluation.splits import validation_split

    carve = validation_split(_untimed(tiny), "random", test_fraction=0.2, seed=0)
    capped = tune_collaborative(
        carve.train, carve.test, {"user-ease": {"max_users": 10}, "puresvd": {}}, trials=1,
        budget_s=None,
    )  # fmt: skip
    assert capped is not None and capped.chosen == "puresvd"
    assert "max_users=10" in capped.candidates["user-ease"]["error"]
    scores = {m: c["validation"] for m, c in source.candidates.items() if c["validation"]}
    assert source.chosen == max(scores, key=lambda m: scores[m])
    key, serve = "sources.collaborative.params", "fallback.serve"
    assert serve in record.searched and key not in pipeline_trials[0]  # the defaults first
    if source.is_default:  # then the source's own order served alone
        assert pipeline_trials[1][serve] == "collaborative"
    else:  # then the best source under the ranker, and served alone
        assert key in record.searched
        assert pipeline_trials[1][key] == source.source_params
        assert serve not in pipeline_trials[1]
        assert pipeline_trials[2][key] == source.source_params
        assert pipeline_trials[2][serve] == "collaborative"
    served = pipeline_trials[1 if source.is_default else 2]
    assert served["rerank.mmr_lambda"] == 1.0 and served["rerank.author_cap"] is None
    chosen = record.best_params.get(key, {})
    assert model.config.sources["collaborative"].params == chosen  # the refit uses the winner
    out = save_tuned(model, record, tmp_path / "m")
    saved = json.loads((out / "manifest.json").read_text())["tuning"]["collaborative_source"]
    assert saved["chosen"] == source.chosen and set(saved["candidates"]) == {
        "ials", "item-knn", "ease"
    }  # fmt: skip


def test_a_fixed_collaborative_source_skips_the_source_stage(tiny: Dataset) -> None:
    params = {
        **_quick_but_the_collaborative_source(),
        "sources.collaborative.params": {"model": "item-knn", "params": {"k": 20}},
    }
    stages: list[str] = []
    _, record = tune_and_fit(
        _untimed(tiny), "pipeline", params=params, trials=1,
        progress=lambda t: stages.append(t.stage),
    )  # fmt: skip
    assert record.source_stage is None and stages == [""]
    assert record.to_dict()["collaborative_source"] is None
