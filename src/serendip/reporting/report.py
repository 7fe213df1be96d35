"""`serendip report`: the decision report (HTML and PDF) from a study, a scale file and a costs file.

`build_report` reads the inputs once and returns a `ReportData`: every table as data (`Table` of
`Cell`s that name their source), the options, the decision. `write_report` renders
``report.html`` with its charts and prints ``report.pdf`` with headless Chromium.

>>> data = build_report(Path("demo-out/study"))  # doctest: +SKIP
>>> write_report(data, Path("demo-out/report"))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from serendip.errors import ConfigError, DataError
from serendip.reporting import charts
from serendip.reporting.costs import Costs, load_costs
from serendip.reporting.data import (
    Cell,
    StudyView,
    Table,
    derived,
    fmt_number,
    load_analysis,
    load_study,
    money,
    sourced,
    text,
)
from serendip.reporting.decision import (
    BEYOND_METRICS,
    Decision,
    Option,
    decide,
    options,
    peak_rps,
    rule_text,
)
from serendip.reporting.scale import METRICS, ScaleFile, from_benchmarks, load_scale, project

__all__ = [
    "SCALES",
    "ReportData",
    "build_report",
    "chromium_path",
    "default_benchmarks_dir",
    "draw_charts",
    "print_pdf",
    "write_report",
]

#: Platform sizes (users) the infrastructure and cost sections are computed at.
SCALES: tuple[int, ...] = (100_000, 1_000_000, 10_000_000)

#: The report's sections, in order: (anchor, title).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Executive summary and recommendation"),
    ("options", "The options: pros and cons"),
    ("literature", "Literature review"),
    ("data", "Data availability and quality"),
    ("prototypes", "The prototypes compared"),
    ("metrics", "Evaluation metrics defined"),
    ("infrastructure", "Infrastructure requirements"),
    ("cost", "Cost: build and run against buy"),
    ("privacy", "Privacy, explainability and cold start"),
    ("risks", "Risks and open questions"),
    ("appendix", "Appendix: prices, assumptions and sources"),
)


@dataclass(slots=True)
class ReportData:
    study: StudyView
    scale: ScaleFile
    costs: Costs
    analysis: dict[str, Any] | None
    options: list[Option]
    decision: Decision
    tables: dict[str, Table]
    documents: dict[str, Any]
    assessment_html: str | None = None
    assessment_note: str = ""
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def sections(self) -> tuple[tuple[str, str], ...]:
        return SECTIONS


#: The scale benchmark's output in benchmarks/results, preferred over the file built from the
#: other benchmarks' results.
SCALE_FILE = "scale.json"


def default_benchmarks_dir() -> Path | None:
    """benchmarks/results of the source checkout this package runs from, when there is one."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "benchmarks" / "results"
        if candidate.is_dir():
            return candidate
    return None


def _scale(scale: Path | str | None) -> ScaleFile:
    if scale is not None:
        return load_scale(scale)
    bench = default_benchmarks_dir()
    if bench is None:
        raise DataError("no --scale file and no benchmarks/results to build one from")
    measured = bench / SCALE_FILE
    if measured.is_file():  # written by the scale benchmark (benchmarks/bench_scale.py)
        return load_scale(measured)
    return from_benchmarks(bench)


# -- assessment (the privacy work's output) -----------------------------------------------


#: The files `serendip assess` writes (serendip.reporting.assessment.write_assessment), preferred first.
ASSESSMENT_FILES: tuple[str, ...] = (
    "privacy-impact-assessment.json",
    "privacy-impact-assessment.html",
    "privacy-impact-assessment.md",
)


