"""The Spark jobs on local[2]: their artifacts are ordinary `ials` / `item-knn` ones that
`Recommender.load` and the serving runtime take unchanged, the iALS factors solve implicit's
equations under the documented regParam mapping, the co-occurrence job computes what `ItemKNN`
computes, the batch lists are the artifact's lists, and the CLI fits on Spark or refuses."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.data.dataset import Dataset, MatrixConfig
from serendip.errors import ConfigError
from serendip.models import Recommender
from serendip.models.factorization import IALS
from serendip.models.neighborhood import ItemKNN
from serendip.service.runtime import ModelRuntime
from serendip.spark import ParquetExport, check_spark_model, export_dataset, open_export
from serendip.spark.submit import main as submit_main
from tests.conftest import make_toy_platform

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

IALS_PARAMS = {"factors": 8, "iterations": 5, "regularization": 2.0, "alpha": 5.0, "seed": 3}


@cache
def _ds() -> Dataset:
    return make_toy_platform()


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> ParquetExport:
    return export_dataset(_ds(), tmp_path_factory.mktemp("spark") / "export")


@pytest.fixture(scope="module")
def ials_run(
    spark: SparkSession, export: ParquetExport, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """iALS through the spark-submit entry point: artifact plus every user's top-5."""
    base = tmp_path_factory.mktemp("ials")
    argv = ["fit", "--export", str(export.directory), "--model", "ials"]
    argv += ["--params", json.dumps(IALS_PARAMS)]
    argv += ["--out", str(base / "model"), "--recommend-k", "5"]
    argv += ["--recommendations", str(base / "recs")]
    assert submit_main(argv) == 0
    return {"model": base / "model", "recs": base / "recs"}


