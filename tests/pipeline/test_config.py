"""The pipeline's one config: validated, frozen, dotted keys, a search space that resolves."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serendip.errors import ConfigError
from serendip.models.base import Choice, FloatRange, IntRange, ModelConfig
from serendip.pipeline.config import DEFAULT_SOURCES, SEARCH_SPACE, PipelineConfig
from serendip.pipeline.recommender import PipelineRecommender


def test_pipeline_config_is_the_models_config() -> None:
    assert PipelineRecommender.Config is PipelineConfig
    assert issubclass(PipelineConfig, ModelConfig)
    cfg = PipelineConfig()
    assert set(cfg.sources) == set(DEFAULT_SOURCES)
    assert cfg.quotas() == DEFAULT_SOURCES
    with pytest.raises(ValidationError):
        cfg.seed = 3  # type: ignore[misc]


def test_dotted_keys_set_one_knob_and_keep_the_rest() -> None:
    cfg = PipelineConfig.model_validate(
        {"ranker.learning_rate": 0.1, "sources.trending.quota": 7, "rerank.oon_target": 0.3}
    )
    assert cfg.ranker.learning_rate == 0.1
    assert cfg.ranker.num_leaves == PipelineConfig().ranker.num_leaves
    assert cfg.sources["trending"].quota == 7
    assert set(cfg.sources) == set(DEFAULT_SOURCES)  # the other sources are still there
    assert cfg.rerank.oon_target == 0.3
    nested = PipelineConfig.model_validate({"ranker": {"n_estimators": 5}, "ranker.num_leaves": 9})
    assert (nested.ranker.n_estimators, nested.ranker.num_leaves) == (5, 9)


@pytest.mark.parametrize(
    "params",
    [
        {"ranker": {"n_estimator": 5}},  # typo
        {"rerank.oon_target": 1.5},
        {"rerank.mmr_lambda": -0.1},
        {"rerank.author_cap": 0},
        {"sources": {"no-such-source": {"quota": 3}}},
        {"sources": {"trending": {"quota": 0}}},  # nothing would run
        {"ranker.label_fraction": 1.0},
        {"ranker": {"label_gains": {"poke": 2}}},
        {"filters": {"exclude_everything": True}},
    ],
)
def test_bad_values_fail_at_once(params: dict) -> None:
    with pytest.raises(ConfigError, match="valid"):
        PipelineRecommender(params)


def test_every_point_of_the_search_space_is_a_valid_config() -> None:
    for name, dim in SEARCH_SPACE.items():
        if isinstance(dim, (IntRange, FloatRange)):
            values = [dim.low, dim.high]
        else:
            assert isinstance(dim, Choice)
            values = list(dim.options)
        for v in values:
            cfg = PipelineConfig.model_validate({name: v})
            node = cfg
            for part in name.split("."):
                node = node[part] if isinstance(node, dict) else getattr(node, part)
            assert node == v


def test_quick_params_are_valid_and_round_trip_through_json() -> None:
    model = PipelineRecommender(dict(PipelineRecommender.quick_params))
    again = PipelineRecommender(model.config.model_dump(mode="json"))
    assert again.get_params() == model.get_params()