def _assessment_json_html(doc: Mapping[str, Any]) -> str:
    """The assessment's JSON (Assessment.to_dict) as an HTML summary: purposes, risks and the
    mitigations that address them (each with its enforcing code and proving test), missing ones,
    and the personal-data tables."""
    e = html.escape
    created = doc.get("created", "")
    if isinstance(created, (int, float)):
        created = datetime.fromtimestamp(float(created), UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts: list[str] = [
        f"<p>Assessment of <code>{e(str(doc.get('database', '')))}</code>, created {e(str(created))}.</p>"
    ]
    purposes = [p for p in doc.get("purposes") or [] if isinstance(p, Mapping)]
    if purposes:
        parts.append("<h4>Purposes</h4><table><tr><th>purpose</th><th>data</th><th>basis</th></tr>")
        parts += [
            f"<tr><td>{e(str(p.get('name')))}</td><td>{e(str(p.get('data')))}</td><td>{e(str(p.get('basis')))}</td></tr>"
            for p in purposes
        ]
        parts.append("</table>")
    coverage = doc.get("risk_coverage") or {}
    risks = [r for r in doc.get("risks") or [] if isinstance(r, Mapping)]
    if risks:
        parts.append(
            "<h4>Risks and mitigations</h4><table><tr><th>risk</th><th>mitigated by</th></tr>"
        )
        for r in risks:
            by = ", ".join(str(x) for x in coverage.get(str(r.get("id")), [])) or "none listed"
            parts.append(
                f"<tr><td>{e(str(r.get('id')))} {e(str(r.get('title')))}</td><td>{e(by)}</td></tr>"
            )
        parts.append("</table>")
    mitigations = [m for m in doc.get("mitigations") or [] if isinstance(m, Mapping)]
    if mitigations:
        parts.append("<h4>Mitigations (code and test checked to exist)</h4><ul>")
        parts += [
            f"<li>{e(str(m.get('id')))} {e(str(m.get('title')))}: <code>{e(str(m.get('code')))}</code>, <code>{e(str(m.get('test')))}</code></li>"
            for m in mitigations
        ]
        parts.append("</ul>")
    missing = [m for m in doc.get("missing") or [] if isinstance(m, Mapping)]
    if missing:
        parts.append("<h4>Mitigations missing</h4><ul>")
        parts += [
            f"<li>{e(str(m.get('id')))} {e(str(m.get('title')))}: {e('; '.join(str(x) for x in m.get('problems') or []))}</li>"
            for m in missing
        ]
        parts.append("</ul>")
    tables = [t for t in doc.get("tables") or [] if isinstance(t, Mapping)]
    personal = [str(t.get("name")) for t in tables if t.get("personal")]
    if tables:
        parts.append(
            f"<p>{len(personal)} of {len(tables)} stored tables hold personal data: {e(', '.join(personal))}.</p>"
        )
    return "\n".join(parts)


def _assessment(path: Path | str | None) -> tuple[str | None, str]:
    """(HTML of the privacy impact assessment, a note): from the files `serendip assess` writes
    (`serendip.reporting.assessment`), given as a file or their directory; (None, why) when the
    module or the file is absent."""
    if importlib.util.find_spec("serendip.reporting.assessment") is None:
        return (
            None,
            "The privacy impact assessment was not supplied (serendip.reporting.assessment is absent).",
        )
    if path is None:
        return (
            None,
            "The privacy impact assessment was not supplied (run `serendip assess` and pass --assessment DIR).",
        )
    p = Path(path)
    if p.is_dir():
        found = next((p / n for n in ASSESSMENT_FILES if (p / n).is_file()), None)
        if found is None:
            raise DataError(f"no {ASSESSMENT_FILES[0]} (or .html, .md) there", file=str(p))
        p = found
    if not p.is_file():
        raise DataError("assessment file not found", file=str(p))
    body = p.read_text(encoding="utf-8")
    note = f"From {p} (written by `serendip assess`)."
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg}", file=str(p), line=exc.lineno) from None
        if not isinstance(doc, Mapping):
            raise DataError("expected a JSON object", file=str(p))
        return _assessment_json_html(doc), note
    if p.suffix.lower() in {".html", ".htm"}:
        m = re.search(r"<body[^>]*>(.*)</body>", body, flags=re.S | re.I)
        inner = m.group(1) if m else body
        return re.sub(r"<script.*?</script>", "", inner, flags=re.S | re.I), note
    return f"<pre class='assessment'>{html.escape(body)}</pre>", note


# -- tables --------------------------------------------------------------------------------


