"""Batch work on Spark (`local[*]` or a cluster): iALS, item co-occurrence and batch top-k over
the store's Parquet export, written in the artifact format the service loads.

- `export_dataset(dataset, dir)` / `read_export(dir)`: the Parquet export (from files, or from
  the store through `Store.to_dataset()`) and the same `Dataset` back;
- `fit_on_spark(dataset, "ials" | "item-knn", params, out, master=...)`: export, fit on Spark,
  save an ordinary `ials` / `item-knn` artifact (`Recommender.load` and `serendip serve` take it
  unchanged); `fit_export` does the same from an existing export;
- `fit_ials`, `fit_cooccurrence`: the two jobs; `recommend_all`: every user's top-k on Spark.

pyspark is imported only inside the jobs, so importing this package stays light.
`python -m serendip.spark` is the `spark-submit` entry point (see docs/spark.md).
"""

from __future__ import annotations

from serendip.spark._export import ParquetExport, export_dataset, open_export, read_export
from serendip.spark._job import SPARK_MODELS, SparkFit, check_spark_model, fit_export, fit_on_spark

__all__ = [
    "SPARK_MODELS",
    "ParquetExport",
    "SparkFit",
    "check_spark_model",
    "export_dataset",
    "fit_export",
    "fit_on_spark",
    "open_export",
    "read_export",
]
