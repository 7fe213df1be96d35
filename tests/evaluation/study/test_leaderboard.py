"""The leaderboard page: every model, every plot, peers and pipeline marked, failures listed."""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serendip.errors import ConfigError
from serendip.evaluation.study.leaderboard import write_leaderboard
from serendip.evaluation.study.significance import compare_to_baseline, pick_baseline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATASETS = ("ml-100k", "synthetic-small")
PROTOCOLS = ("random", "cold-users")
MODELS: dict[str, tuple[str, str, float]] = {
    # name: (kind, family, NDCG@10 level)
    "popularity": ("model", "baselines", 0.10),
    "ease": ("model", "linear", 0.16),
    "implicit-als": ("peer", "peer", 0.14),
    "pipeline": ("pipeline", "pipeline", 0.18),
}
FAILED = ("synthetic-small", "cold-users", "ease")  # one failed cell


def _row(dataset: str, protocol: str, model: str, rng: np.random.Generator) -> dict[str, Any]:
    kind, family, level = MODELS[model]
    if protocol == "cold-users":
        level /= 2
    social = dataset.startswith("synthetic")
    metrics: dict[str, float] = {}
    for k in (5, 10, 20):
        metrics |= {
            f"precision@{k}": level * 0.8,
            f"recall@{k}": level * 1.2,
            f"ndcg@{k}": level,
            f"map@{k}": level * 0.6,
            f"hit_rate@{k}": min(1.0, level * 4),
            f"coverage@{k}": float(rng.uniform(0.02, 0.6)),
            f"novelty@{k}": float(rng.uniform(6, 11)),
            f"serendipity@{k}": level * 0.3,
            f"gini@{k}": 0.9,
        }
        if social:
            metrics[f"oon_share@{k}"] = float(rng.uniform(0.3, 0.9))
            metrics[f"ild@{k}"] = float(rng.uniform(0.4, 0.8))
    row: dict[str, Any] = {
        "dataset": dataset,
        "protocol": protocol,
        "model": model,
        "kind": kind,
        "family": family,
        "status": "ok",
        "error": "",
        "params": {"alpha": 1.0} if model == "ease" else {},
        "tuning": {"trials": 5, "seconds": 1.2, "metric": "ndcg@10", "best_validation": level},
        "metrics": metrics,
        "slices": {
            "cold": {"ndcg@10": level * 0.4},
            "light": {"ndcg@10": level * 0.9},
            "heavy": {"ndcg@10": level * 1.3},
        },
        "cost": {
            "fit_seconds": 0.0 if model == "popularity" else float(rng.uniform(0.05, 300)),
            "peak_memory_mb": float(rng.uniform(1, 5000)),
            "model_size_mb": float(rng.uniform(0.01, 200)),
            "recommend_batch_ms_per_user": 0.05,
            "recommend_single_p50_ms": float(rng.uniform(0.01, 3)),
            "recommend_single_p99_ms": float(rng.uniform(3, 30)),
        },
        "n_test_users": 200,
        "seed": 42,
        "code_version": "0.1.0+gtest",
    }
    if model == "implicit-als":
        row["cost"]["peak_memory_mb"] = None  # a cost the peer could not measure
    if (dataset, protocol, model) == FAILED:
        row.update(
            status="failed",
            error="CapacityError: EASE needs a 40000 x 40000 Gram matrix",
            metrics={},
            slices={},
            cost={},
        )
    return row


def fake_results() -> dict[str, Any]:
    """A results.json dict as the study runner writes it, significance computed for real."""
    rng = np.random.default_rng(3)
    rows: list[dict[str, Any]] = []
    significance: list[dict[str, Any]] = []
    for dataset in DATASETS:
        for protocol in PROTOCOLS:
            cell = [_row(dataset, protocol, m, rng) for m in MODELS]
            rows += cell
            ok = [r for r in cell if r["status"] == "ok"]
            baseline = pick_baseline(ok)
            assert baseline == "popularity"
            per_user = {
                r["model"]: np.clip(
                    rng.normal(r["metrics"]["ndcg@10"], 0.1, 200) * (rng.random(200) < 0.6), 0, 1
                )
                for r in ok
            }
            for c in compare_to_baseline(per_user, baseline, n_boot=200):
                significance.append({"dataset": dataset, "protocol": protocol, **c})
    return {
        "study": {
            "profile": "quick",
            "config": {"seed": 42, "significance": {"correction": "holm"}},
            "code_version": "0.1.0+gtest",
            "created": "2026-11-26T10:00:00+00:00",
            "seconds": 123.4,
        },
        "rows": rows,
        "significance": significance,
    }


def _only(results: dict[str, Any], dataset: str, protocol: str) -> dict[str, Any]:
    """The results of one dataset x protocol."""
    keep = [r for r in results["rows"] if (r["dataset"], r["protocol"]) == (dataset, protocol)]
    sig = [
        c for c in results["significance"] if (c["dataset"], c["protocol"]) == (dataset, protocol)
    ]
    return {**results, "rows": keep, "significance": sig}


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("board")
    path = write_leaderboard(fake_results(), out)
    return path, path.read_text(encoding="utf-8")


