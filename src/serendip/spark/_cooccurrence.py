"""Item co-occurrence similarities on Spark SQL, saved as Serendip's own `item-knn` artifact.

The similarity of items i and j is their weighted co-occurrence over users, dot(i, j) = sum over
the users u holding both of v_ui * v_uj, normalised as `ItemKNN` does (its `similarity`,
`shrink`, `alpha`, `locality`), keeping each item's `k` best neighbours. v is the pair weight
under the config's `confidence` (binary, events, log1p, linear), re-weighted by its `weighting`
("none", "tfidf": sqrt(w) * idf_u, "bm25"), with idf_u = ln(n_items / items of u): the same
numbers `ItemKNN.fit` computes on one machine, so the artifact is the one it would have saved.

The self-join on users is quadratic in a user's history: `max_items_per_user` keeps only each
user's most recent items (latest timestamp first, then item index) in the join, bounding the
pairs at n_users x cap^2. idf, BM25 lengths and popularity still count every pair. With no user
above the cap the result is exact.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError, ConfigError
from serendip.models.neighborhood import ItemKNN
from serendip.spark._export import ParquetExport
from serendip.spark._session import pair_weights

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["DEFAULT_MAX_ITEMS_PER_USER", "SparkItemKNN", "fit_cooccurrence"]

#: Default cap on the items of one user entering the self-join (see the module docstring).
DEFAULT_MAX_ITEMS_PER_USER = 1000


class SparkItemKNN(ItemKNN):
    """An `ItemKNN` whose similarity matrix comes from a Spark SQL co-occurrence job over a
    Parquet export; the profile, popularity and everything else are `ItemKNN`'s own, so the
    saved artifact is an ordinary `item-knn` one. Fit it on the export's `Dataset`."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        spark: SparkSession,
        export: ParquetExport,
        max_items_per_user: int = DEFAULT_MAX_ITEMS_PER_USER,
    ) -> None:
        super().__init__(dict(config or {}))
        if max_items_per_user < 2:
            raise ConfigError(f"max_items_per_user must be at least 2, got {max_items_per_user}")
        self._spark = spark
        self._export = export
        self.max_items_per_user = max_items_per_user

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        n_items = dataset.n_items
        if (dataset.n_users, n_items) != (self._export.n_users, self._export.n_items):
            raise ConfigError(
                f"the dataset ({dataset.n_users} users, {n_items} items) is not the export's "
                f"({self._export.n_users}, {self._export.n_items}); fit on read_export()"
            )
        need_mb = 16 * n_items * min(cfg.k, n_items) / 2**20
        if need_mb > cfg.max_memory_mb:
            raise CapacityError(
                f"model '{self.name}' would need about {need_mb:,.0f} MiB for {n_items:,} items x "
                f"{cfg.k} neighbours, above max_memory_mb={cfg.max_memory_mb:,.0f}; lower k"
            )
        if cfg.dp_budget() is not None:
            raise ConfigError(
                "differentially private item-knn (dp_epsilon) is not supported by the Spark "
                "engine; fit it with --engine local"
            )
        start = time.perf_counter()
        self.profile_ = sp.csr_matrix(dataset.matrix(self._profile_config()), dtype=np.float32)
        self.dp_release_ = None
        self.sim_ = self._spark_similarities(n_items)
        self._set_similarity()
        self._init_scoring()
        self.spark_seconds_ = time.perf_counter() - start

    def similarity_frame(self, n_items: int) -> DataFrame:
        """The job as a DataFrame (item_idx, neighbour_idx, sim): each item's top-k."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        cfg = self.config
        pairs = pair_weights(
            self._spark.read.parquet(self._export.path("interactions")), cfg.confidence
        )
        per_user = Window.partitionBy("user_idx")
        pairs = pairs.withColumn("df", F.count(F.lit(1)).over(per_user)).withColumn(
            "idf", F.log(F.lit(float(max(n_items, 1))) / F.greatest(F.col("df"), F.lit(1.0)))
        )
        if cfg.weighting == "bm25":
            total = pairs.agg(F.sum("weight")).first()
            avg_len = float(total[0] or 0.0) / max(n_items, 1) if total is not None else 0.0
            avg_len = avg_len if avg_len > 0 else 1.0
            doc_len = F.sum("weight").over(Window.partitionBy("item_idx"))
            norm = F.lit(1.0 - cfg.bm25_b) + F.lit(cfg.bm25_b) * doc_len / F.lit(avg_len)
            tf = F.col("weight")
            value: Column = (
                tf * F.lit(cfg.bm25_k1 + 1.0) / (F.lit(cfg.bm25_k1) * norm + tf) * F.col("idf")
            )
        elif cfg.weighting == "tfidf":
            value = F.sqrt("weight") * F.col("idf")
        else:
            value = F.col("weight")
        recent = Window.partitionBy("user_idx").orderBy(
            F.col("last_ts").desc_nulls_last(), F.col("item_idx").asc()
        )
        docs = (
            pairs.withColumn("v", value)
            .where(F.col("v") != 0)
            .withColumn("pos", F.row_number().over(recent))
            .where(F.col("pos") <= self.max_items_per_user)
            .select("user_idx", "item_idx", "v")
            .cache()
        )
        sq = docs.groupBy("item_idx").agg(F.sum(F.col("v") * F.col("v")).alias("sq"))
        a, b = docs.alias("a"), docs.alias("b")
        dot = (
            a.join(b, (F.col("a.user_idx") == F.col("b.user_idx")))
            .where(F.col("a.item_idx") != F.col("b.item_idx"))
            .groupBy(F.col("a.item_idx").alias("i"), F.col("b.item_idx").alias("j"))
            .agg(F.sum(F.col("a.v") * F.col("b.v")).alias("dot"))
        )
        sq_i = sq.select(F.col("item_idx").alias("i"), F.col("sq").alias("sq_i"))
        sq_j = sq.select(F.col("item_idx").alias("j"), F.col("sq").alias("sq_j"))
        joined = dot.join(F.broadcast(sq_i), "i").join(F.broadcast(sq_j), "j")
        shrink = F.lit(cfg.shrink)
        if cfg.similarity == "jaccard":
            den = F.col("sq_i") + F.col("sq_j") - F.col("dot") + shrink
        else:
            alpha = 0.5 if cfg.similarity == "cosine" else cfg.alpha
            den = (
                F.pow(F.col("sq_i"), F.lit(1.0 - alpha)) * F.pow(F.col("sq_j"), F.lit(alpha))
                + shrink
            )
        sim = F.when(den > 0, F.col("dot") / den).otherwise(F.lit(0.0))
        if cfg.locality != 1.0:
            sim = F.pow(F.greatest(sim, F.lit(0.0)), F.lit(cfg.locality))
        best = Window.partitionBy("i").orderBy(F.col("sim").desc(), F.col("j").asc())
        return (
            joined.withColumn("sim", sim)
            .where(F.col("sim") > 0)
            .withColumn("rank", F.row_number().over(best))
            .where(F.col("rank") <= cfg.k)
            .select(
                F.col("i").alias("item_idx"),
                F.col("j").alias("neighbour_idx"),
                F.col("sim"),
            )
        )

    def _spark_similarities(self, n_items: int) -> sp.csr_matrix:
        table = self.similarity_frame(n_items).toArrow()
        rows = table.column("item_idx").to_numpy()
        cols = table.column("neighbour_idx").to_numpy()
        vals = table.column("sim").to_numpy().astype(np.float32)
        out = sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items), dtype=np.float32)
        out.sort_indices()
        return out

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = super()._state()
        if not hasattr(self, "spark_seconds_"):
            return arrays, meta
        engine = {
            "engine": "spark",
            "spark_version": self._spark.version,
            "master": self._spark.sparkContext.master,
            "job": "item co-occurrence (Spark SQL self-join on users)",
            "max_items_per_user": self.max_items_per_user,
            "spark_seconds": self.spark_seconds_,
        }
        return arrays, {**meta, "engine": engine}


def fit_cooccurrence(
    spark: SparkSession,
    export: ParquetExport,
    dataset: Dataset,
    params: Mapping[str, Any] | None = None,
    *,
    max_items_per_user: int = DEFAULT_MAX_ITEMS_PER_USER,
) -> SparkItemKNN:
    """Item co-occurrence similarities on Spark over `export` (whose `Dataset` is `dataset`),
    as an `item-knn` model; `params`: `ItemKNN` hyperparameters (validated)."""
    return SparkItemKNN(
        params, spark=spark, export=export, max_items_per_user=max_items_per_user
    ).fit(dataset)
