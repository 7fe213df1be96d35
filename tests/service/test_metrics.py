"""The candidate-source mix is read from explanations of every shape the runtime produces."""

from __future__ import annotations

from serendip.service.metrics import ServiceMetrics, _sources


def test_sources_from_explanations() -> None:
    pipeline = {"model": "pipeline", "evidence": [{"kind": "source", "id": "in-network"}]}
    single = {"model": "item-knn", "evidence": [{"kind": "item", "id": "i1"}]}
    assert list(_sources([pipeline, single, None, {"source": "trending"}])) == [
        "in-network",
        "item-knn",
        "model",
        "trending",
    ]


def test_model_version_gauge_has_one_version() -> None:
    m = ServiceMetrics()
    m.set_model_version("v1")
    m.set_model_version("v2")
    text = m.render().decode()
    assert 'serendip_model_version_info{version="v2"} 1.0' in text and 'version="v1"' not in text
