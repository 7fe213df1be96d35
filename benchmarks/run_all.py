"""`make bench`: run every benchmark script in benchmarks/, then write benchmarks/RESULTS.md.

Each script writes `results/<name>.md` (its full table) and `.json` from a real run. RESULTS.md
is one page built from those JSON files: per benchmark what it measures, the command, a short
table and the verdict against its target, so it never holds a number no script produced.

    python benchmarks/run_all.py             # everything (hours on 2 cores: serving at scale)
    python benchmarks/run_all.py --only models --only evaluate
    python benchmarks/run_all.py --assemble  # only rebuild RESULTS.md from results/*.json
    python benchmarks/run_all.py --list      # name and script of every benchmark

A benchmark whose requirement is absent here (the real datasets, a CUDA device, the artifact
another benchmark writes) is skipped with a line saying why; its last table stays.
Exploratory probes and searches are not benchmarks: docs/research-log.md keeps their findings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS = ROOT / "results"
SHARED = Path(os.environ.get("SERENDIP_SHARED_DATA", REPO.parent / "shared" / "data"))
#: The serving benchmark's platform model: the lighter source set that fits and precomputes
#: 100K users x 1M items on 2 cores (why: the note in results/serve.md). Its ranker keeps the
#: settings its tables were measured with (one member of 31 leaves: the class defaults until
#: stop 11, when the bagged small-tree recipe became the default).
SERVE_PLATFORM_PARAMS = json.dumps(json.loads((ROOT / "serve_platform_model.json").read_text()))
SERVE_PLATFORM = [
    "bench_serve.py",
    "--train-window-days",
    "14",
    "--model-params",
    SERVE_PLATFORM_PARAMS,
]
SERVE_LIVE_NOTE = (
    "Run right after the platform serving benchmark on the same store: the events it ingested "
    "are replayed at restart, so most users have live state since the fit and take the full "
    "pipeline path instead of the precomputed lists (the harder case)."
)

#: (short table, verdict sentence, a few words for the index)
Summary = Callable[[Path], tuple[list[str], str, str]]


@dataclass(frozen=True)
class Bench:
    """One benchmark: `argv` runs it (script first), `result` is its results/ stem, `requires`
    says why it cannot run here (None: it can), `summary` turns its JSON into (table, verdict)."""

    name: str
    title: str
    measures: str
    target: str
    argv: list[str]
    result: str
    summary: Summary
    requires: Callable[[], str | None] = field(default=lambda: None)

    @property
    def script(self) -> str:
        return self.argv[0]

    def command(self) -> str:
        shown = ["'<serve_platform_model.json>'" if a == SERVE_PLATFORM_PARAMS else a
                 for a in self.argv]  # fmt: skip
        note = shown.index("--note") if "--note" in shown else -1
        if note >= 0:
            shown[note + 1] = "'<note>'"
        return "python benchmarks/" + " ".join(shown)


# ------------------------------------------------------------------------------ requirements
def _datasets(*names: str) -> Callable[[], str | None]:
    def check() -> str | None:
        missing = [n for n in names if not (SHARED / n).is_dir()]
        return f"real dataset(s) {', '.join(missing)} not found under {SHARED}" if missing else None

    return check


def _cuda() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "no CUDA device (torch.cuda.is_available())"


def _artifact(preset: str) -> Callable[[], str | None]:
    def check() -> str | None:
        where = REPO / "bench-out" / f"serve-{preset}-pipeline" / "artifacts"
        if where.is_dir() and any(where.iterdir()):
            return None
        return f"no pipeline artifact under {where} (bench_serve.py --preset {preset} writes it)"

    return check


# ---------------------------------------------------------------------------------- helpers
def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _f(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list[Any]], right: int = 1) -> list[str]:
    """A Markdown table; columns from `right` on are right-aligned."""
    align = ["---" if j < right else "---:" for j in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


# -------------------------------------------------------------------------------- summaries
# Each returns (a short table, the verdict sentence, a few words for the index).
def _generate(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows, verdicts, oks = [], [], []
    for r in d["runs"]:
        c = r["counts"]
        rows.append(
            [r["preset"], _f(c["users"]), _f(c["items"]), _f(c["interactions"]),
             _f(r["generate_wall_s"], 1), _f(r["target_s"], 0), _f(r["cpu_s"], 1),
             _f(r["peak_rss_mib"], 0)]
        )  # fmt: skip
        ok = r["generate_wall_s"] <= r["target_s"]
        memory = f", {r['peak_rss_mib']:.0f} MiB" if r["preset"] == "platform" else ""
        if r["preset"] == "platform":
            ok = ok and r["peak_rss_mib"] <= 8 * 1024
        oks.append(ok)
        verdicts.append(f"{r['preset']} {_met(ok)} ({r['generate_wall_s']:.1f} s{memory})")
    head = ["preset", "users", "items", "interactions", "wall s", "target s", "CPU s", "peak MiB"]
    return _table(head, rows), "; ".join(verdicts) + ".", _met(all(oks))


def _analyze(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [[k, _f(d["wall_s"][k], 1), _f(d["cpu_s"][k], 1)] for k in d["wall_s"]]
    ok = d["wall_s"]["total"] <= d["target_s"]
    ds = d["dataset"]
    verdict = (
        f"{_met(ok)}: {d['wall_s']['total']:.0f} s wall for {ds['users']:,} users, "
        f"{ds['items']:,} items, {ds['interactions']:,} interactions (target {d['target_s']} s); "
        f"peak RSS {d['peak_rss_gb']} GB."
    )
    return _table(["phase", "wall s", "CPU s"], rows), verdict, _met(ok)


def _evaluate(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [[k, _f(w, 2), _f(c, 2)] for k, (w, c) in d["seconds"].items()]
    verdict = (
        f"wall {_met(d['meets_target'])}, CPU {_met(d['meets_target_cpu'])}: every metric for "
        f"{d['data']['test_users']:,} users x top-{d['data']['k']} in "
        f"{d['seconds']['evaluate k=100 (index array)'][0]:.1f} s (target {d['target_s']:.0f} s)."
    )
    ok = d["meets_target"] and d["meets_target_cpu"]
    return _table(["phase", "wall s", "CPU s"], rows), verdict, _met(ok)


def _models(p: Path) -> tuple[list[str], str, str]:
    by_ds = {ds: _load(p.parent / f"models-{ds}.json") for ds in ("ml-100k", "lastfm-2k")}
    ml = {r["model"]: r for r in by_ds["ml-100k"]["rows"]}
    lf = {r["model"]: r for r in by_ds["lastfm-2k"]["rows"]}
    rows, misses, met = [], [], 0
    for name in sorted(ml, key=lambda m: -ml[m]["ndcg@10"]):
        r = ml[name]
        floor = r.get("floor")
        if floor is not None:
            met += r["ndcg@10"] >= floor
            if r["ndcg@10"] < floor:
                misses.append(f"{name} {r['ndcg@10']:.4f} < {floor}")
        mark = "" if floor is None else f"{floor} {'✓' if r['ndcg@10'] >= floor else '✗'}"
        other = lf.get(name, {}).get("ndcg@10")
        rows.append([name, r["family"], _f(r["ndcg@10"]), mark, _f(other)])
    n_floors = sum(r.get("floor") is not None for r in ml.values())
    head = ["model", "family", "ML100K NDCG@10", "floor", "Last.fm NDCG@10"]
    verdict = f"{met} of {n_floors} ML100K floors met" + (
        f"; missed: {', '.join(misses)}." if misses else "."
    )
    return _table(head, rows, right=2), verdict, f"{met} of {n_floors} floors met"


def _select_blend(p: Path) -> tuple[list[str], str, str]:
    import bench_select_blend as sb

    d = _load(p)
    table = sb.write_markdown(d).split("| member |", 1)[1].split("\n\nVerdict:", 1)[0]
    verdict = sb.verdict(d)
    short = "holdout reproduced" if "= the recorded" in verdict else verdict.split(" (")[0]
    return ("| member |" + table).splitlines(), verdict, short


def _deep_device(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [[r["model"], r["device"], _f(r["ndcg@10"]), _f(r["fit_s"], 1)] for r in d["rows"]]
    fit = {(r["model"], r["device"]): r for r in d["rows"]}
    parts = []
    for (model, device), r in fit.items():
        cpu = fit.get((model, "cpu"))
        if device == "cuda" and cpu:
            parts.append(
                f"{model} {cpu['fit_s'] / r['fit_s']:.1f}x faster "
                f"(NDCG {r['ndcg@10'] - cpu['ndcg@10']:+.4f})"
            )
    missing = sorted({"neumf", "multvae", "recvae", "sasrec"} - {m for m, _ in fit})
    verdict = (
        f"CUDA fits on {d['machine'].split(';')[0]}: "
        + ", ".join(parts)
        + (f"; not measured yet: {', '.join(missing)}." if missing else ".")
    )
    short = "CUDA works" + (f" ({', '.join(missing)} not measured)" if missing else "")
    return _table(["model", "device", "NDCG@10", "fit s"], rows, right=2), verdict, short


def _study(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    ok = [r for r in d["rows"] if r["status"] == "ok"]
    sig = {(s["protocol"], s["model"]): s for s in d["significance"]}
    protocols = sorted({r["protocol"] for r in ok})
    by = {(r["protocol"], r["model"]): r for r in ok}
    ranked = {
        pr: sorted((r for r in ok if r["protocol"] == pr), key=lambda r: -r["metrics"]["ndcg@10"])
        for pr in protocols
    }
    keep: list[str] = []
    for pr in protocols:  # the six best of each protocol, its baseline and the pipeline
        base = next(
            sig[(pr, r["model"])]["baseline"] for r in ranked[pr] if (pr, r["model"]) in sig
        )
        keep += [r["model"] for r in ranked[pr][:6]] + [base, "pipeline"]
    first = protocols[0]
    keep = sorted(
        dict.fromkeys(keep),
        key=lambda m: -(by[(first, m)]["metrics"]["ndcg@10"] if (first, m) in by else 0),
    )

    def cell(pr: str, model: str) -> list[str]:
        r = by.get((pr, model))
        if r is None:
            return ["–", ""]
        s = sig.get((pr, model))
        if s is None:
            return [_f(r["metrics"]["ndcg@10"]), "baseline"]
        mark = (" ▲" if s["mean_diff"] > 0 else " ▼") if s["significant"] else " n.s."
        return [_f(r["metrics"]["ndcg@10"]), f"{s['mean_diff']:+.4f}{mark}"]

    head = ["model"] + [h for pr in protocols for h in (f"{pr} NDCG@10", "Δ vs best baseline")]
    rows = [[m] + [c for pr in protocols for c in cell(pr, m)] for m in keep]
    st = d["study"]
    verdict = (
        f"{len(ok)} of {st['cells']} cells ok ({st['failed']} failed); best: "
        + ", ".join(f"{pr} {ranked[pr][0]['model']}" for pr in protocols)
        + ". ▲/▼: significant after Holm correction."
    )
    return _table(head, rows), verdict, _met(not st["failed"] and len(ok) == st["cells"])


def _pipeline(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows, verdicts, missed = [], [], []

    def check(what: str, ok: bool) -> str:
        if not ok:
            missed.append(what)
        return _met(ok)

    for name, res in d["datasets"].items():
        best = next(r for r in res["singles"] if r["model"] == res["best_single"])
        pipe = res["pipeline"]
        gain = pipe["ndcg@10"] / best["ndcg@10"] - 1
        ratio = None
        if pipe.get("oon_hit_rate@10") is not None and best.get("oon_hit_rate@10"):
            ratio = pipe["oon_hit_rate@10"] / best["oon_hit_rate@10"]
        rows.append(
            [name, _f(pipe["ndcg@10"]), f"{best['model']} {best['ndcg@10']:.4f}", f"{gain:+.1%}",
             f"{_f(pipe['coverage@10'])} / {_f(best['coverage@10'])}",
             f"{_f(pipe['novelty@10'], 2)} / {_f(best['novelty@10'], 2)}",
             "–" if ratio is None else f"{ratio:.2f}x"]
        )  # fmt: skip
        v = f"{name}: NDCG +3% {check(f'{name} NDCG', gain >= 0.03)}"
        if ratio is not None:
            v += f", OON 1.5x {check(f'{name} OON', ratio >= 1.5)}"
        verdicts.append(v)
        if "cold_items" in res:
            c = res["cold_items"]
            ok = c["pipeline_ndcg@10"] >= 2 * c["popularity_ndcg@10"]
            verdicts.append(
                f"cold items {c['pipeline_ndcg@10']:.4f} vs popularity "
                f"{c['popularity_ndcg@10']:.4f} (2x {check('cold items', ok)})"
            )
        if "latency" in res:
            p99 = res["latency"]["p99_ms"]
            verdicts.append(f"one-user p99 {p99:.1f} ms (< 30 ms {check('latency', p99 < 30)})")
    head = ["dataset", "pipeline NDCG@10", "best single (test)", "gain", "coverage p / b",
            "novelty p / b", "OON HR ratio"]  # fmt: skip
    short = "met" if not missed else "**missed**: " + ", ".join(missed)
    return _table(head, rows), "; ".join(verdicts) + ".", short


def _sources_latency(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [
        [k, v["n"], _f(v["p50_ms"], 1), _f(v["p99_ms"], 1), _f(v["cpu_p50_ms"], 1),
         _f(v["cpu_p99_ms"], 1), _f(v["mean_candidates"], 0)]
        for k, v in d["latency"].items()
    ]  # fmt: skip
    warm = d["latency"]["warm users"]
    head = ["users", "n", "p50 ms", "p99 ms", "CPU p50 ms", "CPU p99 ms", "candidates"]
    ok = warm["cpu_p99_ms"] < 30
    verdict = (
        f"CPU p99 {warm['cpu_p99_ms']:.1f} ms per warm user, within the 30 ms one-user budget "
        f"({_met(ok)}); wall p99 {warm['p99_ms']:.1f} ms on a machine at load "
        f"{d['load_average_after'][0]:.1f} (waits for a core)."
    )
    return _table(head, rows), verdict, _met(ok)


def _sources_recall(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [
        [s["source"], _f(s["recall"], 3), _f(s["oon_recall"], 3), _f(s["mean_proposals"], 0),
         _f(s["propose_ms_per_user"], 2)]
        for s in d["sources"]
    ]  # fmt: skip
    u = d["union"]
    rows.append(
        ["**union** (default quotas)", _f(u["recall"], 3), _f(u["oon_recall"], 3),
         _f(u["mean_candidates"], 0), ""]
    )  # fmt: skip
    head = ["source", f"recall@{d['n']}", "OON recall", "proposals", "ms/user"]
    verdict = (
        f"diagnostic, no target: the candidates reach {u['recall']:.1%} of the future "
        f"({u['oon_recall']:.1%} out of network) over {d['users']:,} users."
    )
    return _table(head, rows), verdict, f"union recall {u['recall']:.3f}"


def _ann(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    runs: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in d["rows"]:
        runs.setdefault((r["case"], r["m"], r["ef_construction"]), []).append(r)
    rows, reached = [], []
    for (case, m, efc), rs in runs.items():
        by_ef = sorted(rs, key=lambda r: r["ef_search"])
        hit = next((r for r in by_ef if r["recall_at_100"] >= 0.95), None)
        r = hit or max(rs, key=lambda r: r["recall_at_100"])
        rows.append(
            [case, _f(r["n_items"]), f"{m} / {efc}", r["ef_search"], _f(r["recall_at_100"]),
             _f(r["single_ms_median"], 3), _f(r["exact_ms_per_query"], 3)]
        )  # fmt: skip
        reached.append(hit is not None)
    head = ["case", "items", "M / efC", "efSearch", "recall@100", "single ms median",
            "exact ms/q"]  # fmt: skip
    verdict = (
        f"recall@100 >= 0.95 reached in {sum(reached)} of {len(reached)} configurations "
        "(rows: the smallest efSearch that reaches it, else the best tried); the 1M-item case "
        "needs M=64."
    )
    return _table(head, rows), verdict, f"met in {sum(reached)} of {len(reached)}"


def _ingest(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = []
    for b in d["backends"]:
        for r in b.get("runs", []):
            rows.append(
                [b["backend"], _f(r["batch"]), _f(r["new"]["events_per_s"]),
                 _f(r["replay"]["events_per_s"])]
            )  # fmt: skip
        if b.get("single"):
            rows.append([b["backend"], "1 (`add`)", _f(b["single"]["events_per_s"]), ""])
    head = ["backend", "batch", "new events/s", "replay events/s"]
    verdict = (
        "no numeric target: every batch is committed and durable before it returns; batches of "
        "1,000+ take 10-26K events/s, one event per commit ~150/s."
    )
    return _table(head, rows), verdict, "no target"


def _serve_cache(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [
        [r["case"], _f(r["cpu_p50_ms"], 2), _f(r["cpu_p99_ms"], 2), _f(r["wall_p99_ms"], 2)]
        for r in d["rows"]
        if "no explain" not in r["case"]
    ]
    hit = next(r for r in d["rows"] if r["case"] == "hit (explain)")
    miss = next(r for r in d["rows"] if r["case"] == "uncached (explain)")
    ok = miss["cpu_p99_ms"] < 50
    verdict = (
        f"uncached CPU p99 {miss['cpu_p99_ms']:.1f} ms, cache hit {hit['cpu_p99_ms']:.2f} ms: "
        f"both within the 50 ms p99 serving floor ({_met(ok)}); hit rate of the serving mix "
        f"{d['mix_hit_rate']:.1%}."
    )
    return _table(["case", "CPU p50 ms", "CPU p99 ms", "wall p99 ms"], rows), verdict, _met(ok)


def _serve(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [
        [_f(r["rate"]), _f(r["achieved_rps"], 1), _f(r["errors"]), _f(r["p50_ms"], 2),
         _f(r["p99_ms"], 2), _f(r["server_cpu_ms"], 2)]
        for r in d["latency"]
    ]  # fmt: skip
    ing = ", ".join(f"{k} {v['events_per_s']:,} events/s" for k, v in d["ingestion"].items() if v)
    cs = d["cold_start"]
    head = ["target req/s", "achieved", "errors", "p50 ms", "p99 ms", "server CPU ms/req"]
    verdict = (
        f"p99 <= 50 ms at 200 req/s with no errors: {_met(d['floor_met'])}; highest rate held at "
        f"p99 <= 100 ms: {d['highest_rate_p99_under_100ms']} req/s; restart to ready "
        f"{cs['restart_to_ready_s']:.1f} s (< 60 s {_met(cs['restart_to_ready_s'] < 60)})"
        + (f"; ingestion over HTTP: {ing}" if ing else "")
        + f". {d['preset']} preset, {d['n_users']:,} users, {d['n_items']:,} items."
    )
    return _table(head, rows), verdict, _met(d["floor_met"])


def _serve_live(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [
        [_f(c["workers"]), "on" if c["refresh_live"] else "off",
         _f(c["highest_held"]) if c["highest_held"] is not None else "none",
         _f(c["p99_at_200"], 2) if c["p99_at_200"] is not None else "-", _met(c["budget_met"])]
        for c in d["configs"]
    ]  # fmt: skip
    head = ["workers", "refresh_live", "highest req/s at p99 <= 100 ms", "p99 ms at 200",
            "p99 <= 50 ms at 200 req/s"]  # fmt: skip
    default = [c for c in d["configs"] if c["refresh_live"]]  # the server's default
    ok = bool(default) and all(c["budget_met"] for c in default)
    verdict = (
        f"with the default (lists updated as events arrive): p99 <= 50 ms at 200 req/s "
        f"{_met(ok)}; {d['preset']} preset, {d['n_users']:,} users, {d['n_items']:,} items, "
        f"pools of {d['pool']:,} users with 2-5 new likes each before every rate."
    )
    return _table(head, rows), verdict, _met(ok)


def _live_request(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [
        ["CPU ms", _f(d["cpu_ms"]["p50"], 2), _f(d["cpu_ms"]["p99"], 2)],
        ["wall ms", _f(d["wall_ms"]["p50"], 2), _f(d["wall_ms"]["p99"], 2)],
    ]
    ok = d["cpu_ms"]["p99"] < 30
    verdict = (
        f"the full pipeline path for a live user costs {d['cpu_ms']['p99']:.1f} ms CPU at p99 on "
        f"{d['n_items_model']:,} items, within the 30 ms one-user budget ({_met(ok)})."
    )
    return _table(["", "p50", "p99"], rows), verdict, _met(ok)


def _app_inprocess(p: Path) -> tuple[list[str], str, str]:
    d = _load(p)
    rows = [[k, _f(v["p50_ms"], 2), _f(v["p99_ms"], 2)] for k, v in d.items() if k != "n"]
    extra = d["http_in_process"]["p50_ms"] - d["runtime_direct"]["p50_ms"]
    verdict = (
        f"the framework adds {extra:.1f} ms at the median ({d['n']} requests), a small share of "
        "the 50 ms p99 serving floor."
    )
    return _table(["path", "p50 ms", "p99 ms"], rows), verdict, f"+{extra:.1f} ms"


def _experiments(p: Path) -> tuple[list[str], str, str]:
    s = __import__("bench_experiments").summary(_load(p))
    return s["table"], s["verdict"], s["index"]


# ------------------------------------------------------------------------------ the list
ML = _datasets("ml-100k")
BOTH = _datasets("ml-100k", "lastfm-2k")
# fmt: off
BENCHES: list[Bench] = [
    Bench("generate", "`serendip generate`: the synthetic platform generator",
          "Wall time, CPU time and peak memory of each preset, each in its own process.",
          "platform (100K users, 1M items, ~20M interactions) < 600 s and 8 GiB; small < 60 s; "
          "tiny < 2 s", ["bench_generate.py"], "generate", _generate),
    Bench("analyze", "`serendip analyze` at platform scale",
          "Loading and analysing the 20M-interaction platform, per phase, and peak memory.",
          "< 300 s", ["bench_analyze.py"], "analyze", _analyze),
    Bench("evaluate", "`evaluate_recommendations`",
          "Every metric (accuracy, coverage, novelty, diversity, serendipity, out-of-network) "
          "for 100K users' top-100 lists over a 50K catalogue.",
          "< 30 s for the index-array evaluation at K=100", ["bench_evaluate.py"], "evaluate",
          _evaluate),
    Bench("models", "Model zoo accuracy (issue 3)",
          "Every model on MovieLens 100K and Last.fm 2K: per-user random 80/20 (seed 42), "
          "NDCG@10 over the full catalogue, parameters tuned on validation "
          "(`benchmarks/model_params.json`).",
          "the issue's NDCG@10 floors on ML100K",
          ["bench_models.py", "--dataset", "ml-100k", "--dataset", "lastfm-2k"], "models",
          _models, BOTH),
    Bench("select-blend", "The weighted hybrid's default blend, re-derived",
          "`serendip.evaluation.selection.select_blend` (what `serendip select-blend` runs) on "
          "ML100K's training part with the recipe that chose `TUNED_BLEND`.",
          "the re-derived weights equal the shipped ones", ["bench_select_blend.py"],
          "select_blend", _select_blend, ML),
    Bench("deep-device", "Deep models on a GPU",
          "NeuMF, Mult-VAE, RecVAE and SASRec fitted on ML100K with device cuda and cpu, on "
          "the lent accelerator machine.",
          "the CUDA path fits and matches the CPU's accuracy",
          ["bench_deep_device.py"], "deep-device", _deep_device, _cuda),
    Bench("study", "The full study on MovieLens 100K (issue 4)",
          "Every model, peer and the pipeline on ML100K random and temporal, tuned on "
          "validation, with paired significance against the best baseline.",
          "every cell completes", ["bench_study.py", "--dataset", "ml-100k"], "study-ml-100k",
          _study, ML),
    Bench("study-lastfm", "The study on Last.fm 2K (issue 4)",
          "The study's models and peers on Last.fm 2K random (the table: a subset of the "
          "models, see its command).", "every cell completes",
          ["bench_study.py", "--dataset", "lastfm-2k"], "study-lastfm-2k", _study,
          _datasets("lastfm-2k")),
    Bench("pipeline", "Production pipeline vs the best single model (issue 5)",
          "The two-stage pipeline, chosen on validation folds (rule: "
          "`serendip.evaluation.selection`), against every single model on test; p / b = "
          "pipeline / best single model.",
          "NDCG@10 +3% over the best single model; coverage and novelty at least its; "
          "out-of-network HitRate 1.5x on social data; cold items 2x popularity; p99 < 30 ms",
          ["bench_pipeline.py", "--dataset", "ml-100k", "--dataset", "lastfm-2k",
           "--dataset", "small"], "pipeline", _pipeline, BOTH),
    Bench("sources-latency", "Stage one: propose + merge + features, one user per request",
          "Every candidate source and the feature builder on the `small` preset, one user at a "
          "time with BLAS at one thread.", "part of the 30 ms p99 one-user budget",
          ["bench_sources_latency.py"], "sources_latency", _sources_latency),
    Bench("sources-recall", "Candidate sources: recall of the future",
          "Each source's top-100 recall of a temporal split's test items on `small`, and the "
          "union's under the default quotas.", "none (a diagnostic: the floor under the ranker)",
          ["bench_sources_recall.py"], "sources_recall", _sources_recall),
    Bench("ann", "ANN retrieval (HNSW vs exact inner product)",
          "recall@100 and latency of the faiss HNSW index on iALS factors (ML100K, Last.fm, "
          "`small`) and a synthetic 1M-item catalogue.", "recall@100 >= 0.95",
          ["bench_ann.py"], "ann", _ann, BOTH),
    Bench("ingest", "Event ingestion into the store",
          "`Store.events.add_batch` into SQLite (WAL, synchronous=FULL) and PostgreSQL: new "
          "events, replays (duplicates) and single events.", "none (capacity)",
          ["bench_ingest.py"], "ingest", _ingest),
    Bench("serve", "HTTP API at platform scale",
          "`serendip serve` on the 100K-user, 1M-item platform (a lighter source set, "
          "`serve_platform_model.json`): open-loop latency, ingestion over HTTP, cold start.",
          "p99 <= 50 ms at 200 req/s with no errors; restart < 60 s", SERVE_PLATFORM, "serve",
          _serve),
    Bench("serve-live", "HTTP API at platform scale, users with live state",
          "The same on the store the previous run ingested into: most users have events since "
          "the fit and take the full pipeline path (a restart replaying 200K events, with the "
          "lighter source set; the issue's live-user budget with the default pipeline is "
          "`serve-live-platform`).", "as `serve`",
          [*SERVE_PLATFORM, "--name", "serve-live", "--note", SERVE_LIVE_NOTE], "serve-live",
          _serve, _artifact("platform")),
    Bench("live-request", "Live users: in-process cost of one recommendation",
          "`ModelRuntime.recommend` (k=10, explanations) on the platform model for users with "
          "two live events each (the full pipeline path).", "within the 30 ms one-user budget",
          ["bench_live_request.py"], "live_request", _live_request, _artifact("platform")),
    Bench("serve-small", "HTTP API on the `small` preset",
          "`serendip serve` with the default pipeline on 5,000 users and 20,000 items.",
          "p99 <= 50 ms at 200 req/s with no errors; restart < 60 s",
          ["bench_serve.py", "--preset", "small", "--duration", "20", "--rates", "50,100,200"],
          "serve-small", _serve),
    Bench("serve-small-workers2", "HTTP API on the `small` preset, two worker processes",
          "`serendip serve --workers 2` with the default pipeline on 5,000 users and 20,000 "
          "items (throughput against `serve-small`'s one process; no ingestion part).",
          "p99 <= 50 ms at 200 req/s with no errors; restart < 60 s",
          ["bench_serve.py", "--preset", "small", "--duration", "20", "--rates", "50,100,200",
           "--workers", "2", "--no-ingest", "--workdir", "bench-out/serve-small-w2",
           "--name", "serve-small-workers2"],
          "serve-small-workers2", _serve),
    Bench("serve-live-small", "Active users under catalog churn, by worker count (`small`)",
          "`serendip serve --workers 1|2` on `small`: every requested user with 2-5 new likes, "
          "one new item a second and a deletion every 5 s, k=20 with explanations, open loop; "
          "lists updated as events arrive (the default) or at the next request.",
          "p99 <= 50 ms at 200 req/s with no errors",
          ["bench_serve_live.py", "--preset", "small", "--workers", "1,2", "--refresh-live",
           "off,on", "--rates", "100,200", "--duration", "20", "--pool", "1000"],
          "serve_live_small", _serve_live),
    Bench("serve-live-platform", "Active users under catalog churn, by worker count (`platform`)",
          "The same load on the 100K-user, 1M-item platform with the default pipeline (a first "
          "start fits it when the store is empty; `--workdir` reuses a fitted store), lists "
          "updated as events arrive.",
          "p99 <= 50 ms at 200 req/s with no errors",
          ["bench_serve_live.py", "--preset", "platform", "--workers", "1,2", "--refresh-live",
           "on", "--rates", "100,200", "--duration", "20", "--pool", "1000"],
          "serve_live_platform", _serve_live),
    Bench("serve-cache", "Serving fast path: in-process cost per request",
          "`ModelRuntime.recommend` on the `small` artifact by case: uncached, cache miss, hit, "
          "filters, cold users, precomputed lists.", "within the 50 ms p99 serving floor",
          ["bench_runtime_cache.py"], "serve_cache", _serve_cache, _artifact("small")),
    Bench("app-inprocess", "The web framework's cost per request (issue 6)",
          "The recommendations route through FastAPI's TestClient against `ModelRuntime` "
          "called directly (`tiny` preset, warm cache).", "a small share of the 50 ms floor",
          ["bench_app_inprocess.py"], "app_inprocess", _app_inprocess),
    Bench("privacy", "The privacy study: DP cost and bias audit (issue 19.5, 19.6)",
          "`serendip study --profile privacy`: popularity (Laplace) and item-kNN (Gaussian) at "
          "no DP, clipping only and epsilon 0.1, 1, 10; the bias and discovery audit of each "
          "model (ML100K and synthetic small, random split).", "the cost measured at several "
          "epsilons", ["bench_privacy.py"], "privacy", lambda p: __import__("bench_privacy").summary(p), ML),
    Bench("incremental", "Active users on the fast path: incremental lists vs a full recompute (issue 17.1)",
          "A replay of the `small` preset's test window (events in time order, items added and "
          "deleted, recommendations requested between them): NDCG@10 and CPU per request of the "
          "incremental update against the full pipeline.", "NDCG@10 within 1% of the full "
          "recompute", ["bench_incremental.py", "--users", "600", "--requests-per-user", "4"],
          "incremental", lambda p: __import__("bench_incremental").summary(p)),
    Bench("first-start", "First start on an empty store (issue 17.6)",
          "`serendip serve` with its defaults on an empty SQLite store (`small` preset): seconds "
          "from the spawn to the first personal recommendation (the fast model) and to the "
          "default pipeline serving.", "the first recommendation within 60 s",
          ["bench_first_start.py"], "first_start", lambda p: __import__("bench_first_start").summary(p)),
    Bench("embeddings", "Content embeddings at scale: static vs transformer (issue 17.4)",
          "The static token table distilled from the shipped MiniLM against the transformer: "
          "docs/s on the `platform` preset's 1M item texts, NDCG@10 on the cold-items and "
          "temporal protocols.", "1M item texts in under 20 minutes on 2 cores",
          ["bench_embeddings.py"], "embeddings", lambda p: __import__("bench_embeddings").summary(p)),
    Bench("experiments", "A/B statistics, interleaving and the simulator (issue 18.3)",
          "Simulated users of the `small` preset answer fitted models' lists from their true "
          "preferences: A/A false positives (z-test, sequential), power at the calculator's size, "
          "CUPED, interleaving traffic against A/B, engagement beyond the network.",
          "FPR in [2%, 8%] for both tests; power >= 80% at the calculator's size; interleaving "
          ">= 10x less traffic", ["bench_experiments.py"], "experiments", _experiments),
    Bench("pipeline-floors", "The pipeline tuned on the user's data against the zoo (issue 16)",
          "`fit --tune`'s machinery for the pipeline and a shortlist of single models on ML100K "
          "random, temporal and cold users, Last.fm random and synthetic small temporal; the best "
          "single model chosen on validation; `fit --model pipeline --tune` timed on ML100K.",
          "at least the best single model (+3% on temporal splits), never below popularity, "
          "out-of-network HitRate above the best single model on Last.fm, fit --tune < 15 min",
          ["bench_pipeline_floors.py"], "pipeline_floors",
          lambda p: __import__("bench_pipeline_floors").summary(p), BOTH),
    Bench("sources-scale", "The default candidate sources at 20K and 1M items (issue 17.3)",
          "Each default source fitted alone on the `small` and `platform` presets: fit time, "
          "memory, CPU per user's proposal; the large-catalog paths against the exact ones.",
          "no per-user cost that grows with the catalog",
          ["bench_sources_scale.py", "--preset", "small"], "sources_scale",
          lambda p: __import__("bench_sources_scale").summary(p)),
    Bench("scale", "The whole loop at three sizes: infrastructure requirements (issue 17.7)",
          "Import, retrain (fit + precomputed lists), batch top-50 and serving per size: wall, "
          "CPU, peak memory, disk, capacity; the cost curve the decision report reads.",
          "retrain <= 30 min and <= 16 GiB, batch top-50 <= 10 min at the platform preset",
          ["bench_scale.py"], "scale-stages", lambda p: __import__("bench_scale").summary(p)),
    Bench("spark", "Spark local[2] iALS vs single-machine iALS (issue 17.5)", "MLlib ALS on local[2] against implicit's iALS on ML100K random 80/20, parameters mapped (and MLlib's tuned on validation), NDCG@10 with bootstrap CIs, fit times.", "within 2% NDCG@10 of the single-machine iALS", ["bench_spark.py"], "spark", lambda p: __import__("bench_spark").summary(p), ML),
]
# fmt: on

HEADER = """# Benchmark results