@pytest.fixture(scope="module")
def knn_dir(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """item-knn (co-occurrence on Spark) through `serendip fit --engine spark`."""
    base = tmp_path_factory.mktemp("knn")
    inter = base / "interactions.parquet"
    _ds().interactions_frame().to_parquet(inter)
    items = base / "items.csv"
    _ds().items_frame().to_csv(items, index=False)
    out = base / "model"
    result = CliRunner().invoke(
        app,
        [
            "fit",
            "--interactions",
            str(inter),
            "--items",
            str(items),
            "--model",
            "item-knn",
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "fitted item-knn on Spark (local[2])" in result.output
    return out


# ---------------------------------------------------------------------- iALS
def test_spark_ials_artifact_loads_as_ials_and_recommends(ials_run: dict[str, Path]) -> None:
    model = Recommender.load(ials_run["model"])
    assert type(model) is IALS
    ds = _ds()
    assert model.users_.ids.tolist() == ds.users.ids.tolist()
    assert model.items_.ids.tolist() == ds.items.ids.tolist()
    assert {k: model.get_params()[k] for k in IALS_PARAMS} == IALS_PARAMS
    engine = json.loads((ials_run["model"] / "manifest.json").read_text())["meta"]["engine"]
    assert engine["engine"] == "spark" and engine["mllib"]["rank"] == 8
    assert np.abs(model.user_factors_).sum() > 0 and np.abs(model.item_factors_).sum() > 0
    recs = model.recommend(["u001", "u002", "someone-new"], 10)
    for row, user in enumerate(["u001", "u002"]):
        items = recs.item_ids(row)
        seen = set(ds.items.lookup(ds.seen()[ds.users.index(user)].indices))
        assert len(items) == 10 and len(set(items)) == 10 and not set(items) & seen
        assert np.all(np.diff(recs.scores[row]) <= 0)
    assert len(recs.item_ids(2)) == 10  # an unknown user: the cold-start path (popularity)
    assert model.explain("u001", recs.item_ids(0)[0]).text


def test_spark_pair_weights_are_the_dataset_matrix(
    spark: SparkSession, export: ParquetExport
) -> None:
    from serendip.spark._session import pair_weights

    inter = spark.read.parquet(export.path("interactions"))
    ds = _ds()
    for weighting, config in (("events", MatrixConfig()), ("binary", MatrixConfig(binary=True))):
        got = pair_weights(inter, weighting).select("user_idx", "item_idx", "weight").toArrow()
        m = np.zeros((ds.n_users, ds.n_items))
        m[got.column("user_idx").to_numpy(), got.column("item_idx").to_numpy()] = got.column(
            "weight"
        ).to_numpy()
        np.testing.assert_allclose(m, ds.matrix(config).toarray())


def test_spark_ials_user_factors_solve_implicits_equations(ials_run: dict[str, Path]) -> None:
    """MLlib's last half-step solves every user exactly given the items: with confidence
    alpha * w (implicit's convention, through the rating mapping) and regParam x n_u."""
    model = Recommender.load(ials_run["model"])
    assert isinstance(model, IALS)
    meta = json.loads((ials_run["model"] / "manifest.json").read_text())["meta"]
    reg_param = meta["engine"]["mllib"]["regParam"]
    weights = model.weights_  # the "events" weighting of the toy platform
    nnz, active_u = weights.nnz, int((np.diff(weights.indptr) > 0).sum())
    active_i = int((np.bincount(weights.indices, minlength=weights.shape[1]) > 0).sum())
    assert reg_param == pytest.approx(2.0 * (active_u + active_i) / (2 * nnz))
    y = model.item_factors_.astype(np.float64)
    for u in range(0, weights.shape[0], 7):
        row = weights[u]
        conf = 5.0 * row.data.astype(np.float64)
        yh = y[row.indices]
        a = y.T @ y + (yh * (conf - 1.0)[:, None]).T @ yh + reg_param * row.nnz * np.eye(8)
        expected = np.linalg.solve(a, yh.T @ conf)
        np.testing.assert_allclose(model.user_factors_[u], expected, rtol=2e-3, atol=2e-4)


def test_batch_lists_are_the_artifacts_lists(ials_run: dict[str, Path]) -> None:
    model = Recommender.load(ials_run["model"])
    lists = pq.read_table(ials_run["recs"]).to_pandas()
    assert set(lists.columns) == {"user", "item", "rank", "score"}
    ds = _ds()
    with_history = ds.users.ids[np.diff(ds.seen().indptr) > 0]
    assert set(lists["user"]) == set(with_history)
    users = sorted(with_history)
    expected = model.recommend(users, 5)
    agree = 0
    for row, user in enumerate(users):
        mine = lists[lists["user"] == user].sort_values("rank")
        assert mine["rank"].tolist() == [1, 2, 3, 4, 5]
        np.testing.assert_allclose(mine["score"], expected.scores[row], rtol=1e-4, atol=1e-5)
        agree += mine["item"].tolist() == expected.item_ids(row)
    assert agree >= 0.95 * len(users)  # float32 near-ties may swap between two BLAS calls


# ---------------------------------------------------------------------- co-occurrence
def test_cooccurrence_artifact_is_the_item_knn_one_would_fit(knn_dir: Path) -> None:
    model = Recommender.load(knn_dir)
    assert type(model) is ItemKNN
    local = ItemKNN().fit(_ds())  # the defaults: asymmetric cosine over TF-IDF, shrink, locality
    assert isinstance(model, ItemKNN)
    np.testing.assert_allclose(model.sim_.toarray(), local.sim_.toarray(), atol=1e-6)
    users = ["u001", "u010", "u033"]
    mine, theirs = model.recommend(users, 10), local.recommend(users, 10)
    np.testing.assert_array_equal(mine.items, theirs.items)
    np.testing.assert_allclose(mine.scores, theirs.scores, rtol=1e-5)


def test_cooccurrence_cap_keeps_each_users_most_recent_items(
    spark: SparkSession, export: ParquetExport
) -> None:
    from serendip.spark._cooccurrence import fit_cooccurrence

    params = {"similarity": "cosine", "weighting": "none", "shrink": 0.0, "k": 500}
    ds = _ds()
    full = fit_cooccurrence(spark, export, ds, params, max_items_per_user=1000)
    capped = fit_cooccurrence(spark, export, ds, params, max_items_per_user=3)
    np.testing.assert_allclose(full.sim_.toarray(), ItemKNN(params).fit(ds).sim_.toarray())
    # the pairs the capped job may see: items among some user's 3 most recent
    frame = ds.interactions_frame()
    frame["u"] = ds.interactions.user
    frame["i"] = ds.interactions.item
    last = frame.groupby(["u", "i"])["timestamp"].max().reset_index()
    last = last.sort_values(["u", "timestamp", "i"], ascending=[True, False, True])
    allowed = np.zeros((ds.n_items, ds.n_items), bool)
    for _, group in last.groupby("u"):
        top = group["i"].to_numpy()[:3]
        allowed[np.ix_(top, top)] = True
    rows, cols = capped.sim_.nonzero()
    assert len(rows) > 0 and allowed[rows, cols].all()
    assert capped.sim_.nnz < full.sim_.nnz


# ---------------------------------------------------------------------- serving
@pytest.mark.parametrize("which", ["ials", "knn"])
def test_spark_artifacts_serve_through_the_runtime(
    which: str, ials_run: dict[str, Path], knn_dir: Path
) -> None:
    path = ials_run["model"] if which == "ials" else knn_dir
    rt = ModelRuntime()
    rt.load(path, "spark-1")
    assert rt.active_version == "spark-1"
    served = [r.item for r in rt.recommend("u001", 5, explain=True)]
    direct = Recommender.load(path).recommend(["u001"], 5).item_ids(0)
    assert served == direct


# ---------------------------------------------------------------------- refusals
def test_cli_refuses_models_spark_does_not_fit(tmp_path: Path) -> None:
    inter = tmp_path / "i.csv"
    inter.write_text("user,item\na,x\nb,x\n")
    runner = CliRunner()
    base = ["fit", "--interactions", str(inter), "--out", str(tmp_path / "m")]
    result = runner.invoke(app, [*base, "--model", "ease", "--engine", "spark"])
    assert result.exit_code == 1
    assert "fits only ials" in result.output and "item-knn" in result.output
    assert "'ease'" in result.output
    result = runner.invoke(app, [*base, "--model", "ials", "--engine", "dask"])
    assert result.exit_code == 1 and "valid: local, spark" in result.output
    result = runner.invoke(app, [*base, "--model", "ials", "--spark-master", "local[2]"])
    assert result.exit_code == 1 and "only applies with --engine spark" in result.output
    result = runner.invoke(app, [*base, "--model", "ials", "--engine", "spark", "--tune"])
    assert result.exit_code == 1 and "--engine local only" in result.output
    assert not (tmp_path / "m").exists()


def test_bad_parameters_fail_before_any_spark_work(export: ParquetExport) -> None:
    with pytest.raises(ConfigError, match="factorz"):
        check_spark_model("ials", {"factorz": 3})
    with pytest.raises(ConfigError, match="max_items_per_user"):
        check_spark_model("item-knn", {"max_items_per_user": 1})
    with pytest.raises(ConfigError, match="mllib_reg_param"):
        check_spark_model("ials", {"mllib_reg_param": -1})
    with pytest.raises(ConfigError, match="mllib_reg_param"):  # an ials-only setting
        check_spark_model("item-knn", {"mllib_reg_param": 0.1})
    assert open_export(export.directory).n_items == _ds().n_items


def test_mllib_reg_param_is_taken_as_is(spark: SparkSession, tmp_path: Path) -> None:
    from serendip.spark import fit_on_spark

    params = {"factors": 4, "iterations": 2, "mllib_reg_param": 0.05}
    fit = fit_on_spark(_ds(), "ials", params, tmp_path / "m", export_dir=tmp_path / "export")
    meta = json.loads((fit.artifact / "manifest.json").read_text())["meta"]
    assert meta["engine"]["mllib"]["regParam"] == 0.05
    assert open_export(tmp_path / "export").n_interactions == _ds().n_interactions
    assert type(Recommender.load(fit.artifact)) is IALS
