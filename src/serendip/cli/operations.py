"""Operations commands: `serendip monitors`, `retrain`, `schedule`, `rollback`, `promote`.

They work on the store alone (a running server follows the store's active version within
seconds: `serendip.service.watcher`), so they run from cron, a CI job or a shell.

Exit codes: 0 done (retrain/promote: the candidate now serves; monitors: all within bounds),
1 a mistake in the input (one `error:` line) or, for `monitors`, a monitor out of bounds (so
cron mails it), 3 the gate kept the active model (retrain, promote). See docs/operations.md.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from serendip.cli._common import cli_errors, console
from serendip.errors import ConfigError

if TYPE_CHECKING:
    from serendip.operations.monitors import MonitorReport
    from serendip.operations.retrain import RetrainReport
    from serendip.store import Store

#: Exit code when the gate keeps the active model.
EXIT_KEPT = 3

DbOption = Annotated[
    str, typer.Option("--db", help="Store URL, e.g. sqlite:///./serendip-data/serendip.db.")
]
ArtifactsOption = Annotated[
    Path, typer.Option("--artifacts", help="Directory where new model versions are saved.")
]
WindowOption = Annotated[
    float | None,
    typer.Option(
        "--window-days", help="Train on the last N days of events before the newest (all: unset)."
    ),
]
ToleranceOption = Annotated[
    float,
    typer.Option(
        "--tolerance",
        help="Relative: promote when candidate >= active x (1 - tolerance) on the holdout.",
    ),
]

_out = Console()


def _open_store(url: str) -> Store:
    """The store at `url`, schema checked (never migrated here: a deploy step or `serve` does)."""
    from serendip.store import Store

    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ConfigError(f"--db {url}: no such database file")
    return Store.open(url, migrate=False)


def parse_every(text: str) -> float:
    """'90s', '30m', '1h', '2d' or a number of seconds -> seconds (ConfigError otherwise)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ConfigError(f"--every {text!r}: give a duration like 90s, 30m, 1h or 2d")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}[m.group(2)]
    if seconds < 1:
        raise ConfigError(f"--every {text!r}: at least one second")
    return seconds


def _parse_time(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--end {text!r}: give epoch seconds or an ISO 8601 time") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


# ----------------------------------------------------------------------------- monitors
def _print_report(report: MonitorReport) -> None:
    table = Table(
        title=f"monitors {_when(report.window_start)} – {_when(report.window_end)} "
        f"(reference from {_when(report.reference_start)})"
    )
    for col in ("monitor", "kind", "value", "min", "max", "status", "n"):
        table.add_column(col, justify="right" if col in ("value", "min", "max", "n") else "left")
    for r in report.results:
        status = (
            "[red]OUT OF BOUNDS[/red]"
            if r.out_of_bounds
            else ("no data" if r.value is None else "[green]ok[/green]")
        )
        table.add_row(
            r.name, r.kind, _fmt(r.value), _fmt(r.bound.min), _fmt(r.bound.max), status, str(r.n)
        )
    _out.print(table)


def run_monitors_once(db: str, config_file: Path | None, end: float | None, as_json: bool) -> int:
    """Compute and print the monitors; the number out of bounds."""
    from serendip.operations.config import load_monitor_config
    from serendip.operations.monitors import run_monitors

    config = load_monitor_config(config_file)
    store = _open_store(db)
    try:
        report = run_monitors(store, config, end=end)
    finally:
        store.close()
    out = report.out_of_bounds
    if as_json:
        doc = {
            "window_start": report.window_start,
            "window_end": report.window_end,
            "reference_start": report.reference_start,
            "out_of_bounds": [r.name for r in out],
            "monitors": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "value": r.value,
                    "min": r.bound.min,
                    "max": r.bound.max,
                    "out_of_bounds": r.out_of_bounds,
                    "n": r.n,
                    "note": r.note,
                }
                for r in report.results
            ],
        }
        print(json.dumps(doc, indent=2))
    else:
        _print_report(report)
        if out:
            print(
                f"{len(out)} monitor(s) out of bounds: "
                + "; ".join(
                    f"{r.name} = {_fmt(r.value)} (min {_fmt(r.bound.min)}, max {_fmt(r.bound.max)})"
                    for r in out
                )
            )
        else:
            print(f"all {len(report.results)} monitors within bounds (or without data)")
    return len(out)


