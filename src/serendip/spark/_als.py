"""iALS on Spark MLlib (`pyspark.ml.recommendation.ALS`, implicitPrefs), saved as Serendip's own
`ials` artifact: `Recommender.load` returns an `IALS` whose factors came from Spark.

Serendip's iALS (through `implicit`) and MLlib solve the same weighted least squares with two
differences of convention, mapped here:

- Confidence. implicit: c_ui = alpha * w_ui for an observed pair (1 otherwise). MLlib:
  c_ui = 1 + alpha' * r_ui. Feeding MLlib r_ui = alpha * w_ui - 1 with alpha' = 1 gives exactly
  implicit's confidence (a pair with alpha * w_ui <= 1 is clamped to r_ui = 1e-6, c ~ 1, still
  a positive: MLlib cannot express an observed pair less confident than an unobserved one).
- Regularization. implicit adds reg * I to every user's and item's normal equations; MLlib
  adds regParam * n * I, n = that user's (item's) number of positive pairs (ALS-WR). No single
  regParam reproduces a constant reg; `mllib_reg_param` picks the one whose mean over all the
  solves (users and items together) equals reg: regParam = reg * (n_users + n_items) / (2 nnz),
  counting users and items with at least one pair.

Iterations and factors carry over as they are; MLlib solves each system exactly (Cholesky)
where implicit takes conjugate-gradient steps. Users and items without pairs get zero factors
in both (the model serves such users by popularity).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.models.factorization import IALS
from serendip.spark._export import ParquetExport
from serendip.spark._session import pair_weights

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["MllibALSParams", "SparkIALS", "factors_array", "fit_ials", "mllib_reg_param"]

#: MLlib rating given to a pair whose implicit confidence alpha * w would be <= 1.
_MIN_RATING = 1e-6


@dataclass(frozen=True, slots=True)
class MllibALSParams:
    """The MLlib settings a Serendip iALS config maps to (see the module docstring)."""

    rank: int
    max_iter: int
    reg_param: float
    alpha: float
    seed: int
    #: implicit's alpha: MLlib ratings are alpha * weight - 1
    rating_scale: float


def mllib_reg_param(reg: float, n_users: int, n_items: int, nnz: int) -> float:
    """regParam whose mean per-solve regularization (regParam x positives of the user or item,
    averaged over the `n_users` users and `n_items` items with any pair) equals implicit's
    constant `reg`; nnz = number of positive pairs."""
    if nnz <= 0 or n_users + n_items <= 0:
        return float(reg)
    return float(reg) * (n_users + n_items) / (2.0 * nnz)


def factors_array(frame: DataFrame, n: int, rank: int) -> np.ndarray:
    """An MLlib factor table (id, features) as float32 (n, rank), row = id; ids MLlib never saw
    stay zero. Collected through Arrow (about 4 x n x rank bytes on the driver)."""
    table = frame.select("id", "features").toArrow()
    out = np.zeros((n, rank), np.float32)
    if table.num_rows == 0:
        return out
    ids = table.column("id").to_numpy()
    feats = table.column("features").combine_chunks()
    values = feats.values.to_numpy(zero_copy_only=False).astype(np.float32)
    out[ids] = values.reshape(len(ids), rank)
    return out


class SparkIALS(IALS):
    """An `IALS` whose `_fit_factors` runs MLlib ALS over a Parquet export instead of
    `implicit`; everything else of the fit (vocabularies, seen and weight matrices, popularity,
    ANN indexes) is `IALS`'s own, so the saved artifact is an ordinary `ials` one.

    The dataset given to `fit` must be the export's (`read_export`): Spark reads the pairs from
    the export's files, the driver only assembles the artifact.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        spark: SparkSession,
        export: ParquetExport,
        reg_param: float | None = None,
    ) -> None:
        super().__init__(dict(config or {}))
        self._spark = spark
        self._export = export
        self._reg_param_override = reg_param

    def mllib_params(self, n_users: int, n_items: int, nnz: int) -> MllibALSParams:
        """The MLlib settings of this config for a matrix with these active users / items and
        positive pairs (`reg_param`, when given, replaces the mapped regParam)."""
        cfg = self.config
        reg = (
            self._reg_param_override
            if self._reg_param_override is not None
            else mllib_reg_param(cfg.regularization, n_users, n_items, nnz)
        )
        return MllibALSParams(
            rank=cfg.factors,
            max_iter=cfg.iterations,
            reg_param=reg,
            alpha=1.0,
            seed=cfg.seed,
            rating_scale=cfg.alpha,
        )

    def _fit_factors(self, dataset: Dataset, weights: sp.csr_matrix) -> None:
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F

        if (dataset.n_users, dataset.n_items) != (self._export.n_users, self._export.n_items):
            raise ConfigError(
                f"the dataset ({dataset.n_users} users, {dataset.n_items} items) is not the "
                f"export's ({self._export.n_users}, {self._export.n_items}); fit on read_export()"
            )
        start = time.perf_counter()
        pairs = pair_weights(
            self._spark.read.parquet(self._export.path("interactions")), self.config.weighting
        )
        counts = pairs.agg(
            F.count(F.lit(1)).alias("nnz"),
            F.countDistinct("user_idx").alias("users"),
            F.countDistinct("item_idx").alias("items"),
        ).first()
        assert counts is not None
        params = self.mllib_params(int(counts["users"]), int(counts["items"]), int(counts["nnz"]))
        ratings = pairs.select(
            F.col("user_idx").alias("user"),
            F.col("item_idx").alias("item"),
            F.greatest(
                F.col("weight") * F.lit(params.rating_scale) - F.lit(1.0), F.lit(_MIN_RATING)
            )
            .cast("float")
            .alias("rating"),
        )
        als = ALS(
            rank=params.rank,
            maxIter=params.max_iter,
            regParam=params.reg_param,
            alpha=params.alpha,
            implicitPrefs=True,
            nonnegative=False,
            seed=params.seed,
            userCol="user",
            itemCol="item",
            ratingCol="rating",
        )
        model: ALSModel = als.fit(ratings)
        self.user_factors_ = factors_array(model.userFactors, dataset.n_users, params.rank)
        self.item_factors_ = factors_array(model.itemFactors, dataset.n_items, params.rank)
        self.mllib_ = params
        self.mllib_model_ = model
        self.spark_seconds_ = time.perf_counter() - start

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = super()._state()
        params = getattr(self, "mllib_", None)
        if params is None:
            return arrays, meta
        engine = {
            "engine": "spark",
            "spark_version": self._spark.version,
            "master": self._spark.sparkContext.master,
            "mllib": {
                "rank": params.rank,
                "maxIter": params.max_iter,
                "regParam": params.reg_param,
                "alpha": params.alpha,
                "rating": f"max({params.rating_scale:g} * weight - 1, {_MIN_RATING:g})",
                "seed": params.seed,
            },
            "spark_seconds": self.spark_seconds_,
        }
        return arrays, {**meta, "engine": engine}


def fit_ials(
    spark: SparkSession,
    export: ParquetExport,
    dataset: Dataset,
    params: Mapping[str, Any] | None = None,
    *,
    reg_param: float | None = None,
) -> SparkIALS:
    """Fit Serendip's iALS with MLlib on `export` (whose `Dataset` is `dataset`, read with
    `read_export`); `params`: `IALS` hyperparameters (validated; unknown keys fail at once).
    `save(dir)` writes an `ials` artifact. `reg_param`: MLlib's regParam as is, instead of the
    mapped one."""
    return SparkIALS(params, spark=spark, export=export, reg_param=reg_param).fit(dataset)
