"""One Spark fit end to end: export (or reuse an export), fit on Spark, save the artifact the
service loads, optionally write batch top-k lists. What `serendip fit --engine spark` and the
`spark-submit` entry point (`python -m serendip.spark`) call."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.spark._export import ParquetExport, export_dataset, read_export

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from serendip.models.base import Recommender

__all__ = ["SPARK_MODELS", "SparkFit", "check_spark_model", "fit_export", "fit_on_spark"]

#: Models the Spark engine fits, with what it runs for them.
SPARK_MODELS: dict[str, str] = {
    "ials": "MLlib ALS (implicitPrefs)",
    "item-knn": "item co-occurrence (Spark SQL self-join)",
}


@dataclass(frozen=True, slots=True)
class SparkFit:
    """What one Spark fit produced: the artifact directory, the fitted model (as the artifact
    loads it back, unchanged), the batch lists' directory (None when not asked), timings."""

    model: Recommender
    artifact: Path
    recommendations: Path | None
    fit_seconds: float
    spark_seconds: float
    master: str


def check_spark_model(name: str, params: Mapping[str, Any] | None = None) -> None:
    """`ConfigError` unless the Spark engine fits model `name` (and, when given, `params` are
    valid for it: its hyperparameters plus the engine's own keys)."""
    if name not in SPARK_MODELS:
        supported = ", ".join(f"{m} ({what})" for m, what in SPARK_MODELS.items())
        raise ConfigError(
            f"the Spark engine fits only {supported}; fit '{name}' with --engine local"
        )
    if params is not None:
        from serendip.models.registry import create_model

        create_model(name, _split_params(name, params)[0])


def _split_params(name: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model hyperparameters, Spark-only settings) of `params`."""
    model_params = dict(params)
    engine: dict[str, Any] = {}
    if name == "ials" and "mllib_reg_param" in model_params:
        reg = model_params.pop("mllib_reg_param")
        if isinstance(reg, bool) or not isinstance(reg, int | float) or reg < 0:
            raise ConfigError(f"mllib_reg_param must be a number >= 0, got {reg!r}")
        engine["reg_param"] = float(reg)
    if name == "item-knn" and "max_items_per_user" in model_params:
        cap = model_params.pop("max_items_per_user")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 2:
            raise ConfigError(f"max_items_per_user must be an integer >= 2, got {cap!r}")
        engine["max_items_per_user"] = cap
    return model_params, engine


def fit_export(
    spark: SparkSession,
    export: ParquetExport,
    name: str,
    params: Mapping[str, Any] | None,
    out: str | Path,
    *,
    dataset: Dataset | None = None,
    recommend_k: int | None = None,
    recommendations: str | Path | None = None,
) -> SparkFit:
    """Fit model `name` on Spark over `export` and save its artifact to `out`.

    params: the model's hyperparameters (validated before any Spark work), plus the Spark-only
    `mllib_reg_param` for ials (MLlib's regParam as is, instead of the one mapped from
    `regularization`) and `max_items_per_user` for item-knn (the self-join's cap). dataset: the export's `Dataset`
    when the caller already holds it (else read back from the export on the driver).
    recommend_k / recommendations: for ials, also write every user's top-k (Parquet) there.
    """
    check_spark_model(name, params or {})  # fail on a bad parameter before any job
    model_params, engine = _split_params(name, params or {})
    if (recommend_k is None) != (recommendations is None):
        raise ConfigError("batch recommendations need both a k and an output directory")
    if recommend_k is not None and name != "ials":
        raise ConfigError("batch recommendations on Spark are written for ials only")
    ds = dataset if dataset is not None else read_export(export.directory)
    start = time.perf_counter()
    model: Recommender
    if name == "ials":
        from serendip.spark._als import fit_ials

        als = fit_ials(spark, export, ds, model_params, **engine)
        spark_seconds = als.spark_seconds_
        model = als
    else:
        from serendip.spark._cooccurrence import fit_cooccurrence

        knn = fit_cooccurrence(spark, export, ds, model_params, **engine)
        spark_seconds = knn.spark_seconds_
        model = knn
    fit_seconds = time.perf_counter() - start
    artifact = model.save(Path(out))
    recs_dir: Path | None = None
    if recommend_k is not None and recommendations is not None:
        from serendip.spark._batch import recommend_all

        recs_dir = Path(recommendations)
        recommend_all(spark, export, als.mllib_model_, als.item_factors_, recommend_k).write.mode(
            "overwrite"
        ).parquet(str(recs_dir))
    return SparkFit(
        model, artifact, recs_dir, fit_seconds, spark_seconds, str(spark.sparkContext.master)
    )


def fit_on_spark(
    dataset: Dataset,
    name: str,
    params: Mapping[str, Any] | None,
    out: str | Path,
    *,
    master: str | None = "local[2]",
    export_dir: str | Path | None = None,
) -> SparkFit:
    """Export `dataset` to Parquet (into `export_dir`, else a temporary directory removed
    afterwards), fit `name` on Spark at `master`, save the artifact to `out`.

    >>> fit_on_spark(ds, "ials", {"factors": 64}, "models/ials")  # doctest: +SKIP
    SparkFit(model=IALS(...), artifact=PosixPath('models/ials'), ...)
    """
    from serendip.spark._session import spark_session

    check_spark_model(name, params or {})
    spark = spark_session(master)
    if export_dir is not None:
        export = export_dataset(dataset, export_dir)
        return fit_export(spark, export, name, params, out, dataset=dataset)
    with tempfile.TemporaryDirectory(prefix="serendip-export-") as tmp:
        export = export_dataset(dataset, Path(tmp) / "export")
        return fit_export(spark, export, name, params, out, dataset=dataset)
