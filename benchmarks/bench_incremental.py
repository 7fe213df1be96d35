"""Active users on the fast path (issue 17, point 1): incremental lists against a full recompute.

Replays the `small` preset's test window (temporal split, last 20% of interactions) through
`ModelRuntime`s over the same pipeline artifact (fitted on the train part, precomputed lists
saved with it): `incremental` (a user with live events is served from their precomputed
candidates updated with those events on their next request, `serendip.pipeline.incremental`),
`full` (the same user takes the whole pipeline) and `at_event` (the update made when the
event arrives, `serendip.serving.serve.refresh`, timed apart from the request). Events are
posted in time order to all; before a sampled user's event, each is asked for that user's
top-10 (explanations on), and each list is scored by NDCG@10 against the user's test items
still to come. Items are deleted and new items added during the replay (a live feed's
catalog). CPU per request is this process's CPU time; the incremental and full requests' CPU
is also split by component (live context, each source, features, ranker, final list,
explanations), timed by wrappers around those calls (about 1 microsecond each).

    python benchmarks/bench_incremental.py [--users 600] [--requests-per-user 4]

Writes benchmarks/results/incremental.md and .json. The fitted artifact is kept under
bench-out/incremental/ (reused by later runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "bench-out" / "incremental"
K = 10
#: The issue's bar: the incremental lists' NDCG@10 within 1% of the full recompute's.
BAR = 0.01


def prepare(preset: str, seed: int) -> tuple[Path, Any]:
    """(the fitted pipeline artifact with its precomputed lists, the temporal split)."""
    from serendip.data.loaders.platform import load_platform
    from serendip.data.synthetic import generate_platform
    from serendip.evaluation import temporal_split

    data = WORK / f"{preset}-seed{seed}"
    if not (data / "manifest.json").is_file():
        generate_platform(preset, seed=seed, out=data)
    split = temporal_split(load_platform(data), test_fraction=0.2)
    art = WORK / f"{preset}-seed{seed}-pipeline"
    if not (art / "serving-lists" / "meta.json").is_file():
        from serendip.models import create_model
        from serendip.pipeline.serving import serving_model
        from serendip.serving.precompute import build_ranked_lists, fingerprint

        t0 = time.perf_counter()
        model = create_model("pipeline", {}).fit(split.train)
        print(f"fitted in {time.perf_counter() - t0:.0f} s", flush=True)
        model.save(art)
        lists = build_ranked_lists(serving_model(model), fingerprint=fingerprint(art))
        assert lists is not None
        lists.save(art)
    return art, split


def _ndcg(items: list[str], truth: set[str]) -> float:
    """NDCG@K of one list against the items still to come (binary relevance)."""
    dcg = sum(1.0 / np.log2(r + 2) for r, i in enumerate(items[:K]) if i in truth)
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(truth), K)))
    return float(dcg / ideal) if ideal else 0.0


def _cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    c = time.process_time()
    out = fn()
    return out, 1000.0 * (time.process_time() - c)


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, np.float64)
    if not len(a):
        return {"n": 0}
    return {
        "n": len(a),
        "mean": round(float(a.mean()), 3),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
    }


@contextmanager
def component_timers() -> Iterator[dict[str, float]]:
    """CPU seconds spent in each component of a pipeline request, accumulated into the
    yielded dict (cleared by the caller between requests) while the block runs: wrappers
    around the live context, each source's proposals, the features, the ranker, the final
    list and the explanations (nested calls count in each: a source inside the update)."""
    import serendip.serving.serve as serve
    from serendip.pipeline import sources
    from serendip.pipeline.features import FeatureBuilder
    from serendip.pipeline.ranker import LambdaRanker
    from serendip.pipeline.serving import PipelineServing

    spent: dict[str, float] = {}
    targets: list[tuple[Any, str, str]] = [
        (PipelineServing, "contexts", "live context"),
        (FeatureBuilder, "build", "features"),
        (LambdaRanker, "predict", "ranker"),
        (PipelineServing, "final_list", "final list (filters, re-ranking, backfill)"),
        (serve, "_explanation", "explanations"),
        (sources.CollaborativeSource, "propose_batch", "source collaborative"),
    ]
    for cls in (
        sources.InNetworkSource,
        sources.RecentItemKNNSource,
        sources.ContentSource,
        sources.TrendingSource,
        sources.FreshFollowedSource,
        sources.ExploreSource,
    ):
        targets.append((cls, "propose", f"source {cls.name}"))
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in targets]

    def timed(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - start

        return call

    for (owner, attr, label), (_, _, fn) in zip(targets, saved, strict=True):
        setattr(owner, attr, timed(fn, label))
    try:
        yield spent
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)


def _bootstrap(diff: np.ndarray, seed: int = 0, n: int = 2000) -> tuple[float, float]:
    """Percentile 95% interval of the mean of paired differences."""
    rng = np.random.default_rng(seed)
    means = [float(diff[rng.integers(0, len(diff), len(diff))].mean()) for _ in range(n)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def replay(art: Path, split: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Post the test window in time order to every runtime; ask each before sampled events."""
    from serendip.data.dataset import EVENT_TYPES
    from serendip.service.runtime import ModelRuntime
    from serendip.serving.serve import refresh

    runtimes = {
        "incremental": ModelRuntime(build_in_background=False, freeze_gc=False),
        "full": ModelRuntime(build_in_background=False, freeze_gc=False, incremental=False),
        # updated when the events arrive (what `refresh_live` does in a background thread;
        # here called in line, so that its CPU is measured apart from the request's)
        "at_event": ModelRuntime(build_in_background=False, freeze_gc=False),
    }
    for rt in runtimes.values():
        rt.load(art, "bench")
        snap = rt.snapshot
        assert snap is not None and snap.lists is not None and snap.lists.lists is not None
    model: Any = runtimes["full"].snapshot.model  # type: ignore[union-attr]
    test = split.test.interactions
    order = np.lexsort((np.arange(len(test)), test.timestamp))
    users = test.user[order]
    items = [str(x) for x in split.test.items.lookup(test.item[order])]
    uids = [str(x) for x in split.test.users.lookup(users)]
    times = test.timestamp[order]
    kinds = [EVENT_TYPES[int(c)] for c in test.event[order]]
    # sampled users: at least two test events, so a request after a live event has a truth
    per_user = np.bincount(users, minlength=int(users.max()) + 1)
    rng = np.random.default_rng(args.seed)
    eligible = np.flatnonzero(per_user >= 2)
    sampled = set(rng.choice(eligible, min(args.users, len(eligible)), replace=False).tolist())
    # request before the user's 2nd .. (R+1)-th test event: each after at least one live event
    seen_count: dict[int, int] = {}
    points = np.zeros(len(order), bool)
    for j, u in enumerate(users.tolist()):
        c = seen_count.get(u, 0)
        seen_count[u] = c + 1
        points[j] = u in sampled and 1 <= c <= args.requests_per_user
    remaining: dict[int, list[int]] = {}
    for j, u in enumerate(users.tolist()):
        if u in sampled:
            remaining.setdefault(u, []).append(j)
    last_point = {int(users[j]): j for j in np.flatnonzero(points)}
    # quiet users (no test events): served from the lists while the catalog changes
    quiet_pool = np.setdiff1d(np.arange(len(model.users_)), np.unique(users))
    quiet = [str(model.users_.id(int(u))) for u in rng.choice(quiet_pool, 200, replace=False)]
    truth_items = set(items)
    deletable = [str(i) for i in model.items_.ids if str(i) not in truth_items]
    cats = sorted({str(c) for c in model.item_category_ if str(c)})
    authors = [str(a) for a in model.item_author_[:500]]
    rows: list[dict[str, Any]] = []
    quiet_cpu: list[float] = []
    quiet_next_cpu: list[float] = []
    update_cpu: list[float] = []
    components: dict[str, dict[str, float]] = {"incremental": {}, "full": {}}
    n_new = n_deleted = 0
    t0 = time.perf_counter()
    with component_timers() as spent:
        for j in range(len(order)):
            if points[j]:
                u = int(users[j])
                truth = {items[x] for x in remaining[u] if x >= j}
                row: dict[str, Any] = {"user": uids[j]}
                for name, rt in runtimes.items():
                    spent.clear()
                    recs, ms = _cpu(partial(rt.recommend, uids[j], K, explain=True))
                    if name in components:
                        for part, sec in spent.items():
                            components[name][part] = components[name].get(part, 0.0) + sec
                    row[name] = [r.item for r in recs]
                    row[f"{name}_cpu_ms"] = ms
                    row[f"{name}_ndcg"] = _ndcg(row[name], truth)
                # the same request again: what a user's next page view costs
                _, row["incremental_repeat_cpu_ms"] = _cpu(
                    partial(runtimes["incremental"].recommend, uids[j], K, explain=True)
                )
                rows.append(row)
            event = {"user": uids[j], "item": items[j], "event": kinds[j], "timestamp": times[j]}
            for rt in runtimes.values():
                rt.on_events([event])
            if last_point.get(int(users[j]), -1) > j:  # a sampled user asks again later
                at = runtimes["at_event"]
                snap = at.snapshot
                assert snap is not None
                update_cpu.append(_cpu(partial(refresh, snap, at.state, uids[j], k=K))[1])
            if j % args.catalog_every == 0:  # a live feed: one new item, one deleted
                new = {
                    "item": f"live-{n_new}",
                    "category": cats[n_new % len(cats)],
                    "author": authors[n_new % len(authors)],
                    "created_at": float(times[j]),
                }
                gone = deletable[int(rng.integers(len(deletable)))]
                for rt in runtimes.values():
                    rt.on_items([new])
                    rt.on_items_deleted([gone])
                n_new += 1
                n_deleted += 1
                # two users without live state: the first request after the change pays its
                # index rebuilds (deleted-items mask, live catalog index), the second does not
                at = 2 * (j // args.catalog_every)
                for n, cpu in ((0, quiet_cpu), (1, quiet_next_cpu)):
                    q = quiet[(at + n) % len(quiet)]
                    cpu.append(
                        _cpu(partial(runtimes["incremental"].recommend, q, K, explain=True))[1]
                    )
            if j and j % 20000 == 0:
                print(
                    f"{j}/{len(order)} events, {len(rows)} requests, {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
    paths = {
        name: dict(rt.snapshot.cache.paths)  # type: ignore[union-attr]
        for name, rt in runtimes.items()
    }
    inc = np.array([r["incremental_ndcg"] for r in rows])
    full = np.array([r["full_ndcg"] for r in rows])
    lo, hi = _bootstrap(inc - full)
    overlap = [len(set(r["incremental"]) & set(r["full"])) / K for r in rows]
    same = sum(r["at_event"] == r["incremental"] for r in rows)
    return {
        "n_requests": len(rows),
        "n_users": len({r["user"] for r in rows}),
        "n_events": len(order),
        "items_added": n_new,
        "items_deleted": n_deleted,
        "replay_s": round(time.perf_counter() - t0, 1),
        "ndcg": {
            "incremental": round(float(inc.mean()), 5),
            "full": round(float(full.mean()), 5),
            "relative": round(float(inc.mean() / full.mean() - 1.0), 5) if full.mean() else None,
            "diff_ci": [round(lo, 5), round(hi, 5)],
        },
        "top10_overlap": round(float(np.mean(overlap)), 4),
        "at_event_same_lists": same,
        "updates_per_request": round(len(update_cpu) / max(len(rows), 1), 3),
        "cpu_ms": {
            "full": _stats([r["full_cpu_ms"] for r in rows]),
            "incremental": _stats([r["incremental_cpu_ms"] for r in rows]),
            "incremental_repeat": _stats([r["incremental_repeat_cpu_ms"] for r in rows]),
            "at_event_request": _stats([r["at_event_cpu_ms"] for r in rows]),
            "at_event_update": _stats(update_cpu),
            "quiet_users_during_catalog_changes": _stats(quiet_cpu),
            "quiet_users_between_catalog_changes": _stats(quiet_next_cpu),
        },
        "paths": paths,
        # mean CPU ms per request spent in each component (the first request after events)
        "cpu_components_ms": {
            name: {
                part: round(1000.0 * sec / max(len(rows), 1), 3)
                for part, sec in sorted(parts.items(), key=lambda kv: -kv[1])
            }
            for name, parts in components.items()
        },
    }


def verdict(d: dict[str, Any]) -> str:
    n, cpu = d["ndcg"], d["cpu_ms"]
    met = n["relative"] is not None and n["relative"] >= -BAR
    lo, hi = n["diff_ci"]
    return (
        f"NDCG@10 bar (incremental within {BAR:.0%} of the full recompute) "
        f"{'met' if met else 'missed'}: {n['incremental']:.4f} vs {n['full']:.4f} "
        f"({n['relative']:+.2%}; paired 95% CI of the difference [{lo:+.4f}, {hi:+.4f}]) over "
        f"{d['n_requests']} requests. CPU per live request {cpu['full']['mean']:.2f} ms full, "
        f"{cpu['incremental']['mean']:.2f} ms incremental (update included), "
        f"{cpu['incremental_repeat']['mean']:.2f} ms repeated; updated when the event arrives: "
        f"{cpu['at_event_request']['mean']:.2f} ms per request, "
        f"{cpu['at_event_update']['mean']:.2f} ms per update."
    )


def summary(path: Path) -> tuple[list[str], str, str]:
    """(short table, verdict, a few words) for benchmarks/RESULTS.md (run_all.py)."""
    return _summary(json.loads(path.read_text()))


def _summary(d: dict[str, Any]) -> tuple[list[str], str, str]:
    table = [
        "| path | NDCG@10 | CPU mean ms | CPU p50 ms | CPU p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, key in (("full recompute", "full"), ("incremental", "incremental")):
        c = d["cpu_ms"][key]
        table.append(
            f"| {name} | {d['ndcg'][key]:.4f} | {c['mean']:.2f} | {c['p50']:.2f} | {c['p99']:.2f} |"
        )
    for name, key in (
        ("incremental, repeated request", "incremental_repeat"),
        ("incremental updated at each event: the request", "at_event_request"),
        ("incremental updated at each event: one update", "at_event_update"),
        ("no events, first request after a catalog change", "quiet_users_during_catalog_changes"),
        ("no events, the next request", "quiet_users_between_catalog_changes"),
    ):
        c = d["cpu_ms"][key]
        table.append(f"| {name} | | {c['mean']:.2f} | {c['p50']:.2f} | {c['p99']:.2f} |")
    cpu = d["cpu_ms"]
    short = (
        f"NDCG@10 {d['ndcg']['relative']:+.2%} vs full; CPU {cpu['full']['mean']:.1f} -> "
        f"{cpu['incremental']['mean']:.1f} ms"
    )
    return table, verdict(d), short


def _component_table(d: dict[str, Any]) -> list[str]:
    """Mean CPU ms per request by component, incremental and full (runs before the split)."""
    parts = d.get("cpu_components_ms")
    if not parts:
        return []
    inc, full = parts["incremental"], parts["full"]
    names = sorted(set(inc) | set(full), key=lambda n: -max(inc.get(n, 0.0), full.get(n, 0.0)))
    lines = [
        "CPU per request by component (mean ms; a source inside the update counts in both "
        "its row and the total):",
        "",
        "| component | incremental | full recompute |",
        "|---|---:|---:|",
    ]
    for n in names:
        a, b = inc.get(n), full.get(n)
        lines.append(
            f"| {n} | {'' if a is None else f'{a:.2f}'} | {'' if b is None else f'{b:.2f}'} |"
        )
    c = d["cpu_ms"]
    lines.append(f"| request total | {c['incremental']['mean']:.2f} | {c['full']['mean']:.2f} |")
    return [*lines, ""]


def _markdown(d: dict[str, Any]) -> str:
    table, text, _ = _summary(d)
    paths = "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(p.items()))
        for name, p in d["paths"].items()
    )
    return "\n".join(
        [
            "# Active users on the fast path: incremental lists vs a full recompute (issue 17.1)",
            "",
            f"Command: `{d['command']}`  ",
            f"Machine: {d['machine']}; run at {d['run_at']}; load average at start "
            f"{d['load_average']}",
            "",
            f"Replay of the `{d['preset']}` preset's test window (temporal split, last 20%: "
            f"{d['n_events']:,} events in time order, posted to every runtime), pipeline "
            f"(default parameters) fitted on the train part with its precomputed lists. "
            f"{d['n_requests']} requests from {d['n_users']} sampled users, each before one of "
            f"their test events and after at least one live event (k={K}, explanations on); "
            f"NDCG@10 against the user's test items still to come. During the replay "
            f"{d['items_added']} new items were added and {d['items_deleted']} deleted (one each "
            f"per {d['catalog_every']} events). CPU ms: this process's CPU per request; "
            "incremental: the first request after new events (the update included); repeated: "
            "the same request again (a cache hit); no events: users without live state (served "
            "from the precomputed lists), the first request after each catalog change (it "
            "rebuilds the deleted-items mask and the live catalog index) and the next one.",
            "",
            *table,
            "",
            *_component_table(d),
            f"Top-10 overlap of the incremental and full lists: {d['top10_overlap']:.1%}.  ",
            f"Updated at each event (`ModelRuntime(refresh_live=True)` does it in a background "
            f"thread; here in line, timed apart): {d['updates_per_request']:.2f} updates per "
            f"request (one per event of a sampled user before their next request); the lists "
            f"served equal the lazily updated ones for {d['at_event_same_lists']} of "
            f"{d['n_requests']} requests.  ",
            f"Requests per path: {paths}.",
            "",
            text,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--users", type=int, default=600, help="sampled users")
    ap.add_argument("--requests-per-user", type=int, default=4)
    ap.add_argument("--catalog-every", type=int, default=200, help="events per catalog change")
    ap.add_argument("--out", type=Path, default=RESULTS / "incremental.md")
    ap.add_argument(
        "--keep",
        default=None,
        help="comma-separated sources kept from the lists after events (trials; default: "
        "serendip.pipeline.incremental.FITTED_SOURCES)",
    )
    args = ap.parse_args(argv)
    if args.keep is not None:
        import serendip.pipeline.incremental as inc

        inc.FITTED_SOURCES = tuple(s for s in args.keep.split(",") if s)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    art, split = prepare(args.preset, args.seed)
    d = replay(art, split, args)
    d.update(
        {
            "command": "python benchmarks/bench_incremental.py " + " ".join(sys.argv[1:]),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"Python {sys.version.split()[0]}",
            "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average": load,
            "preset": args.preset,
            "catalog_every": args.catalog_every,
        }
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(d, indent=1) + "\n")
    rewrite(args.out)


def rewrite(out: Path) -> None:
    """Write the markdown of `out`'s JSON (the run's record) next to it."""
    text = _markdown(json.loads(out.with_suffix(".json").read_text()))
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