def _row_metric(idx: int, row: Mapping[str, Any], key: str, digits: int = 3) -> Cell:
    return sourced((row.get("metrics") or {}).get(key), f"study:rows/{idx}/metrics/{key}", digits)


def _row_cost(idx: int, row: Mapping[str, Any], key: str, digits: int = 3) -> Cell:
    return sourced((row.get("cost") or {}).get(key), f"study:rows/{idx}/cost/{key}", digits)


def _comparison(study: StudyView) -> Table:
    k, m = study.k, study.metric
    cold_u, cold_i = study.cold_protocol("cold-users"), study.cold_protocol("cold-items")
    cols = [
        "model", "family", m, "diff vs baseline CI low", "CI high", "p (adjusted)",
        f"recall@{k}", f"coverage@{k}", f"ild@{k}", f"novelty@{k}", f"oon_share@{k}",
        f"{m} cold users", f"{m} cold items", "fit s", "p50 ms", "peak MiB", "size MiB",
    ]  # fmt: skip
    t = Table(
        "comparison",
        f"Every model on {study.dataset} ({study.protocol}), best first",
        cols,
        note=(
            "CI: the bootstrap interval of the per-user difference to the best baseline; p: Wilcoxon "
            "signed-rank, Holm-adjusted (the study's significance). Cold columns: the same model under "
            "the cold-users / cold-items protocols when the study ran them."
        ),
    )
    cold: dict[str, dict[str, tuple[int, Mapping[str, Any]]]] = {}
    for proto in (cold_u, cold_i):
        if proto:
            cold[proto] = {str(r["model"]): (i, r) for i, r in study.indexed(proto)}
    rows = sorted(
        study.indexed(), key=lambda ir: -float((ir[1].get("metrics") or {}).get(m) or 0.0)
    )
    for i, r in rows:
        sig = study.significance(str(r["model"]))
        if sig is not None:
            j, c = sig
            ci = [
                sourced(c.get("ci_low"), f"study:significance/{j}/ci_low", 3),
                sourced(c.get("ci_high"), f"study:significance/{j}/ci_high", 3),
                sourced(c.get("p_adjusted"), f"study:significance/{j}/p_adjusted", 2),
            ]
        else:
            ci = [text("baseline" if r.get("family") == "baselines" else "–"), text(""), text("")]
        colds = []
        for proto in (cold_u, cold_i):
            hit = cold.get(proto or "", {}).get(str(r["model"]))
            colds.append(_row_metric(hit[0], hit[1], m) if hit else text("–"))
        t.rows.append(
            [
                text(str(r["model"])),
                text(str(r["family"])),
                _row_metric(i, r, m, 4),
                *ci,
                *(
                    _row_metric(i, r, f"{x}@{k}")
                    for x in ("recall", "coverage", "ild", "novelty", "oon_share")
                ),
                *colds,
                _row_cost(i, r, "fit_seconds"),
                _row_cost(i, r, "recommend_single_p50_ms"),
                _row_cost(i, r, "peak_memory_mb"),
                _row_cost(i, r, "model_size_mb"),
            ]
        )
    return t


def _data_table(analysis: Mapping[str, Any] | None, study: StudyView) -> Table:
    t = Table("data", "The platform's data", ["quantity", "value"])
    if analysis is None:
        t.note = "No analysis.json was supplied (pass --analysis DIR from `serendip analyze`)."
        first = next(iter(study.indexed()), None)
        if first is not None:
            i, r = first
            split = r.get("split") or {}
            for part in ("train", "test"):
                for key in ("users", "items", "interactions"):
                    v = (split.get(part) or {}).get(key)
                    if v is not None:
                        t.rows.append(
                            [
                                text(f"{part} {key} (study split)"),
                                sourced(v, f"study:rows/{i}/split/{part}/{key}"),
                            ]
                        )
        return t
    wanted = [
        ("users", "counts/n_users"),
        ("items", "counts/n_items"),
        ("interactions", "counts/n_interactions"),
        ("density", "counts/density"),
        ("follow edges", "counts/n_social_edges"),
        ("share of interactions with a timestamp", "temporal/share_with_timestamp"),
        ("days of history", "temporal/span_days"),
        ("share of interactions in-network", "in_network/share_in_network"),
        ("share of items with any metadata", "metadata/item_fields/any"),
        ("share of items with text", "metadata/item_fields/text"),
        ("share of items with tags", "metadata/item_fields/tags"),
    ]
    for label, ptr in wanted:
        node: Any = analysis
        for part in ptr.split("/"):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, (int, float)):
            t.rows.append([text(label), sourced(node, f"analysis:{ptr}", 4)])
    for side in ("users", "items"):
        for j, entry in enumerate((analysis.get("cold_start") or {}).get(side) or []):
            if isinstance(entry, Mapping) and entry.get("threshold") == 5:
                t.rows.append(
                    [
                        text(f"share of {side} with fewer than 5 interactions"),
                        sourced(entry.get("share"), f"analysis:cold_start/{side}/{j}/share"),
                    ]
                )
    quality = analysis.get("quality") or []
    t.rows.append(
        [
            text("data-quality findings"),
            derived(float(len(quality)), ("analysis:quality",), "count of findings"),
        ]
    )
    return t


