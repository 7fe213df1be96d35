"""`serendip experiments create|list|start|stop|results|sample-size`: A/B and interleaving
experiments against a store, the same lifecycle as `/v1/experiments`
(`serendip.service.experiments`). A server on the same store picks up a start or stop within
a few seconds (it re-reads the running experiment); the results read the exposures the servers
logged and the events of the experiment's period."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from serendip.cli._common import cli_errors

app = typer.Typer(
    help="A/B and interleaving experiments: create, list, start, stop, results, sample size.",
    no_args_is_help=True,
)

DbOption = Annotated[
    str, typer.Option("--db", help="Store URL, e.g. sqlite:///./serendip-data/serendip.db.")
]
IdArgument = Annotated[str, typer.Argument(help="The experiment's ID.")]


def _store(url: str) -> Any:
    from serendip.cli.export import _open_store

    return _open_store(url)


def _when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _variants(spec: dict[str, Any]) -> str:
    from serendip.experiments.spec import parse_spec

    parsed = parse_spec(spec)
    versions = {v.name: v.model_version or "active" for v in parsed.variants}
    return ", ".join(f"{name} {share:.0%} [{versions[name]}]" for name, share in parsed.shares)


def _read_spec(spec: str) -> dict[str, Any]:
    from serendip.errors import ConfigError

    text = spec if spec.lstrip().startswith("{") else None
    if text is None:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"--spec {spec}: no such file (give a JSON file or inline JSON)")
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--spec: not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--spec: expected a JSON object, got {type(data).__name__}")
    return data


@app.command("create")
@cli_errors
def create(
    experiment_id: IdArgument,
    db: DbOption,
    spec: Annotated[
        str,
        typer.Option(
            "--spec",
            help='The spec as a JSON file or inline JSON: {"kind": "ab", "variants": [{"name": '
            '"control", "share": 0.5, "model_version": "v1"}, ...], "primary_metric": "click"}',
        ),
    ],
) -> None:
    """Create a draft experiment (validated; variants must name registered model versions)."""
    from serendip.service.experiments import create_experiment

    store = _store(db)
    try:
        exp = create_experiment(store, experiment_id, _read_spec(spec))
    finally:
        store.close()
    typer.echo(
        f"created {exp.kind} experiment '{exp.experiment_id}' (draft): {_variants(exp.spec)}; "
        f"primary metric {exp.spec['primary_metric']}"
    )


@app.command("list")
@cli_errors
def list_(
    db: DbOption,
    status: Annotated[
        str | None, typer.Option("--status", help="Only draft, running or stopped ones.")
    ] = None,
) -> None:
    """Every experiment, oldest first: ID, kind, status, start, stop, variants."""
    from serendip.errors import ConfigError

    if status is not None and status not in ("draft", "running", "stopped"):
        raise ConfigError(f"--status {status}: one of draft, running, stopped")
    store = _store(db)
    try:
        found = store.experiments.list(status)
    finally:
        store.close()
    if not found:
        typer.echo("no experiments")
        return
    for e in found:
        typer.echo(
            f"{e.experiment_id}  {e.kind}  {e.status}  started {_when(e.started_at)}  "
            f"stopped {_when(e.stopped_at)}  {_variants(e.spec)}"
        )


@app.command("start")
@cli_errors
def start(experiment_id: IdArgument, db: DbOption) -> None:
    """Start a draft experiment (one runs at a time)."""
    from serendip.service.experiments import start_experiment

    store = _store(db)
    try:
        exp = start_experiment(store, experiment_id)
    finally:
        store.close()
    typer.echo(
        f"started '{exp.experiment_id}' at {_when(exp.started_at)}; servers on this store "
        "route users to its variants within seconds"
    )


@app.command("stop")
@cli_errors
def stop(experiment_id: IdArgument, db: DbOption) -> None:
    """Stop a running experiment: every user gets the active model again."""
    from serendip.service.experiments import stop_experiment

    store = _store(db)
    try:
        exp = stop_experiment(store, experiment_id)
    finally:
        store.close()
    typer.echo(f"stopped '{exp.experiment_id}' at {_when(exp.stopped_at)}")


@app.command("results")
@cli_errors
def results(
    experiment_id: IdArgument,
    db: DbOption,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole report as JSON.")
    ] = False,
) -> None:
    """The analysis: per-variant rates with CIs, lifts, p-values, the sample-ratio check,
    guardrails (A/B), or wins and the sign test (interleaving)."""
    from serendip.service.experiments import experiment_results

    store = _store(db)
    try:
        report = experiment_results(store, experiment_id)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for line in _summary(report):
        typer.echo(line)


def _pct(x: object) -> str:
    return f"{x:.2%}" if isinstance(x, (int, float)) else "n/a"


def _p(x: object) -> str:
    return f"{x:.3g}" if isinstance(x, (int, float)) else "n/a"


def _summary(report: dict[str, Any]) -> list[str]:
    """The report in a few readable lines."""
    if "rankers" in report:  # interleaving
        a, b = report["rankers"]
        return [
            f"interleaving on {report['metric']}: {report['exposures']} lists; {a} won "
            f"{report['wins_a']}, {b} won {report['wins_b']}, ties {report['ties']}; "
            f"sign test p={_p(report['p_value'])}; preferred: {report['preferred'] or 'neither'}"
        ]
    lines = [f"{report['metric']} on {report['primary_metric']} (alpha {report['alpha']}):"]
    for v in report["variants"]:
        lo, hi = v["rate_ci"]
        line = (
            f"  {v['name']}: {v['users']} users, {v['exposures']} exposures, rate "
            f"{_pct(v['rate'])} [{_pct(lo)}, {_pct(hi)}]"
        )
        cmp = v.get("comparison")
        if cmp:
            line += (
                f", lift {cmp['lift']:+.1%} p={_p(cmp['p_value'])}"
                f" (bootstrap p={_p(v['bootstrap_p_value'])})"
            )
        if v.get("sequential_p_value") is not None:
            line += f", sequential p={_p(v['sequential_p_value'])}"
        if v.get("sequential_boundary") is not None:
            crossed = v.get("sequential_crossed_at")
            line += f", alpha spending |z| boundary {v['sequential_boundary']:.2f}" + (
                f" crossed at look {crossed + 1}" if crossed is not None else " not crossed"
            )
        lines.append(line)
    srm = report["srm"]
    lines.append(
        f"sample ratio: {'MISMATCH' if srm['mismatch'] else 'ok'} (p={_p(srm['p_value'])})"
    )
    for g in report.get("guardrails", []):
        state = "VIOLATED" if g["violated"] else "ok"
        lines.append(
            f"guardrail {g['metric']} ({g['variant']}): {state}, lift {g['lift']:+.1%} "
            f"p={_p(g['p_value'])}"
        )
    lines.append(f"decision: {report['decision']}")
    return lines


@app.command("sample-size")
@cli_errors
def sample_size(
    baseline: Annotated[
        float, typer.Option("--baseline", help="The control's conversion rate, e.g. 0.1.")
    ],
    lift: Annotated[float, typer.Option("--lift", help="Relative lift to detect, e.g. 0.05.")],
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided test level.")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="Power to detect the lift.")] = 0.8,
    treatment_share: Annotated[
        float, typer.Option("--treatment-share", help="The treatment's share of traffic.")
    ] = 0.5,
) -> None:
    """Users needed to detect a relative lift on a conversion rate."""
    from serendip.experiments.power import sample_size as per_control
    from serendip.experiments.power import total_sample_size

    shares = (1.0 - treatment_share, treatment_share)
    n_control = per_control(baseline, lift, alpha, power, shares)
    total = total_sample_size(baseline, lift, alpha, power, shares)
    typer.echo(
        f"{n_control:,} users in the control, {total:,} in all, to detect a {lift:+.1%} lift on "
        f"a {baseline:.2%} rate (alpha {alpha}, power {power}, treatment share "
        f"{treatment_share:.0%})"
    )


def register(root: typer.Typer) -> None:
    """Add this module's commands to the app."""
    root.add_typer(app, name="experiments")
