"""Study config: the shipped profiles validate; mistakes raise ConfigError naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from serendip.errors import ConfigError
from serendip.evaluation.study.config import (
    DEFAULT_PROTOCOL_PARAMS,
    ProtocolSpec,
    available_peers,
    load_config,
    load_profile,
    parse_config,
)
from serendip.models.registry import MODELS


def _cfg(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "datasets": [{"source": "synthetic:tiny", "protocols": ["random"]}],
        "models": [{"name": "popularity"}],
    }
    base.update(over)
    return base


def test_profiles_validate() -> None:
    quick = load_profile("quick")
    assert quick.profile == "quick" and quick.quick
    assert quick.datasets[0].source == "synthetic:small"
    assert {p.method for p in quick.datasets[0].protocols} >= {"cold-users", "cold-items"}
    full = load_profile("full")
    assert not full.quick
    assert {d.source for d in full.datasets} == {"ml-100k", "lastfm-2k", "synthetic:small"}
    ml = next(d for d in full.datasets if d.source == "ml-100k")
    assert [p.method for p in ml.protocols] == ["random", "temporal"]
    # every model of the zoo (the pipeline has its own section)
    assert {m.name for m in full.models} == set(MODELS) - {"pipeline"}


def test_defaults_and_protocol_forms() -> None:
    cfg = parse_config(
        _cfg(
            datasets=[
                {
                    "source": "ml-100k",
                    "protocols": [
                        "random",
                        {"method": "cold-users", "user_fraction": 0.2},
                        {"method": "random", "name": "random-50", "test_fraction": 0.5},
                    ],
                }
            ]
        )
    )
    assert cfg.k == (5, 10, 20) and cfg.seed == 42
    d = cfg.datasets[0]
    assert d.name == "ml-100k"
    random, cold, half = d.protocols
    # issue 3 protocol: per-user 80/20, seed 42, users with < 5 items kept in train
    assert random.split_params == {"test_fraction": 0.2, "seed": 42, "min_interactions": 5}
    assert cold.name == "cold-users" and cold.split_params["user_fraction"] == 0.2
    assert half.name == "random-50" and half.split_params["test_fraction"] == 0.5
    assert set(DEFAULT_PROTOCOL_PARAMS) == {
        "random",
        "temporal",
        "leave-last",
        "cold-users",
        "cold-items",
    }
    assert (
        parse_config(_cfg(datasets=[{"source": "synthetic:tiny"}])).datasets[0].name
        == "synthetic-tiny"
    )


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"models": [{"name": "nope"}]}, ["models", "unknown model 'nope'"]),
        ({"models": [{"name": "ease", "trials": -1}]}, ["models[0].trials"]),
        ({"models": [{"name": "ease", "budget": 3}]}, ["models[0].budget"]),
        (
            {"datasets": [{"source": "synthetic:tiny", "protocols": ["sideways"]}]},
            ["datasets[0].protocols[0].method"],
        ),
        (
            {
                "datasets": [
                    {"source": "synthetic:tiny", "protocols": [{"method": "random", "n": 2}]}
                ]
            },
            ["datasets[0].protocols[0]", "does not take n"],
        ),
        ({"datasets": [{"source": "synthetic:huge"}]}, ["datasets[0].source", "synthetic:tiny"]),
        ({"datasets": []}, ["at least one dataset"]),
        ({"k": [0, 10]}, ["k", "positive"]),
        ({"metric": "accuracy"}, ["metric"]),
        ({"seed": "x"}, ["seed"]),
        ({"colour": "blue"}, ["colour"]),
        (
            {"models": [{"name": "ease"}, {"name": "ease"}]},
            ["models", "listed twice: ease"],
        ),
        (
            {
                "datasets": [
                    {"source": "synthetic:tiny", "protocols": ["random", "random"]},
                ]
            },
            ["used twice: random"],
        ),
    ],
)
def test_errors_name_the_key(over: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg(**over))
    for w in words:
        assert w in str(err.value)


def test_unknown_peer_is_an_error() -> None:
    assert "implicit-als" in available_peers()
    with pytest.raises(ConfigError, match=r"peers.*unknown peer 'nope'"):
        parse_config(_cfg(peers=[{"name": "nope"}]))


def test_load_config_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'seed = 7\nk = [10]\n[[datasets]]\nsource = "synthetic:tiny"\nprotocols = ["random"]\n'
        '[[models]]\nname = "popularity"\n'
    )
    cfg = load_config(path)
    assert cfg.profile == "mine" and cfg.seed == 7 and cfg.k == (10,)
    path.write_text("seed = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="unknown profile 'slow'"):
        load_profile("slow")


def test_protocol_spec_is_frozen() -> None:
    spec = ProtocolSpec(method="random")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        spec.method = "temporal"  # type: ignore[misc]
