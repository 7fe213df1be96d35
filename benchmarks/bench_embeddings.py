"""Content embeddings at scale: the static (model2vec) encoder against the transformer.

Two questions (issue 17 point 4): how fast does each encoder embed a million item texts on this
machine's CPUs, and what does the fast path cost in accuracy on the study's content protocols?

    .venv/bin/python benchmarks/bench_embeddings.py                       # full run
    .venv/bin/python benchmarks/bench_embeddings.py --platform-dir /tmp/platform-seed42
    .venv/bin/python benchmarks/bench_embeddings.py --items 100000 --quick  # a smoke run

Speed: the `platform` preset's item documents (generated unless `--platform-dir` is given),
all of them through the static encoder (distillation timed apart: it runs once per install and
is cached), and a sample through the transformer whose rate is extrapolated to the whole
catalogue (marked as such). Accuracy: `sbert` with each encoder and `tfidf` on the cold-items
(10% newest items held out) and temporal (last 20%) protocols of synthetic `small` and, where
present, MovieLens 100K; NDCG@10 over full rankings with a 95% normal interval over users.
Writes benchmarks/results/embeddings.md/.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from serendip.data.dataset import Dataset
from serendip.data.loaders import load_movielens, load_platform
from serendip.data.synthetic import generate_platform
from serendip.evaluation import cold_item_split, temporal_split
from serendip.evaluation.evaluate import evaluate_recommendations
from serendip.models.content import SentenceContent, TfidfContent, bundled_model_path
from serendip.models.content._sbert import _static_encoder, sentence_documents

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("SERENDIP_SHARED_DATA", ROOT.parent / "shared" / "data"))
MODELS: dict[str, dict[str, Any]] = {
    "sbert (transformer)": {"encoder": "transformer"},
    "sbert (static, 256-d)": {"encoder": "static", "static_dims": 256},
    "tfidf": {},
}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def speed(docs: list[str], sample: int, dims: int) -> dict[str, Any]:
    """Seconds to embed `docs` with the static encoder, and the transformer's rate on a sample."""
    path = str(bundled_model_path())
    t0, c0 = time.perf_counter(), _cpu()
    _static_encoder.cache_clear()
    static = _static_encoder(path, dims, None)
    load_s = time.perf_counter() - t0
    model = SentenceContent(encoder="static", static_dims=dims)
    t0, c0 = time.perf_counter(), _cpu()
    out = model._embed_static(path, model.config, docs)  # type: ignore[arg-type]
    static_s, static_cpu = time.perf_counter() - t0, _cpu() - c0
    assert out.shape == (len(docs), static.dim)
    pick = docs[:sample]
    tm = SentenceContent()
    t0, c0 = time.perf_counter(), _cpu()
    tm._embed_transformer(path, tm.config, pick)  # type: ignore[arg-type]
    tr_s, tr_cpu = time.perf_counter() - t0, _cpu() - c0
    per_doc = tr_s / len(pick)
    return {
        "items": len(docs),
        "mean_doc_chars": float(np.mean([len(d) for d in docs])),
        "static_load_or_distill_s": load_s,
        "static_s": static_s,
        "static_cpu_s": static_cpu,
        "static_docs_per_s": len(docs) / static_s,
        "transformer_sample": len(pick),
        "transformer_sample_s": tr_s,
        "transformer_sample_cpu_s": tr_cpu,
        "transformer_docs_per_s": 1 / per_doc,
        "transformer_extrapolated_s": per_doc * len(docs),
    }


def distill_seconds(dims: int) -> float:
    """Distillation from scratch into a temporary cache (what a first use costs)."""
    with tempfile.TemporaryDirectory() as tmp:
        _static_encoder.cache_clear()
        t0 = time.perf_counter()
        _static_encoder(str(bundled_model_path()), dims, tmp)
        took = time.perf_counter() - t0
    _static_encoder.cache_clear()
    return took


def accuracy(name: str, ds: Dataset, protocols: list[str]) -> list[dict[str, Any]]:
    rows = []
    for proto in protocols:
        split = (
            cold_item_split(ds, item_fraction=0.1)
            if proto == "cold-items"
            else temporal_split(ds, test_fraction=0.2)
        )
        users = np.unique(split.test.interactions.user)
        for label, params in MODELS.items():
            t0 = time.perf_counter()
            model = (TfidfContent() if label == "tfidf" else SentenceContent(**params)).fit(
                split.train
            )
            fit_s = time.perf_counter() - t0
            recs = model.recommend(split.train.users.ids[users], 10)
            res = evaluate_recommendations(recs, split.train, split.test, 10, keep_per_user=True)
            per_user = np.asarray(res.per_user["ndcg@10"], dtype=float)
            ci = 1.96 * per_user.std(ddof=1) / np.sqrt(len(per_user))
            rows.append(
                {
                    "dataset": name,
                    "protocol": proto,
                    "model": label,
                    "ndcg@10": float(res["ndcg@10"]),
                    "ci95": float(ci),
                    "users": len(per_user),
                    "fit_s": fit_s,
                }
            )
            print(rows[-1], flush=True)
    return rows


