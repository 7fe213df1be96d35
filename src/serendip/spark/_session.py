"""Starting (or reusing) a SparkSession, and the per-pair weights every job starts from."""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING

from serendip.data.dataset import DEFAULT_EVENT_WEIGHTS, EVENT_TYPES
from serendip.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["WEIGHTINGS", "pair_weights", "spark_session"]

#: How interactions weigh in a job's matrix, as the models' `weighting` / `confidence` fields:
#: "binary" (1 per pair), "events" (sum of event weights), "log1p" / "linear" (event weight x
#: log(1 + value) / x value; a missing value counts 1). The same rules as `Dataset.matrix`.
WEIGHTINGS: tuple[str, ...] = ("binary", "events", "log1p", "linear")


def spark_session(master: str | None = "local[2]", app_name: str = "serendip") -> SparkSession:
    """The active SparkSession, or a new one on `master` (None: whatever `spark-submit` set).

    Local sessions get a small shuffle width (the default 200 partitions only cost scheduling on
    a few cores), no web UI, and this interpreter for their Python workers (PYSPARK_PYTHON is
    set to it when unset). Raises `ConfigError` when pyspark or Java is missing.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("the Spark engine needs pyspark: pip install 'serendip[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    import os

    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise ConfigError("the Spark engine needs Java (a JDK 17+ on PATH or JAVA_HOME)")
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            # PySpark starts Python workers with $PYSPARK_PYTHON, else whatever `python3` is on
            # PATH (often without NumPy / pyarrow): a local session's workers are this Python.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = (
                builder.config("spark.sql.shuffle.partitions", "4")
                # Python tasks (the batch top-k) run in this interpreter's environment
                .config("spark.pyspark.python", sys.executable)
                .config("spark.default.parallelism", "4")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
            )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _event_weight_sql() -> str:
    cases = " ".join(f"WHEN '{e}' THEN {DEFAULT_EVENT_WEIGHTS[e]!r}" for e in EVENT_TYPES)
    return f"CASE lower(coalesce(event, 'view')) {cases} END"


def pair_weights(interactions: DataFrame, weighting: str) -> DataFrame:
    """One row per (user_idx, item_idx) pair with its weight (double, > 0), summed over the
    pair's interactions under `weighting` (see `WEIGHTINGS`), as `Dataset.matrix` sums them;
    plus `last_ts`, the pair's latest timestamp (null when unknown).

    interactions: the export's interactions table (user_idx, item_idx, event, value, timestamp).
    """
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"unknown weighting '{weighting}'; valid: {', '.join(WEIGHTINGS)}")
    from pyspark.sql import functions as F

    value = "greatest(coalesce(cast(value AS double), 1.0), 0.0)"
    per_row = {
        "binary": "1.0",
        "events": _event_weight_sql(),
        "log1p": f"({_event_weight_sql()}) * ln(1.0 + {value})",
        "linear": f"({_event_weight_sql()}) * {value}",
    }[weighting]
    grouped = interactions.groupBy("user_idx", "item_idx").agg(
        F.sum(F.expr(per_row)).alias("weight"), F.max("timestamp").alias("last_ts")
    )
    if weighting == "binary":
        return grouped.withColumn("weight", F.lit(1.0))
    return grouped.where(F.col("weight") > 0)
