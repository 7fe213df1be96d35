"""`serendip models`, `fit`, `recommend`, `explain` and `similar`: list the zoo, fit one model on
files and save it, write top-k lists from a saved model, and say why it recommends what it does."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from serendip.cli._common import cli_errors, console, progress

if TYPE_CHECKING:
    from serendip.evaluation.fit_tuned import TuningRecord
    from serendip.evaluation.personal import ListProfile
    from serendip.models.base import Recommender

#: Optional third-party packages some models need, by model name or family. Checked with
#: `find_spec`, which locates a package without importing it (listing stays fast).
_NEEDS: dict[str, tuple[str, ...]] = {
    "ials": ("implicit",),
    "word2vec": ("gensim",),
    "sbert": ("sentence_transformers", "torch"),
    "deep": ("torch",),
}


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _missing(name: str, family: str, target: str) -> str:
    """Why a model cannot be used here ("" when it can)."""
    module = target.partition(":")[0]
    if not _found(module):
        return "not implemented in this installation"
    lacking = [m for m in (*_NEEDS.get(name, ()), *_NEEDS.get(family, ())) if not _found(m)]
    return f"needs {', '.join(sorted(set(lacking)))}" if lacking else ""


@cli_errors
def models() -> None:
    """List every model of the zoo with a one-line description."""
    from serendip.models.registry import list_models

    entries = list_models()
    width = max(len(e.name) for e in entries)
    fam_width = max(len(e.family) for e in entries)
    for e in entries:
        why = _missing(e.name, e.family, e.target)
        mark = f"  [unavailable: {why}]" if why else ""
        typer.echo(f"{e.name:<{width}}  {e.family:<{fam_width}}  {e.description}{mark}")


def _read_params(params: str | None, config: Path | None) -> tuple[dict[str, Any], str | None]:
    """Hyperparameters from --params (a JSON object) or --config (a TOML file: flat keys, or a
    [params] table, plus an optional `model = "name"`). Returns (params, model named by TOML)."""
    from serendip.errors import ConfigError

    if params is not None and config is not None:
        raise ConfigError("give either --params or --config, not both")
    if params is not None:
        try:
            value = json.loads(params)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--params is not valid JSON ({exc.msg} at column {exc.colno}); "
                """expected an object such as '{"k": 50}'"""
            ) from None
        if not isinstance(value, dict):
            raise ConfigError(
                f"--params must be a JSON object such as '{{\"k\": 50}}', got {params!r}"
            )
        return value, None
    if config is not None:
        try:
            doc = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config}: invalid TOML ({exc})") from None
        named = doc.pop("model", None)
        if named is not None and not isinstance(named, str):
            raise ConfigError(f"{config}: 'model' must be a model name string")
        table = doc.pop("params", None)
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError(f"{config}: [params] must be a table")
            if doc:
                raise ConfigError(
                    f"{config}: keys outside [params]: {', '.join(sorted(doc))} "
                    "(put every hyperparameter in the [params] table)"
                )
            doc = table
        return doc, named
    return {}, None


@cli_errors
def fit(
    interactions: Annotated[
        Path,
        typer.Option(
            "--interactions",
            help="Interactions CSV/Parquet: user,item[,timestamp][,event][,value].",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to save the fitted model in.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model name (see `serendip models`)."),
    ] = None,
    items: Annotated[
        Path | None, typer.Option("--items", help="Items CSV/Parquet (item,title,text,...).")
    ] = None,
    social: Annotated[
        Path | None, typer.Option("--social", help="Social graph CSV/Parquet (follower,followee).")
    ] = None,
    users: Annotated[
        Path | None, typer.Option("--users", help="Users CSV/Parquet (user,created_at,...).")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option("--params", help="""Hyperparameters as a JSON object, e.g. '{"k": 50}'."""),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of hyperparameters (flat keys or a \\[params] table; "
            'model = "name" optional).',
        ),
    ] = None,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Tune on a validation split carved from the data (NDCG@10), refit the best "
            "parameters on all of it, record the search in the manifest. --params fix keys. "
            "The pipeline first tunes its collaborative candidates alone and searches with the "
            "best as its source.",
        ),
    ] = False,
    protocol: Annotated[
        str | None,
        typer.Option(
            "--protocol",
            help="With --tune: the validation carving, temporal|leave-last|random "
            "(default: temporal when the interactions have timestamps, else random).",
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", help="With --tune: number of trials, defaults included (20)."),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option("--budget", help="With --tune: search for this many minutes instead."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="With --tune: carving and search seed.")] = 0,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local (this process) or spark (ials: MLlib ALS; item-knn: item co-occurrence "
            "on Spark SQL); the artifact is the same format either way.",
        ),
    ] = "local",
    spark_master: Annotated[
        str | None,
        typer.Option("--spark-master", help="With --engine spark: the master (default local[2])."),
    ] = None,
) -> None:
    """Fit one model on the given files and save it to the --out directory."""
    from serendip.data.loaders import load_files
    from serendip.errors import ConfigError
    from serendip.models.registry import create_model

    if not tune:
        given = [
            flag
            for flag, value in (
                ("--protocol", protocol),
                ("--trials", trials),
                ("--budget", budget),
            )
            if value is not None
        ]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply with --tune")
    else:
        from serendip.evaluation.fit_tuned import check_tuning_options

        check_tuning_options(protocol, trials, None if budget is None else budget * 60.0)
    hyper, named = _read_params(params, config)
    if model is None and named is None:
        raise ConfigError('name a model with --model (or model = "..." in --config)')
    if model is not None and named is not None and model != named:
        raise ConfigError(f'--model {model} disagrees with model = "{named}" in {config}')
    name = model or named
    assert name is not None
    if engine not in ("local", "spark"):
        raise ConfigError(f"unknown --engine '{engine}'; valid: local, spark")
    if engine == "spark":
        _fit_spark(name, hyper, tune, spark_master, out, interactions, items, users, social)
        return
    if spark_master is not None:
        raise ConfigError("--spark-master only applies with --engine spark")
    # validate the parameters before reading any data
    recommender = create_model(name, hyper)
    with console.status("loading data"):
        ds = load_files(interactions, items=items, users=users, social=social)
    if tune:
        _fit_tuned(ds, name, hyper, out, protocol, trials, budget, seed)
        return
    with console.status(
        f"fitting {name} on {ds.n_users:,} users x {ds.n_items:,} items "
        f"({ds.n_interactions:,} interactions)"
    ):
        recommender.fit(ds)
    lists = _profile(recommender)
    recommender.save(out, sections={"lists": lists.to_dict()})
    typer.echo(
        f"fitted {name} on {ds.n_users:,} users, {ds.n_items:,} items, "
        f"{ds.n_interactions:,} interactions in {recommender.fit_seconds_:.1f}s -> {out}"
    )
    _print_quality(recommender, lists)


def _profile(model: Recommender) -> ListProfile:
    """The fitted model's list profile (`serendip.evaluation.personal`), with a spinner."""
    from serendip.evaluation.personal import DEFAULT_MAX_USERS, profile_lists

    with console.status(f"profiling the lists of up to {DEFAULT_MAX_USERS:,} users"):
        return profile_lists(model)