def test_writes_the_page_with_every_model_and_cell(board: tuple[Path, str]) -> None:
    path, page = board
    assert path.name == "leaderboard.html" and path.is_file()
    assert "<title>Serendip study leaderboard · quick</title>" in page
    for name in (*MODELS, *DATASETS):
        assert name in page
    for dataset in DATASETS:
        for protocol in PROTOCOLS:
            assert f"{dataset} · {protocol}" in page
    # every ok cell has a table row: 2 x 2 cells x 4 models, less the failed one
    assert len(re.findall(r'<tr class="kind-[a-z]+" data-model=', page)) == 15


def test_every_plot_exists_and_is_an_embedded_png(board: tuple[Path, str]) -> None:
    path, page = board
    plots = sorted((path.parent / "plots").glob("*.png"))
    names = {p.stem for p in plots}
    expected = {
        f"{kind}-{d}-{p}" for kind in ("tradeoff", "ci") for d in DATASETS for p in PROTOCOLS
    } | {f"{kind}-{d}" for kind in ("cold-start", "cost") for d in DATASETS}
    assert names == expected
    for p in plots:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, p
        assert f'href="plots/{p.name}"' in page
    assert page.count('<img src="data:image/png;base64,') == len(plots)


def test_peers_pipeline_and_baseline_are_marked(board: tuple[Path, str]) -> None:
    _, page = board
    assert re.search(r'<tr class="kind-peer" data-model="implicit-als">', page)
    assert re.search(r'<tr class="kind-pipeline" data-model="pipeline">', page)
    assert re.search(r'<tr class="kind-baseline" data-model="popularity">', page)
    assert '<span class="badge peer">peer</span>' in page
    assert '<span class="badge pipeline">pipeline</span>' in page
    assert "best baseline: <b>popularity</b>" in page


def test_ndcg_cells_carry_the_interval_and_a_significance_marker(board: tuple[Path, str]) -> None:
    _, page = board
    text = html.unescape(page)
    assert re.search(r"Δ [+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", text)
    assert re.search(r'class="marker (sig-up|sig-down|sig-ns)"', page)
    assert "Wilcoxon p = " in text
    assert "Significance against popularity" in page


def test_failed_cell_is_listed_with_its_error(board: tuple[Path, str]) -> None:
    _, page = board
    assert (
        page.count("CapacityError: EASE needs a 40000 x 40000 Gram matrix") == 2
    )  # cell + summary
    assert "Failed cells (1)" in page


def test_missing_metrics_show_as_a_dash(board: tuple[Path, str]) -> None:
    _, page = board
    ml_section = page.split('<section id="ml-100k">')[1].split("</section>")[0]
    syn_section = page.split('<section id="synthetic-small">')[1].split("</section>")[0]
    # no social graph on ml-100k: no out-of-network column there, a diversity column of dashes
    assert "Out-of-network" not in ml_section and "Out-of-network" in syn_section
    assert 'data-v="">–</td>' in ml_section
    assert "Diversity" in ml_section


def test_partial_and_odd_results_never_crash(tmp_path: Path) -> None:
    results = fake_results()
    broken = copy.deepcopy(_only(results, "ml-100k", "random"))  # fewer plots: a faster test
    del broken["significance"]
    del broken["study"]
    first = broken["rows"][0]
    first["metrics"] = {"ndcg@10": float("nan"), "coverage@10": None, "novelty@10": "n/a"}
    first["cost"] = None
    first["slices"] = None
    del broken["rows"][1]["kind"]
    broken["rows"].append(
        {"dataset": "lastfm-2k", "protocol": "temporal", "model": "ease", "status": "failed"}
    )
    page = write_leaderboard(broken, tmp_path / "a").read_text(encoding="utf-8")
    assert "lastfm-2k" in page and "no error message recorded" in page
    assert "No model finished on lastfm-2k · temporal" in page
    assert "<title>Serendip study leaderboard</title>" in page

    empty = write_leaderboard({"rows": []}, tmp_path / "b").read_text(encoding="utf-8")
    assert "Every cell finished." in empty


def test_a_rerun_replaces_stale_plots(tmp_path: Path) -> None:
    results = fake_results()
    write_leaderboard(_only(results, "synthetic-small", "random"), tmp_path)
    stale = tmp_path / "plots" / "tradeoff-synthetic-small-random.png"
    assert stale.is_file()
    (tmp_path / "plots" / "not-ours.png").write_bytes(PNG_MAGIC)
    write_leaderboard(_only(results, "ml-100k", "random"), tmp_path)
    assert not stale.exists()
    assert (tmp_path / "plots" / "tradeoff-ml-100k-random.png").is_file()
    assert (tmp_path / "plots" / "not-ours.png").is_file()  # only the leaderboard's own plots go


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([], "results.json object"),
        ({"study": {}}, "no 'rows' list"),
        ({"rows": ["x"]}, r"rows\[0\] must be an object"),
        ({"rows": [{"dataset": "d", "protocol": "random"}]}, r"rows\[0\] has no 'model'"),
    ],
)
def test_malformed_results_are_a_config_error(tmp_path: Path, results: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        write_leaderboard(results, tmp_path)