def _infrastructure(scale: ScaleFile, costs: Costs) -> Table:
    cols = ["requirement", *(f"{n:,} users" for n in SCALES)]
    t = Table(
        "infrastructure",
        "What the production pipeline needs, by platform size",
        cols,
        note=(
            "Measured where a measured point of the scale file has that many users; otherwise projected "
            f"(italic) by the scale file's curve: {scale.curve}."
        ),
    )
    projections = {n: project(scale, n) for n in SCALES}
    for metric, spec in METRICS.items():
        cells: list[Cell] = [text(f"{spec.label} ({spec.unit})")]
        if all(projections[n][metric].value is None for n in SCALES):
            continue
        for n in SCALES:
            pr = projections[n][metric]
            if pr.measured:
                cells.append(sourced(pr.value, f"scale:{pr.source}"))
            else:
                ptrs = tuple(
                    f"scale:points/{i}/metrics/{metric}"
                    for i, p in enumerate(scale.points)
                    if p.measured and p.metrics.get(metric) is not None
                )
                cells.append(derived(pr.value, ptrs, pr.source))
        t.rows.append(cells)
    t.rows.append(
        [
            text("peak requests per second (traffic assumptions)"),
            *(
                derived(
                    peak_rps(costs, n).value, peak_rps(costs, n).inputs, peak_rps(costs, n).formula
                )
                for n in SCALES
            ),
        ]
    )
    return t


def _options_table(
    data_opts: list[Option], decision: Decision, costs: Costs, metric: str, k: int
) -> Table:
    n, months = costs.decision.target_users, costs.horizon_months
    t = Table(
        "options",
        f"The options at {n:,} users over {months} months",
        [
            "option",
            metric,
            "beyond-accuracy score",
            "one-time",
            "per month",
            f"total, {months} months",
            "blocking risk",
            "verdict",
        ],
    )
    for o in data_opts:
        acc = (
            sourced(o.accuracy, f"study:rows/{o.row_index}/metrics/{metric}", 4)
            if o.row_index is not None
            else text("not measured")
        )
        beyond_inputs = tuple(
            f"study:rows/{row}/metrics/{m}@{k}" for m, (_, row) in o.beyond.items()
        )
        run = o.run[n]
        run_inputs = tuple(dict.fromkeys(x for line in run.lines.values() for x in line.inputs))
        one = o.one_time
        t.rows.append(
            [
                text(o.label),
                acc,
                derived(
                    o.beyond_score,
                    beyond_inputs,
                    "mean of each beyond metric / the best built option's",
                )
                if o.beyond_score is not None
                else text("not measured"),
                money(
                    one.value if one else None,
                    one.inputs if one else (),
                    one.formula if one else "",
                ),
                money(run.monthly, run_inputs, "sum of the monthly lines"),
                money(
                    o.total(n, months),
                    (*(one.inputs if one else ()), *run_inputs, "costs:horizon_months"),
                    "one-time + horizon x monthly",
                ),
                text("; ".join(r for r, b in o.risks if b) or "none"),
                text(
                    "recommended"
                    if decision.chosen is not None and decision.chosen.key == o.key
                    else ("shortlisted" if o.key in decision.shortlist else "")
                ),
            ]
        )
    return t