def _print_quality(model: Recommender, lists: ListProfile, validation: float | None = None) -> None:
    """What `fit` prints after the fit line: validation NDCG@10 where known (the tuning's best,
    or the pipeline's check on its newest label window), the pipeline's fallback choices, and
    how personal the lists are."""
    from serendip.pipeline.fallback import SEGMENTS
    from serendip.pipeline.recommender import PipelineRecommender

    report = model.fallback if isinstance(model, PipelineRecommender) else None
    if report is not None and report.segments:
        if validation is None and "known" in report.segments:
            known = report.segments["known"]
            validation = known.ndcg.get(known.choice)
        typer.echo(
            f"  fallback      checked on the newest label window ({report.carve}, "
            f"ndcg@{report.k}, {report.seconds:.1f}s)"
        )
        for name in SEGMENTS:
            seg = report.segments.get(name)
            if seg is None:
                continue
            ranker = seg.ndcg.get("ranker", 0.0)
            best = seg.best_alternative
            alt = f"{best} {seg.ndcg.get(best, 0.0):.4f}" if best else "none"
            if seg.forced:
                verdict = (
                    f"{seg.choice}, chosen by tuning (here {seg.ndcg.get(seg.choice, 0.0):.4f}, "
                    f"ranker {ranker:.4f})"
                )
            elif seg.choice == "ranker":
                why = "within the noise of" if seg.tied else "ahead of"
                verdict = f"ranker {ranker:.4f} ({why} the best alternative, {alt})"
            else:
                verdict = f"FALLBACK to {seg.choice} ({alt} > ranker {ranker:.4f})"
            typer.echo(f"    {name + ' users':<14}{verdict}, {seg.n_users:,} users")
    if validation is not None:
        typer.echo(f"  validation    ndcg@10 {validation:.4f}")
    sample = f"{lists.n_users:,} users sampled" if lists.sampled else f"{lists.n_users:,} users"
    typer.echo(
        f"  lists@{lists.k:<8}most-listed item ({lists.top_item}) in "
        f"{lists.top_item_share:.1%} of top {lists.k}s, coverage {lists.coverage:.4f}, "
        f"novelty {lists.novelty:.2f} bits ({sample}, {lists.seconds:.1f}s)"
    )
    if lists.top_item_share > DOMINANT_ITEM_SHARE:
        typer.echo(
            f"  warning       one item is in {lists.top_item_share:.0%} of the lists: the model "
            "may have learned a pattern of the fit's own carve (e.g. time) that your users' "
            "data does not share; tune on the split you judge by: --tune --protocol "
            "random|temporal|leave-last"
        )


