"""The candidate-source mix is read from explanations of every shape the runtime produces."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_workers_metrics_are_summed_and_dropped_labels_read_zero(tmp_path: Path) -> None:
    # `serve --workers`: prometheus_client's multiprocess mode is chosen at import, so each
    # "worker" is a fresh interpreter writing into one directory
    import subprocess
    import sys

    script = """
import sys
from serendip.service.metrics import ServiceMetrics
m = ServiceMetrics()
assert m.multiprocess
m.observe_request("GET", "/x", 200, 0.01)
m.set_model_version("v1", model="pipeline", registered_at=1.0)
m.set_model_version("v2", model="pipeline", registered_at=2.0)
m.set_serving_paths({"hit": 3, "full": 1})
m.set_serving_paths({"hit": 4})
if sys.argv[1] == "render":
    print(m.render().decode())
"""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script, "write"], env=env, check=True)
    out = subprocess.run(
        [sys.executable, "-c", script, "render"], env=env, check=True, capture_output=True
    ).stdout.decode()
    lines = set(out.splitlines())
    assert 'serendip_http_request_duration_seconds_count{method="GET",route="/x"} 2.0' in lines
    assert 'serendip_recommend_path_requests{path="hit"} 8.0' in lines  # both processes
    assert 'serendip_recommend_path_requests{path="full"} 0.0' in lines  # dropped: zero
    assert 'serendip_model_version_info{version="v1"} 0.0' in lines
    assert 'serendip_model_version_info{version="v2"} 1.0' in lines