def _cost_table(opts: list[Option], costs: Costs) -> Table:
    lines = [
        "training",
        "precompute",
        "serving",
        "storage",
        "predictions",
        "data",
        "inference",
        "engineering",
    ]
    t = Table(
        "costs",
        "Monthly cost by option and platform size (US dollars)",
        [
            "option",
            "users",
            *lines,
            "per month",
            "one-time",
            f"total, {costs.horizon_months} months",
        ],
        note="Every amount is computed from the costs file and the measurements; hover a cell for its formula.",
    )
    for o in opts:
        for n in SCALES:
            run = o.run[n]
            row = [text(o.label), derived(float(n), (), "platform size", 3)]
            for name in lines:
                line = run.lines.get(name)
                row.append(money(line.value, line.inputs, line.formula) if line else text("–"))
            ins = tuple(dict.fromkeys(x for line in run.lines.values() for x in line.inputs))
            row.append(money(run.monthly, ins, "sum of the monthly lines"))
            one = o.one_time
            row.append(
                money(
                    one.value if one else None,
                    one.inputs if one else (),
                    one.formula if one else "",
                )
            )
            row.append(
                money(
                    o.total(n, costs.horizon_months),
                    (*ins, "costs:horizon_months"),
                    "one-time + horizon x monthly",
                )
            )
            t.rows.append(row)
    return t


def _machines_table(opts: list[Option], costs: Costs) -> Table:
    t = Table(
        "machines",
        "Machines per month for each built option",
        [
            "option",
            "users",
            f"servers ({costs.serving.serving_machine})",
            "training machine-hours a month",
            "note",
        ],
    )
    for o in opts:
        if o.kind != "build":
            continue
        for n in SCALES:
            run = o.run[n]
            s, tr = run.machines["serving"], run.machines["training"]
            t.rows.append(
                [
                    text(o.label),
                    derived(float(n), (), "platform size"),
                    derived(s.value, s.inputs, s.formula),
                    derived(tr.value, tr.inputs, tr.formula),
                    text("; ".join(run.notes)),
                ]
            )
    return t


def _prices_table(costs: Costs) -> Table:
    t = Table(
        "prices",
        "Unit prices and where they come from",
        ["item", "price", "unit", "source", "checked", "confirmed"],
    )
    for name, m in costs.machines.items():
        t.rows.append(
            [
                text(f"{name}: {m.label}"),
                sourced(m.usd_per_hour, f"costs:machines/{name}/usd_per_hour", 4),
                text("per hour"),
                text(m.source),
                text(m.checked),
                text("yes" if m.confirmed else "no"),
            ]
        )
    s = costs.storage
    t.rows.append(
        [
            text(s.label),
            sourced(s.usd_per_gb_month, "costs:storage/usd_per_gb_month", 4),
            text("per GB-month"),
            text(s.source),
            text(s.checked),
            text("yes" if s.confirmed else "no"),
        ]
    )
    g, a = costs.buy.google, costs.buy.personalize
    low = 0.0
    for j, tier in enumerate(g.prediction_tiers):
        span = f"{low:,.0f} to {tier.up_to:,.0f}" if tier.up_to else f"over {low:,.0f}"
        t.rows.append(
            [
                text(f"{g.name}: predictions {span} a month"),
                sourced(
                    tier.usd_per_1000, f"costs:buy/google/prediction_tiers/{j}/usd_per_1000", 4
                ),
                text("per 1,000 predictions"),
                text(g.source),
                text(g.checked),
                text("yes" if g.confirmed else "no"),
            ]
        )
        low = tier.up_to or low
    t.rows.append(
        [
            text(f"{g.name}: training and tuning"),
            sourced(g.training_usd_per_node_hour, "costs:buy/google/training_usd_per_node_hour", 4),
            text("per node-hour"),
            text(g.source),
            text(g.checked),
            text("yes" if g.confirmed else "no"),
        ]
    )
    t.rows.append(
        [
            text(f"{a.name}: data ingested"),
            sourced(a.data_usd_per_gb, "costs:buy/personalize/data_usd_per_gb", 4),
            text("per GB"),
            text(a.source),
            text(a.checked),
            text("yes" if a.confirmed else "no"),
        ]
    )
    t.rows.append(
        [
            text(f"{a.name}: training"),
            sourced(a.training_usd_per_hour, "costs:buy/personalize/training_usd_per_hour", 4),
            text("per training hour (4 vCPU, 8 GiB)"),
            text(a.source),
            text(a.checked),
            text("yes" if a.confirmed else "no"),
        ]
    )
    low = 0.0
    for j, tier in enumerate(a.tps_hour_tiers):
        span = f"{low:,.0f} to {tier.up_to:,.0f}" if tier.up_to else f"over {low:,.0f}"
        t.rows.append(
            [
                text(f"{a.name}: real-time, TPS-hours {span} a month"),
                sourced(
                    tier.usd_per_tps_hour,
                    f"costs:buy/personalize/tps_hour_tiers/{j}/usd_per_tps_hour",
                    4,
                ),
                text("per TPS-hour"),
                text(a.source),
                text(a.checked),
                text("yes" if a.confirmed else "no"),
            ]
        )
        low = tier.up_to or low
    return t