def write(data: dict[str, Any], command: str) -> None:
    sp, acc = data["speed"], data["accuracy"]
    lines = [
        "# Benchmark: content embeddings at scale (static vs transformer)",
        "",
        f"- Command: `{command}`",
        f"- Machine: {os.cpu_count()} CPU cores visible, Python {platform.python_version()}; "
        f"1-minute load average before/after: {data['load'][0]:.1f} / {data['load'][1]:.1f} "
        "(the machine is shared: wall seconds rise with load, CPU seconds much less).",
        "- Static encoder: a static token table distilled from the shipped all-MiniLM-L6-v2 "
        "(model2vec's method; model2vec encodes) "
        f"(PCA to {data['dims']} dims), cached after the first use; a document is the mean of "
        "its tokens' vectors, L2-normalised.",
        "",
        "## Speed: the `platform` preset's item documents",
        "",
        "| encoder | items | wall s | CPU s | docs/s | note |",
        "|---|---:|---:|---:|---:|---|",
        f"| static | {sp['items']:,} | {sp['static_s']:.1f} | {sp['static_cpu_s']:.1f} | "
        f"{sp['static_docs_per_s']:,.0f} | measured on every document |",
        f"| transformer | {sp['items']:,} | {sp['transformer_extrapolated_s']:,.0f} | – | "
        f"{sp['transformer_docs_per_s']:,.0f} | extrapolated from {sp['transformer_sample']:,} "
        f"documents ({sp['transformer_sample_s']:.1f} s) |",
        "",
        f"Mean document length: {sp['mean_doc_chars']:.0f} characters. Distilling the static "
        f"table from scratch (once per install): {data['distill_s']:.1f} s. Budget: 1M items "
        f"in under 20 minutes: static {'met' if sp['static_s'] < 1200 else 'missed'} "
        f"({sp['static_s'] / 60:.1f} min), transformer "
        f"{'met' if sp['transformer_extrapolated_s'] < 1200 else 'missed'} "
        f"({sp['transformer_extrapolated_s'] / 60:.0f} min, extrapolated).",
        "",
        "## Accuracy: NDCG@10 (full ranking, 95% interval over users)",
        "",
        "| dataset | protocol | model | NDCG@10 | ±95% | users | fit s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in acc:
        lines.append(
            f"| {r['dataset']} | {r['protocol']} | {r['model']} | {r['ndcg@10']:.4f} | "
            f"{r['ci95']:.4f} | {r['users']:,} | {r['fit_s']:.1f} |"
        )
    lines += ["", "Static / transformer NDCG@10 ratio per cell:", ""]
    for (ds, proto), cell in _cells(acc).items():
        tr, st = cell.get("sbert (transformer)"), cell.get(f"sbert (static, {data['dims']}-d)")
        if tr and st and tr["ndcg@10"] > 0:
            lines.append(f"- {ds} / {proto}: {st['ndcg@10'] / tr['ndcg@10']:.3f}")
    (RESULTS / "embeddings.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "embeddings.json").write_text(json.dumps(data, indent=2) + "\n")


def summary(path: Path) -> tuple[list[str], str, str]:
    """(short table, verdict, a few words) for benchmarks/RESULTS.md (run_all.py)."""
    d = json.loads(path.read_text())
    sp = d["speed"]
    per_million = 1_000_000 / sp["static_docs_per_s"] / 60
    table = [
        "| encoder | docs/s | 1M items, min | |",
        "|---|---:|---:|---|",
        f"| static | {sp['static_docs_per_s']:,.0f} | {per_million:.1f} | measured on "
        f"{sp['items']:,} documents |",
        f"| transformer | {sp['transformer_docs_per_s']:,.0f} | "
        f"{1_000_000 / sp['transformer_docs_per_s'] / 60:,.0f} | extrapolated |",
    ]
    ratios = []
    for (ds, proto), cell in _cells(d["accuracy"]).items():
        tr, st = cell.get("sbert (transformer)"), cell.get(f"sbert (static, {d['dims']}-d)")
        if tr and st and tr["ndcg@10"] > 0:
            ratios.append(f"{ds} {proto} {st['ndcg@10'] / tr['ndcg@10']:.2f}")
    verdict = (
        f"the static encoder embeds 1M item texts in {per_million:.1f} min on this machine "
        f"({_met(per_million < 20)} the 20-minute budget); static/transformer NDCG@10: "
        + "; ".join(ratios)
        + "."
    )
    return table, verdict, f"1M texts in {per_million:.1f} min"


def _met(ok: bool) -> str:
    return "within" if ok else "outside"


def _cells(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["dataset"], r["protocol"]), {})[r["model"]] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform-dir", type=Path, default=None, help="a generated platform")
    ap.add_argument("--items", type=int, default=None, help="embed only the first N items")
    ap.add_argument("--sample", type=int, default=2000, help="documents for the transformer")
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--quick", action="store_true", help="skip MovieLens and the temporal cells")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    distill_s = distill_seconds(args.dims)
    print(f"distilled in {distill_s:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = args.platform_dir or generate_platform("platform", seed=42, out=Path(tmp) / "p")
        items = load_platform(src).item_meta
        docs = sentence_documents(items)
    del items
    if args.items:
        docs = docs[: args.items]
    sp = speed(docs, args.sample, args.dims)
    print(sp, flush=True)
    del docs
    protocols = ["cold-items"] if args.quick else ["cold-items", "temporal"]
    with tempfile.TemporaryDirectory() as tmp:
        small = load_platform(generate_platform("small", seed=0, out=Path(tmp) / "s"))
    acc = accuracy("synthetic small", small, protocols)
    if not args.quick and (SHARED / "ml-100k").is_dir():
        acc += accuracy("MovieLens 100K", load_movielens(SHARED / "ml-100k"), protocols)
    data = {
        "dims": args.dims,
        "distill_s": distill_s,
        "speed": sp,
        "accuracy": acc,
        "load": [load0, os.getloadavg()[0]],
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores, Python {platform.python_version()}",
    }
    if not args.no_write:
        argv = ["python benchmarks/bench_embeddings.py"]
        if args.items:
            argv.append(f"--items {args.items}")
        if args.quick:
            argv.append("--quick")
        write(data, " ".join(argv))


if __name__ == "__main__":
    main()