One section per script in `benchmarks/`: what it measures, the command that reproduces it, a
short table, and the verdict against its target. Each table comes from the script's own
`results/<name>.json`, written by a real run on this project's reference machine (2 CPU cores,
24 GiB RAM, shared with other work: where a script records CPU time, that is the
load-independent figure) unless its full table (`results/<name>.md`) names another machine.
`make bench` runs them all and rebuilds this page (`python benchmarks/run_all.py --assemble`
only rebuilds it). Exploratory probes and searches are in `docs/research-log.md`.
"""


def _when(path: Path) -> str:
    """When and where the stored result was written, as far as its JSON says."""
    d = _load(path)
    bits = [str(d[k]) for k in ("run_at", "when") if isinstance(d.get(k), str)]
    if isinstance(d.get("study"), dict):
        bits.append(d["study"].get("created", "")[:16].replace("T", " ") + " UTC")
    machine = d.get("machine") or (d.get("env") or {}).get("machine")
    if not machine and d.get("rows") and isinstance(d["rows"][0], dict):
        machine = d["rows"][0].get("machine")  # the models table: one per row
    if isinstance(machine, dict):
        machine = f"{machine.get('cpus')} CPU cores, Python {machine.get('python')}"
    if machine:
        bits.append(str(machine))
    return "; ".join(b for b in bits if b)


def _slug(title: str) -> str:
    """The anchor GitHub gives a heading."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def assemble() -> Path:
    sections, index = [], []
    for b in BENCHES:
        link = f"[{b.name}](#{_slug(b.title)})"
        path = RESULTS / f"{'models-ml-100k' if b.name == 'models' else b.result}.json"
        command = f"`{b.command()}`"
        intro = [f"## {b.title}", "", f"{b.measures} Target: {b.target}.", ""]
        if not path.exists():
            sections += [*intro, f"- Command: {command}; not run yet.", ""]
            index.append([link, b.target, "not run yet"])
            continue
        table, verdict, short = b.summary(path)
        when = _when(path)
        full = f"[results/{b.result}.md](results/{b.result}.md)"
        run = f"; last run: {when}." if when else "."
        sections += [
            *intro,
            f"- Command: {command}; full table: {full}{run}",
            "",
            *table,
            "",
            f"**Verdict:** {verdict}",
            "",
        ]
        index.append([link, b.target, short])
    page = [HEADER, *_table(["benchmark", "target", "verdict"], index, right=3), "", *sections]
    out = ROOT / "RESULTS.md"
    out.write_text("\n".join(page).rstrip() + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", action="append", choices=[b.name for b in BENCHES])
    ap.add_argument("--assemble", action="store_true", help="only rebuild RESULTS.md")
    ap.add_argument("--list", action="store_true", help="print each benchmark's name and script")
    args = ap.parse_args()
    if args.list:
        for b in BENCHES:
            print(f"{b.name}\t{b.script}")
        return
    skipped = []
    if not args.assemble:
        for b in BENCHES:
            if args.only and b.name not in args.only:
                continue
            reason = b.requires()
            if reason:
                keep = f"results/{b.result}.md keeps the last run's table"
                print(f"== {b.name}: skipped: {reason}; {keep}", flush=True)
                skipped.append(b.name)
                continue
            print(f"== {b.name}: {b.command()}", flush=True)
            subprocess.run([sys.executable, str(ROOT / b.argv[0]), *b.argv[1:]], check=True)
    print(f"wrote {assemble()}" + (f" (skipped: {', '.join(skipped)})" if skipped else ""))


if __name__ == "__main__":
    main()