#: Above this share of users whose top-k holds the same item, `fit` warns (issue 16.3).
DOMINANT_ITEM_SHARE = 0.5


def _fit_spark(
    name: str,
    hyper: dict[str, Any],
    tune: bool,
    master: str | None,
    out: Path,
    interactions: Path,
    items: Path | None,
    users: Path | None,
    social: Path | None,
) -> None:
    """`fit --engine spark`: export the data to Parquet, fit on Spark, save the artifact."""
    from serendip.data.loaders import load_files
    from serendip.errors import ConfigError
    from serendip.spark import check_spark_model, fit_on_spark

    if tune:
        raise ConfigError("--tune runs with --engine local only")
    check_spark_model(name, hyper)  # before reading any data
    with console.status("loading data"):
        ds = load_files(interactions, items=items, users=users, social=social)
    with console.status(f"fitting {name} on Spark ({master or 'local[2]'})"):
        result = fit_on_spark(ds, name, hyper, out, master=master or "local[2]")
    typer.echo(
        f"fitted {name} on Spark ({result.master}) on {ds.n_users:,} users, {ds.n_items:,} "
        f"items, {ds.n_interactions:,} interactions in {result.fit_seconds:.1f}s -> {out}"
    )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _fit_tuned(
    ds: Any,
    name: str,
    fixed: dict[str, Any],
    out: Path,
    protocol: str | None,
    trials: int | None,
    budget: float | None,
    seed: int,
) -> None:
    """`fit --tune`: carve, tune, refit, save with the record; print a one-screen summary."""
    import math

    from serendip.evaluation.fit_tuned import (
        DEFAULT_TRIALS,
        choose_protocol,
        save_tuned,
        tune_and_fit,
    )
    from serendip.evaluation.tuning import TrialRecord

    budget_s = None if budget is None else budget * 60.0
    chosen = choose_protocol(ds, protocol)
    total = trials if trials is not None else (None if budget_s else DEFAULT_TRIALS)
    best = -math.inf
    with progress(transient=True) as bar:
        what = f"{budget:g} min" if budget is not None else f"{total} trials"
        task = bar.add_task(f"tuning {name} ({chosen} validation, {what})", total=total)

        def on_trial(rec: TrialRecord) -> None:
            nonlocal best
            if rec.stage:  # the pipeline's source stage, before its own trials
                bar.update(
                    task,
                    description=f"tuning {name} ({chosen} validation, {what}): choosing the "
                    f"{rec.stage.replace(':', ' source, trying ')}",
                )
                return
            best = max(best, rec.value)
            shown = f"{best:.4f}" if math.isfinite(best) else "-"
            bar.update(
                task,
                advance=1,
                description=f"tuning {name} ({chosen} validation, {what}) best ndcg@10 {shown}",
            )

        model, record = tune_and_fit(
            ds,
            name,
            params=fixed,
            protocol=chosen,
            trials=trials,
            budget_s=budget_s,
            seed=seed,
            progress=on_trial,
        )
    lists = _profile(model)
    save_tuned(model, record, out, sections={"lists": lists.to_dict()})
    _print_tuning(record)
    typer.echo(
        f"fitted {name} on {ds.n_users:,} users, {ds.n_items:,} items, "
        f"{ds.n_interactions:,} interactions in {model.fit_seconds_:.1f}s -> {out}"
    )
    best = record.best_value
    _print_quality(model, lists, best if math.isfinite(best) else None)


