"""Batch top-k recommendations for every user on Spark, from factors fitted there.

A blocked cross join: the item factors (and item IDs) are broadcast once, each task scores a
block of users against the whole catalog with one matrix product (`block_users` x n_items
float32 scores at a time), drops the user's seen items and keeps the top k. MLlib's
`recommendForAllUsers` cannot drop seen items, which every Serendip list does.

Output: Parquet files (user, item, rank, score), the same columns `serendip recommend` writes,
for users with at least one pair (users without any are served by popularity at request time).
The scoring function is a closure over NumPy and pyarrow only, so executors need those two
packages, not Serendip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from serendip.errors import ConfigError
from serendip.spark._export import ParquetExport

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["recommend_all"]


def recommend_all(
    spark: SparkSession,
    export: ParquetExport,
    als: ALSModel,
    item_factors: np.ndarray,
    k: int,
    *,
    block_users: int = 256,
) -> DataFrame:
    """The top-`k` unseen items of every user with factors in `als` (the fitted MLlib model of
    `SparkIALS.mllib_model_`), scored x_u . y_i with `item_factors` (n_items, rank) as the
    artifact holds them. Returns the (lazy) DataFrame; write it with `.write.parquet(path)`.

    Ties break by item index, as `Recommender.recommend` does.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if block_users < 1:
        raise ConfigError(f"block_users must be at least 1, got {block_users}")
    from pyspark.sql import functions as F

    item_ids = np.asarray(
        spark.read.parquet(export.path("items"))
        .select("item_idx", "item")
        .orderBy("item_idx")
        .toArrow()
        .column("item")
        .to_pylist(),
        dtype=object,
    )
    if len(item_ids) != item_factors.shape[0]:
        raise ConfigError(
            f"{item_factors.shape[0]} item factor rows for an export of {len(item_ids)} items"
        )
    shared = spark.sparkContext.broadcast((np.ascontiguousarray(item_factors), item_ids))
    seen = (
        spark.read.parquet(export.path("interactions"))
        .groupBy("user_idx")
        .agg(F.array_sort(F.collect_set("item_idx")).alias("seen"))
    )
    users = spark.read.parquet(export.path("users")).select("user_idx", "user")
    frame = (
        als.userFactors.withColumnRenamed("id", "user_idx")
        .join(seen, "user_idx")
        .join(users, "user_idx")
        .select("user", "features", "seen")
    )
    n_items = len(item_ids)
    top = min(k, n_items)

    def score_blocks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        factors, ids = shared.value
        for batch in batches:
            n = batch.num_rows
            if n == 0:
                continue
            feats = batch.column("features")
            rank = factors.shape[1]
            x = feats.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(n, rank)
            seen_col = batch.column("seen")
            offsets = seen_col.offsets.to_numpy()
            seen_items = seen_col.values.to_numpy(zero_copy_only=False)
            user_col = batch.column("user").to_numpy(zero_copy_only=False)
            for s in range(0, n, block_users):
                e = min(n, s + block_users)
                scores = x[s:e] @ factors.T
                rows = np.repeat(np.arange(e - s), np.diff(offsets[s : e + 1]))
                scores[rows, seen_items[offsets[s] : offsets[e]]] = -np.inf
                part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
                part_scores = np.take_along_axis(scores, part, axis=1)
                # best first; equal scores by item index (lexsort: last key is primary)
                order = np.lexsort((part, -part_scores), axis=1)
                best = np.take_along_axis(part, order, axis=1)
                best_scores = np.take_along_axis(part_scores, order, axis=1)
                keep = np.isfinite(best_scores)
                counts = keep.sum(axis=1)
                yield pa.record_batch(
                    {
                        "user": pa.array(np.repeat(user_col[s:e], counts), pa.string()),
                        "item": pa.array(ids[best[keep]], pa.string()),
                        "rank": pa.array(
                            np.concatenate([np.arange(1, c + 1, dtype=np.int32) for c in counts])
                        ),
                        "score": pa.array(best_scores[keep].astype(np.float32)),
                    }
                )

    return frame.mapInArrow(score_blocks, "user string, item string, rank int, score float")