@cli_errors
def monitors(
    db: DbOption,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="TOML thresholds (SERENDIP_MONITORS_FILE's format); default: built-in."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="End of the window: epoch seconds or ISO 8601 (default: now)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every live quality and drift monitor with its value and thresholds; exit 1 when any is
    out of bounds (for cron)."""
    if run_monitors_once(db, config, _parse_time(end), as_json):
        raise typer.Exit(code=1)


# ----------------------------------------------------------------------------- retrain
def _print_retrain(report: RetrainReport) -> None:
    table = Table(title=f"holdout metrics (gate: {report.metric})")
    table.add_column("metric")
    table.add_column("candidate", justify="right")
    table.add_column("active", justify="right")
    for name, v in sorted(report.candidate_metrics.items()):
        a = None if report.active_metrics is None else report.active_metrics.get(name)
        table.add_row(name, _fmt(v), _fmt(a))
    console.print(table)
    lineage = report.lineage
    window = lineage["data_window"]
    if report.promoted and report.version is not None:
        print(
            f"promoted {report.version.version} ({report.version.name}), now active: "
            f"{report.reason}; trained on {window['events']} events, refit on the whole window "
            f"({report.seconds:.1f} s)"
        )
    else:
        kept = report.active or "none"
        extra = f"; registered as {report.version.version}" if report.version else ""
        print(f"kept the active model {kept}: {report.reason}{extra}")


def _retrain_once(
    db: str,
    artifacts: Path,
    model: str | None,
    params: str | None,
    window_days: float | None,
    tolerance: float,
    holdout: float,
) -> RetrainReport:
    from serendip.operations.retrain import candidate_like_active, fit_candidate, retrain

    fixed = _params(params)
    store = _open_store(db)
    try:
        candidate = (
            fit_candidate(model, fixed) if model is not None else candidate_like_active(store)
        )
        with console.status("retraining") as status:
            report = retrain(
                store,
                artifacts,
                candidate,
                window_days=window_days,
                tolerance=tolerance,
                holdout_fraction=holdout,
                progress=lambda msg: status.update(msg),
            )
    finally:
        store.close()
    _print_retrain(report)
    return report


def _params(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--params: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError("--params: give a JSON object of hyperparameters")
    return value


ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Model of the zoo to fit (default: the active version's)."),
]
ParamsOption = Annotated[
    str | None, typer.Option("--params", help="Hyperparameters as a JSON object (with --model).")
]
HoldoutOption = Annotated[
    float, typer.Option("--holdout", help="Share of the window's newest events held out.")
]


@cli_errors
def retrain_cmd(
    db: DbOption,
    artifacts: ArtifactsOption,
    model: ModelOption = None,
    params: ParamsOption = None,
    window_days: WindowOption = None,
    tolerance: ToleranceOption = 0.01,
    holdout: HoldoutOption = 0.2,
) -> None:
    """Fit a candidate on the store's window, judge it and the active model on the freshest
    holdout, and promote it only if it is not worse beyond the tolerance (exit 0), else keep
    the active model and say why (exit 3). The promoted model is refit on the whole window."""
    report = _retrain_once(db, artifacts, model, params, window_days, tolerance, holdout)
    if not report.promoted:
        raise typer.Exit(code=EXIT_KEPT)


# ----------------------------------------------------------------------------- schedule
@cli_errors
def schedule(
    db: DbOption,
    artifacts: ArtifactsOption,
    every: Annotated[
        str, typer.Option("--every", help="Interval: 90s, 30m, 1h, 2d or seconds.")
    ] = "1h",
    model: ModelOption = None,
    params: ParamsOption = None,
    window_days: WindowOption = None,
    tolerance: ToleranceOption = 0.01,
    holdout: HoldoutOption = 0.2,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML monitor thresholds.")
    ] = None,
    times: Annotated[
        int | None, typer.Option("--times", min=1, help="Stop after N rounds (default: never).")
    ] = None,
) -> None:
    """Run retrain, then the monitors, every --every until stopped (Ctrl-C). A failed round is
    reported and the next one runs. The cron equivalent, hourly:

        0 * * * *  serendip retrain --db URL --artifacts DIR; serendip monitors --db URL
    """
    from serendip.errors import SerendipError

    interval = parse_every(every)
    rounds = 0
    while True:
        start = time.monotonic()
        rounds += 1
        print(f"round {rounds} at {_when(time.time())}")
        try:
            _retrain_once(db, artifacts, model, params, window_days, tolerance, holdout)
        except SerendipError as exc:
            print(f"retrain failed: {exc}", file=sys.stderr)
        try:
            run_monitors_once(db, config, None, False)
        except SerendipError as exc:
            print(f"monitors failed: {exc}", file=sys.stderr)
        if times is not None and rounds >= times:
            return
        wait = max(0.0, interval - (time.monotonic() - start))
        print(f"next round in {wait:.0f} s")
        time.sleep(wait)


# ----------------------------------------------------------------------------- rollback
@cli_errors
def rollback(db: DbOption) -> None:
    """Re-activate the version that was active before the current one; a running server swaps
    it in within seconds."""
    store = _open_store(db)
    try:
        before = store.models.active()
        target = store.models.rollback()
    finally:
        store.close()
    was = "none" if before is None else f"{before.version} ({before.name})"
    print(f"rolled back: {target.version} ({target.name}) is active again (was {was})")


# ----------------------------------------------------------------------------- promote
@cli_errors
def promote(
    study: Annotated[
        Path, typer.Option("--study", help="A study's output directory (with results.json).")
    ],
    db: DbOption,
    artifacts: ArtifactsOption,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="The study dataset to take the winner from.")
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option("--protocol", help="The protocol to take it from (default: temporal)."),
    ] = None,
    window_days: WindowOption = None,
    tolerance: ToleranceOption = 0.01,
) -> None:
    """Take the study's winner (best of its metric on one dataset and protocol), fit it with
    its tuned parameters on the store's data, register it as a candidate version and send it
    through the retraining gate: exit 0 when it now serves, 3 when the active model stays."""
    from serendip.operations.promote import promote_study_winner

    store = _open_store(db)
    try:
        with console.status("promoting the study's winner") as status:
            winner, report = promote_study_winner(
                store,
                artifacts,
                study,
                dataset=dataset,
                protocol=protocol,
                window_days=window_days,
                tolerance=tolerance,
                progress=lambda msg: status.update(msg),
            )
    finally:
        store.close()
    runner = (
        f", runner-up {winner.runner_up[0]} {winner.runner_up[1]:.4f}" if winner.runner_up else ""
    )
    print(
        f"study winner on {winner.dataset} / {winner.protocol}: {winner.model} "
        f"({winner.metric} {winner.value:.4f}{runner})"
    )
    _print_retrain(report)
    if not report.promoted:
        raise typer.Exit(code=EXIT_KEPT)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("monitors")(monitors)
    app.command("retrain")(retrain_cmd)
    app.command("schedule")(schedule)
    app.command("rollback")(rollback)
    app.command("promote")(promote)
