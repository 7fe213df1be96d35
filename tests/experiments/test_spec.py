from __future__ import annotations

import pytest

from serendip.errors import ConfigError
from serendip.experiments.spec import Guardrail, parse_spec


def test_defaults_and_round_trip() -> None:
    spec = parse_spec(
        {
            "variants": [{"name": "control"}, {"name": "new", "model_version": "v2"}],
            "guardrails": ["like", {"metric": "share", "bad": "decrease"}],
        }
    )
    assert spec.shares == [("control", 0.5), ("new", 0.5)]
    assert spec.control == "control"
    assert spec.primary_metric == "click" and spec.window_s == 86400.0
    assert spec.guardrails[0] == Guardrail(metric="like", bad="decrease")
    assert len(spec.salt) == 32
    assert parse_spec(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"variants": [{"name": "a", "share": 0.3}, {"name": "b", "share": 0.6}]}, "sum to 1"),
        ({"variants": [{"name": "a", "share": 0.5}, {"name": "b"}]}, "every variant a share"),
        ({"variants": [{"name": "a"}]}, "at least two variants"),
        (
            {"kind": "interleaving", "variants": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
            "exactly two variants",
        ),
        (
            {"variants": [{"name": "a"}, {"name": "b"}], "primary_metric": "purchase"},
            "unknown event type 'purchase'",
        ),
        ({"variants": [{"name": "a"}, {"name": "b"}], "guardrails": ["nope"]}, "unknown event"),
        ({"variants": [{"name": "a"}, {"name": "b"}], "alpha": 0.7}, "alpha"),
        ({"variants": [{"name": "a"}, {"name": "b"}], "window": 5}, "unknown setting 'window'"),
        ({"variants": [{"name": "a"}, {"name": "a"}]}, "unique"),
    ],
)
def test_bad_specs_raise_config_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_spec(data)


def test_not_an_object() -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        parse_spec([1, 2])  # type: ignore[arg-type]
