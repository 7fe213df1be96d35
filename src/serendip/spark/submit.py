"""The `spark-submit` entry point: export the data once, then fit on the cluster.

    python -m serendip.spark export SOURCE --out /shared/export     # or --db URL (the store)
    spark-submit --master yarn "$(python -m serendip.spark path)" \\
        fit --export /shared/export --model ials --params '{"factors": 64}' --out models/ials \\
        [--recommend-k 50 --recommendations /shared/recs]

`path` prints this file's location (spark-submit takes a file). The export must sit where both
the driver and every executor read it (a shared mount). A mistake prints one `error:` line and
exits 1. With `--master` left to spark-submit, the session takes the cluster's settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from serendip.errors import ConfigError, SerendipError

__all__ = ["main"]


def _params(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ConfigError("--params must be a JSON object such as '{\"factors\": 64}'")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m serendip.spark", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write the Parquet export of a data source or the store")
    ex.add_argument("source", nargs="?", help="a data source (as `serendip analyze` takes)")
    ex.add_argument("--db", help="export the store at this database URL instead")
    ex.add_argument("--out", required=True, help="export directory")
    fit = sub.add_parser("fit", help="fit a model on Spark from an export, save its artifact")
    fit.add_argument("--export", required=True, help="export directory")
    fit.add_argument("--model", required=True, help="ials or item-knn")
    fit.add_argument("--params", help="hyperparameters as a JSON object")
    fit.add_argument("--out", required=True, help="artifact directory (on the driver)")
    fit.add_argument("--master", help="Spark master (default: what spark-submit set)")
    fit.add_argument("--recommend-k", type=int, help="also write every user's top-k (ials)")
    fit.add_argument("--recommendations", help="directory of the top-k Parquet files")
    sub.add_parser("path", help="print this file's path (for spark-submit)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "path":
            print(__file__)
        elif args.command == "export":
            _export(args)
        else:
            _fit(args)
    except SerendipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _export(args: argparse.Namespace) -> None:
    from serendip.spark._export import export_dataset

    if (args.source is None) == (args.db is None):
        raise ConfigError("give either a SOURCE or --db URL")
    if args.db is not None:
        from serendip.store import Store

        with Store.open(args.db, migrate=False) as store:
            dataset = store.to_dataset()
    else:
        from serendip.data.loaders import load_source

        dataset = load_source(args.source)
    export = export_dataset(dataset, args.out)
    print(
        f"exported {export.n_users:,} users, {export.n_items:,} items, "
        f"{export.n_interactions:,} interactions -> {export.directory}"
    )


def _fit(args: argparse.Namespace) -> None:
    from serendip.spark._export import open_export
    from serendip.spark._job import check_spark_model, fit_export
    from serendip.spark._session import spark_session

    check_spark_model(args.model)
    params = _params(args.params)
    export = open_export(args.export)
    spark = spark_session(args.master)
    result = fit_export(
        spark,
        export,
        args.model,
        params,
        args.out,
        recommend_k=args.recommend_k,
        recommendations=args.recommendations,
    )
    extra = (
        f", top-{args.recommend_k} lists -> {result.recommendations}"
        if result.recommendations
        else ""
    )
    print(
        f"fitted {args.model} on Spark ({result.master}) in {result.fit_seconds:.1f}s "
        f"-> {result.artifact}{extra}"
    )


if __name__ == "__main__":
    sys.exit(main())
