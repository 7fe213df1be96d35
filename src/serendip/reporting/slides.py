"""`serendip slides`: the stakeholder deck (PPTX and HTML) from the same `ReportData` as the report.

The deck is a list of `Slide`s (title, bullets, an optional image, an optional table of `Cell`s)
rendered twice: ``deck.pptx`` with python-pptx and ``deck.html`` (one section per slide).

>>> data = build_report(Path("demo-out/study"))  # doctest: +SKIP
>>> write_deck(data, Path("demo-out/slides"))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from serendip.reporting.data import Cell, Table
from serendip.reporting.decision import BEYOND_METRICS, rule_text
from serendip.reporting.report import ReportData, draw_charts

__all__ = ["Slide", "deck_slides", "write_deck"]


@dataclass(slots=True)
class Slide:
    title: str
    bullets: list[str] = field(default_factory=list)
    image: str | None = None  # path relative to the deck's folder
    columns: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)


def _subset(table: Table, columns: list[str], limit: int = 8) -> tuple[list[str], list[list[Cell]]]:
    idx = [table.columns.index(c) for c in columns]
    return columns, [[r[i] for i in idx] for r in table.rows[:limit]]


def deck_slides(data: ReportData, plots: dict[str, str]) -> list[Slide]:
    """The deck's slides (10-15) from the report's data and drawn charts."""
    c, s, dec = data.costs, data.study, data.decision
    n, months = c.decision.target_users, c.horizon_months
    chosen = dec.chosen
    t = data.tables
    slides: list[Slide] = []
    slides.append(
        Slide(
            "Which recommender to build, what it needs, what it costs",
            [
                f"Study: {s.dataset}, {s.protocol} protocol, {len(s.indexed())} models compared on {s.metric}",
                f"Costed at {n:,} users over {months} months (costs file version {c.version})",
                f"Generated {data.created} by serendip slides; every number from the study, scale and costs files",
            ],
        )
    )
    if chosen is not None:
        head = f"Recommendation: {chosen.label}"
        total = f"${chosen.total(n, months):,.0f} over {months} months at {n:,} users"
        what = [head, total] + (
            [f"{s.metric} {chosen.accuracy:.4f} on {s.dataset}"]
            if chosen.accuracy is not None
            else []
        )
    else:
        what = ["No option passes the rule: every option has a blocking risk"]
    slides.append(Slide("The decision", what + dec.steps))
    slides.append(Slide("The rule that decides", rule_text(c, s.metric)))
    cols, rows = _subset(t["options"], t["options"].columns[:6])
    slides.append(Slide(f"The options at {n:,} users", columns=cols, rows=rows))
    slides.append(Slide(f"Accuracy of each family ({s.metric})", image=plots["accuracy"]))
    slides.append(Slide("Accuracy against cost", image=plots["tradeoff"]))
    comp = t["comparison"]
    beyond_cols = [
        col for col in comp.columns if any(col.startswith(f"{m}@") for m in BEYOND_METRICS)
    ]
    cols, rows = _subset(comp, ["model", s.metric, *beyond_cols])
    slides.append(
        Slide(
            "Beyond accuracy: coverage, novelty, diversity, out-of-network", columns=cols, rows=rows
        )
    )
    ci = next(
        (p for k, p in plots.items() if k.startswith("study:ci-") and k.endswith(s.protocol)), None
    )
    cold = next((p for k, p in plots.items() if k.startswith("study:cold-start")), None)
    if ci:
        slides.append(Slide("Gain over the best baseline, with 95% intervals", image=ci))
    else:
        cols, rows = _subset(
            comp, ["model", s.metric, "diff vs baseline CI low", "CI high", "p (adjusted)"]
        )
        slides.append(Slide("Gain over the best baseline, with intervals", columns=cols, rows=rows))
    if cold:
        slides.append(Slide("Cold start: new users and new items", image=cold))
    else:
        slides.append(
            Slide(
                "Cold start",
                [
                    "New users: trending and interests until they have history; first events fold in at once",
                    "New items: content similarity and fresh-from-followed sources",
                    "This study ran no cold protocol: run cold-users and cold-items",
                ],
            )
        )
    infra = t["infrastructure"]
    keep = [r for r in infra.rows if r[0].text.split(" (")[0] in {
        "model fit, wall", "peak memory of fit and precompute", "precomputed lists on disk",
        "highest rate held at p99 <= 100 ms, one process", "p99 latency at 200 req/s (one process)",
        "peak requests per second (traffic assumptions)",
    }]  # fmt: skip
    slides.append(
        Slide(
            "Infrastructure at 100K, 1M and 10M users (italic: projected)",
            columns=infra.columns,
            rows=keep,
        )
    )
    slides.append(Slide(f"Total cost over {months} months: build against buy", image=plots["cost"]))
    slides.append(Slide("Monthly cost as the platform grows", image=plots["scale_cost"]))
    unconfirmed = [r[0].text for r in t["prices"].rows if r[5].text == "no"]
    slides.append(
        Slide(
            "Privacy, explainability, prices",
            [
                "Privacy impact assessment: "
                + ("included in the report" if data.assessment_html else "not supplied"),
                "Building keeps events and models on the platform; export, erasure and consent are built in",
                "Every served item carries a checked reason; private activity is never named",
                f"{len(unconfirmed)} unit prices not confirmed on the provider's page (see the report's appendix)",
            ],
        )
    )
    risks = [f"{o.label}: {r}" for o in data.options for r, _ in o.risks][:6]
    slides.append(
        Slide(
            "Risks, open questions, next steps",
            [
                *risks,
                f"Projections beyond {data.scale.measured[-1].users:,} users follow a curve: measure the next size",
                "Next: an online A/B test of the recommendation with exposures logged from day one",
            ],
        )
    )
    return slides


def _write_pptx(slides: list[Slide], out: Path, path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches, Pt

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    blank = prs.slide_layouts[6]
    for sl in slides:
        page = prs.slides.add_slide(blank)
        title = page.shapes.add_textbox(
            Inches(0.5), Inches(0.3), Inches(12.3), Inches(0.9)
        ).text_frame
        title.text = sl.title
        title.paragraphs[0].runs[0].font.size = Pt(30)
        title.paragraphs[0].runs[0].font.bold = True
        top = Inches(1.3)
        if sl.bullets:
            box = page.shapes.add_textbox(Inches(0.6), top, Inches(12.1), Inches(5.8)).text_frame
            box.word_wrap = True
            for i, b in enumerate(sl.bullets):
                para = box.paragraphs[0] if i == 0 else box.add_paragraph()
                para.text = f"• {b}"
                para.font.size = Pt(18 if len(sl.bullets) < 7 else 15)
        if sl.image:
            page.shapes.add_picture(str(out / sl.image), Inches(1.9), top, height=Inches(5.9))
        if sl.rows:
            shape = page.shapes.add_table(
                len(sl.rows) + 1,
                len(sl.columns),
                Inches(0.4),
                top,
                Inches(12.5),
                Inches(0.4 * (len(sl.rows) + 1)),
            )
            table = shape.table
            for j, col in enumerate(sl.columns):
                table.cell(0, j).text = col
            for i, row in enumerate(sl.rows, start=1):
                for j, cell in enumerate(row):
                    table.cell(i, j).text = cell.text
            for r in table.rows:
                for cell in r.cells:
                    for para in cell.text_frame.paragraphs:
                        para.font.size = Pt(11)
    prs.save(str(path))
    return path


def write_deck(data: ReportData, out: Path | str) -> tuple[Path, Path]:
    """Write deck.pptx and deck.html (+ plots/) into `out`; returns both paths."""
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    plots = draw_charts(data, o)
    slides = deck_slides(data, plots)
    pptx_path = _write_pptx(slides, o, o / "deck.pptx")
    env = Environment(
        loader=PackageLoader("serendip.reporting", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    html_path = o / "deck.html"
    html_path.write_text(
        env.get_template("deck.html.j2").render(slides=slides, d=data), encoding="utf-8"
    )
    return pptx_path, html_path