def _print_tuning(record: TuningRecord) -> None:
    """The tuning record as a short table (what `fit --tune` prints)."""
    v = record.validation
    if record.budget_s:
        limit = f"budget {record.budget_s / 60:g} min"
    else:
        limit = f"of {record.requested_trials}"
    failed = f", {record.failed_trials} failed" if record.failed_trials else ""
    typer.echo(
        f"tuned {record.model}: {record.trials} trial{'' if record.trials == 1 else 's'} ({limit}{failed}) "
        f"in {record.tune_seconds:.1f}s on a {record.protocol} validation carving "
        f"({v['train_interactions']:,} train / {v['validation_interactions']:,} validation "
        f"interactions, {v['validation_users']:,} users)"
    )
    typer.echo(f"  metric        {record.metric} on validation")
    if record.implied_params:
        implied = ", ".join(f"{k}={_fmt(val)}" for k, val in record.implied_params.items())
        typer.echo(f"  carving sets  {implied}")
    source = record.source_stage
    if source is not None:
        scores = ", ".join(
            f"{m} {c['validation']:.4f}" if c.get("validation") is not None else f"{m} refused"
            for m, c in source.candidates.items()
        )
        use = "the default source" if source.is_default else "a source the search tries"
        typer.echo(
            f"  source stage  {source.chosen}, best alone ({scores}; {source.seconds:.0f}s): {use}"
        )
    default, best = record.default_value, record.best_value
    label = "given params" if record.fixed_params else "defaults    "
    typer.echo(f"  {label}  {default:.4f}")
    gain = (
        f"  ({(best - default) / default:+.1%} over the {label.strip()})"
        if default > 0 and best > -float("inf")
        else ""
    )
    typer.echo(f"  best          {best:.4f}{gain}")
    if record.fixed_params:
        fixed = ", ".join(f"{k}={_fmt(val)}" for k, val in record.fixed_params.items())
        typer.echo(f"  fixed         {fixed}")
    if not record.searched:
        why = (
            "every dimension is fixed by the given params"
            if record.fixed_params
            else "the model declares no search space"
        )
        typer.echo(f"  searched      nothing ({why})")
    elif not any(k in record.best_params for k in record.searched):
        typer.echo(f"  best params   the {label.strip()} (no trial beat them)")
    else:
        import textwrap

        chosen = ", ".join(
            f"{k}={_fmt(record.best_params[k]) if k in record.best_params else 'default'}"
            for k in record.searched
        )
        lines = textwrap.wrap(chosen, width=80) or [""]
        typer.echo(f"  best params   {lines[0]}")
        for line in lines[1:]:
            typer.echo(f"                {line}")