def _assumptions_table(costs: Costs) -> Table:
    t = Table(
        "assumptions", "Assumptions (change them in the costs file)", ["assumption", "value", "key"]
    )
    raw = costs.raw
    for section in ("traffic", "serving", "training", "engineering", "decision"):
        for key, value in (raw.get(section) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                t.rows.append(
                    [
                        text(key.replace("_", " ")),
                        sourced(value, f"costs:{section}/{key}", 4),
                        text(f"{section}.{key}"),
                    ]
                )
            elif isinstance(value, Mapping):
                for k2, v2 in value.items():
                    if isinstance(v2, (int, float)) and not isinstance(v2, bool):
                        t.rows.append(
                            [
                                text(f"{key.replace('_', ' ')}: {k2}"),
                                sourced(v2, f"costs:{section}/{key}/{k2}", 4),
                                text(f"{section}.{key}.{k2}"),
                            ]
                        )
    for key in ("horizon_months", "hours_per_month"):
        t.rows.append(
            [text(key.replace("_", " ")), sourced(raw.get(key), f"costs:{key}"), text(key)]
        )
    return t


def _scale_points_table(scale: ScaleFile) -> Table:
    t = Table(
        "scale_points",
        f"The scale file's points ({scale.path})",
        ["point", "users", "items", "interactions fitted on", "measured", "machine"],
    )
    for i, p in enumerate(scale.points):
        t.rows.append(
            [
                text(p.name),
                sourced(p.users, f"scale:points/{i}/users"),
                sourced(p.items, f"scale:points/{i}/items"),
                sourced(p.fit_interactions, f"scale:points/{i}/fit_interactions"),
                text("measured" if p.measured else "projected"),
                text(p.machine or "–"),
            ]
        )
    return t


# -- the whole ------------------------------------------------------------------------------


def build_report(
    study_dir: Path | str,
    *,
    scale: Path | str | None = None,
    costs: Path | str | None = None,
    analysis: Path | str | None = None,
    assessment: Path | str | None = None,
) -> ReportData:
    """Read the inputs and compute every table, the options and the decision.

    `scale`: a scale file (default: built from benchmarks/results of this checkout);
    `costs`: a costs TOML (default: the shipped one); `analysis`: analysis.json or its directory
    (default: ``<study>/../analysis`` when present, as `serendip demo` lays it out);
    `assessment`: the privacy impact assessment, a file of `serendip assess` or its output
    directory (default: ``<study>/../assessment`` when it holds one).
    """
    c = load_costs(costs)
    view = load_study(study_dir, dataset=c.decision.dataset, protocol=c.decision.protocol)
    sc = _scale(scale)
    an_path = analysis if analysis is not None else Path(study_dir).resolve().parent / "analysis"
    if analysis is not None and load_analysis(analysis) is None:
        raise DataError("no analysis.json there", file=str(analysis))
    an = load_analysis(an_path)
    opts = options(view, sc, c, SCALES)
    dec = decide(opts, c)
    if assessment is None:
        beside = Path(study_dir).resolve().parent / "assessment"
        if any((beside / name).is_file() for name in ASSESSMENT_FILES):
            assessment = beside
    ahtml, anote = _assessment(assessment)
    tables = {
        t.key: t
        for t in (
            _options_table(opts, dec, c, view.metric, view.k),
            _comparison(view),
            _data_table(an, view),
            _infrastructure(sc, c),
            _scale_points_table(sc),
            _machines_table(opts, c),
            _cost_table(opts, c),
            _prices_table(c),
            _assumptions_table(c),
        )
    }
    documents: dict[str, Any] = {"study": view.results, "scale": sc.document, "costs": c.raw}
    if an is not None:
        documents["analysis"] = an
    return ReportData(view, sc, c, an, opts, dec, tables, documents, ahtml, anote)


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("serendip.reporting", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    return env


def draw_charts(data: ReportData, out: Path) -> dict[str, str]:
    """Draw the report's own charts and copy the study's plots into out/plots; name -> path."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    c = data.costs
    chosen = data.decision.chosen.key if data.decision.chosen else None
    n, months = c.decision.target_users, c.horizon_months
    made = {
        "accuracy": charts.accuracy_chart(
            data.options, data.study.metric, chosen, plots / "accuracy.png"
        ),
        "cost": charts.cost_chart(data.options, n, months, chosen, plots / "cost.png"),
        "scale_cost": charts.scale_cost_chart(
            data.options, SCALES, chosen, plots / "scale-cost.png"
        ),
        "tradeoff": charts.tradeoff_chart(
            data.options, data.study.metric, n, months, plots / "tradeoff.png"
        ),
    }
    for src in data.study.plots():
        dst = plots / f"study-{src.name}"
        shutil.copyfile(src, dst)
        made[f"study:{src.stem}"] = dst
    return {k: str(v.relative_to(out)) for k, v in made.items()}


def render_html(data: ReportData, plots: Mapping[str, str]) -> str:
    c = data.costs
    study_plots = {k.removeprefix("study:"): v for k, v in plots.items() if k.startswith("study:")}
    best = {o.family: o for o in data.options if o.kind == "build"}
    unconfirmed = [row[0].text for row in data.tables["prices"].rows if row[5].text == "no"]
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            d=data,
            c=c,
            t=data.tables,
            plots=plots,
            study_plots=study_plots,
            rule=rule_text(c, data.study.metric),
            best=best,
            beyond_metrics=BEYOND_METRICS,
            scales=SCALES,
            unconfirmed=unconfirmed,
            k=data.study.k,
        )
    )


def chromium_path() -> str | None:
    """The system Chromium (never a downloaded one), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def print_pdf(html_path: Path, pdf_path: Path, *, timeout_s: float = 120.0) -> Path:
    """Print `html_path` to `pdf_path` with headless Chromium; `ConfigError` when there is none
    or it fails."""
    exe = chromium_path()
    if exe is None:
        raise ConfigError("no Chromium found to print the PDF (install Debian's chromium)")
    with tempfile.TemporaryDirectory(prefix="serendip-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf_path}",
            html_path.resolve().as_uri(),
        ]
        try:
            res = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(f"Chromium did not print the PDF within {timeout_s:.0f} s") from None
    if not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        tail = (res.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"Chromium failed to print the PDF: {tail[0]}")
    return pdf_path


def write_report(
    data: ReportData, out: Path | str, *, pdf: bool = True
) -> tuple[Path, Path | None]:
    """Write report.html (+ plots/, scale.json: the scale document it read) and, with `pdf`,
    report.pdf into `out`."""
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    plots = draw_charts(data, o)
    html_path = o / "report.html"
    html_path.write_text(render_html(data, plots), encoding="utf-8")
    # the scale document the report read (built from the benchmarks when no --scale was given)
    (o / "scale.json").write_text(
        json.dumps(data.scale.document, indent=2) + "\n", encoding="utf-8"
    )
    pdf_path = print_pdf(html_path, o / "report.pdf") if pdf else None
    return html_path, pdf_path