def _read_users(path: Path) -> list[str]:
    """User IDs from a file with a `user` header and one ID per line."""
    import pandas as pd

    from serendip.errors import DataError

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise DataError("empty file; expected a 'user' header line", file=str(path)) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"not a one-column CSV ({exc})", file=str(path)) from None
    if "user" not in frame.columns:
        raise DataError(
            f"missing the 'user' header (found {', '.join(map(str, frame.columns)) or 'none'})",
            file=str(path),
            line=1,
        )
    ids = frame["user"].str.strip()
    blank = ids == ""
    if blank.any():
        raise DataError(
            "empty user ID", file=str(path), line=int(blank.to_numpy().argmax()) + 2, field="user"
        )
    return list(dict.fromkeys(ids.tolist()))  # unique, first occurrence order


@cli_errors
def recommend(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="A directory written by `serendip fit`.")
    ],
    users: Annotated[
        str,
        typer.Option(
            "--users",
            help="A file of user IDs (header `user`, one per line), or `all` for every user the "
            "model was fitted on.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output CSV: user,item,rank,score.")],
    k: Annotated[int, typer.Option("--k", min=1, help="List length per user.")] = 10,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Processes sharing the users (each loads the model, memory-mapped); 0: one per "
            "CPU core (at most 4) from 20,000 users on, else 1.",
        ),
    ] = 0,
) -> None:
    """Write the top-K unseen items of each user as CSV (user,item,rank,score)."""
    from serendip.pipeline.serving import serving_model
    from serendip.serving.batch import recommend_batch

    ids = None if users == "all" and not Path(users).is_file() else _read_users(Path(users))
    with progress(transient=True) as bar:
        task = bar.add_task("recommending", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        frame, n_users, unknown = recommend_batch(
            model_dir, ids, k, workers=workers, progress=advance, adapter=serving_model
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    cold = f" ({unknown:,} unknown to the model: cold-start lists)" if unknown else ""
    typer.echo(f"wrote {len(frame):,} recommendations for {n_users:,} users{cold} -> {out}")


@cli_errors
def explain(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="A directory written by `serendip fit`.")
    ],
    user: Annotated[str, typer.Option("--user", help="The user to explain for.")],
    item: Annotated[
        str | None,
        typer.Option("--item", help="The item to explain; default: the user's top-K list."),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="List length when --item is absent.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Why a saved model recommends an item (or each of the user's top-K) to a user."""
    from serendip.models.base import Recommender

    rec = Recommender.load(model_dir)
    items = [item] if item is not None else rec.recommend([user], k).item_ids(0)
    explanations = [rec.explain(user, i) for i in items]
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in explanations], indent=2))
        return
    for e in explanations:
        typer.echo(f"{e.item}  score={e.score:.4g}  {e.text or '(no sentence)'}")
        for ev in e.evidence:
            label = f" ({ev.label})" if ev.label else ""
            typer.echo(f"    {ev.kind:10s} {ev.id}{label}  weight={ev.weight:.4g}")


@cli_errors
def similar(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="A directory written by `serendip fit`.")
    ],
    item: Annotated[str, typer.Option("--item", help="The item to find neighbours of.")],
    k: Annotated[int, typer.Option("--k", min=1, help="How many similar items.")] = 10,
) -> None:
    """The K items a saved model finds most similar to an item, as CSV (item,similar,rank,score)."""
    from serendip.models.base import Recommender

    rec = Recommender.load(model_dir)
    frame = (
        rec.similar_items(item, k).to_frame().rename(columns={"user": "item", "item": "similar"})
    )
    typer.echo(frame.to_csv(index=False), nl=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("models")(models)
    app.command("fit")(fit)
    app.command("recommend")(recommend)
    app.command("explain")(explain)
    app.command("similar")(similar)
