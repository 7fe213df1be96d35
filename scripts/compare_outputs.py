"""Do two checkouts of Serendip serve the same recommendations? A refactoring check.

    python scripts/compare_outputs.py fit  --work DIR            # fit and save the models once
    python scripts/compare_outputs.py dump --work DIR --out A.json
    (change the code)
    python scripts/compare_outputs.py dump --work DIR --out B.json
    python scripts/compare_outputs.py diff A.json B.json

`fit` saves, per dataset (the synthetic `small` preset and MovieLens 100K), the pipeline with its
defaults and a few zoo models of the families the serving runtime treats differently (fold-in,
context, the weighted hybrid). `dump` loads them (so fitting code that changed does not mask
serving code that changed) and writes, for a fixed set of users: every model's `recommend`
(k=20), `score` and `explain`, and the HTTP runtime's answers (`ModelRuntime.recommend` with
explanations) before and after live events, a follow, new and deleted items and request filters.
`dump --refit` fits anew into a scratch directory instead, to compare the fitting code as well.
`diff` prints the first differences per section and exits 1 when any.

Run with another checkout's code through PYTHONPATH=<checkout>/src.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"
if not ML100K.is_dir():  # run from a copy of the script
    ML100K = Path("/work/shared/data/ml-100k")
MODELS: dict[str, list[str]] = {
    "small": ["pipeline", "ials", "item-knn", "tfidf", "in-network"],
    "ml-100k": ["pipeline", "ease", "ials", "item-knn", "weighted-hybrid"],
}
N_USERS = 60


def _dataset(name: str, work: Path) -> Any:
    from serendip.data.loaders.source import load_source

    if name == "ml-100k":
        return load_source(ML100K)
    from serendip.data.synthetic import generate_platform

    out = work / "data-small"
    if not (out / "manifest.json").exists():
        generate_platform("small", seed=0, out=out)
    return load_source(out)


def fit(work: Path, datasets: list[str]) -> None:
    from serendip.models.registry import create_model

    for name in datasets:
        ds = _dataset(name, work)
        for model_name in MODELS[name]:
            target = work / name / model_name
            if (target / "manifest.json").exists():
                continue
            print(f"fit {name}/{model_name}", flush=True)
            create_model(model_name).fit(ds).save(target)


def _num(x: float) -> float | str:
    return float(x) if math.isfinite(float(x)) else str(float(x))


def _users(model: Any) -> list[str]:
    n = len(model.users_)
    picks = sorted({int(j * (n - 1) / (N_USERS - 1)) for j in range(N_USERS)})
    return [str(model.users_.id(u)) for u in picks] + ["never-seen-user"]


def _model_outputs(model: Any) -> dict[str, Any]:
    users = _users(model)
    recs = model.recommend(users, 20)
    out: dict[str, Any] = {"recommend": {}, "score": {}, "explain": {}}
    for row, user in enumerate(users):
        items = recs.item_ids(row)
        out["recommend"][user] = [
            [i, _num(s)] for i, s in zip(items, recs.scores[row][: len(items)], strict=True)
        ]
    for user in users[:8]:
        items = out["recommend"][user]
        probe = [i for i, _ in items[:5]] + [str(model.items_.id(0))]
        out["score"][user] = [_num(s) for s in model.score(user, probe)]
        if items:
            try:
                out["explain"][user] = model.explain(user, items[0][0]).to_dict()
            except Exception as exc:  # a model without explanations
                out["explain"][user] = f"{type(exc).__name__}: {exc}"
    return out


def _served(rt: Any, users: list[str], **kw: Any) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for user in users:
        try:
            got[user] = [
                {"item": r.item, "score": _num(r.score), "explanation": r.explanation}
                for r in rt.recommend(user, 20, explain=True, **kw)
            ]
        except Exception as exc:  # recorded: a request that fails is an output too
            got[user] = f"{type(exc).__name__}: {exc}"
    return got


def _runtime_outputs(directory: Path, model: Any) -> dict[str, Any]:
    from serendip.service.runtime import ModelRuntime

    rt = ModelRuntime(build_in_background=False, freeze_gc=False)
    rt.load(directory, "1")
    snap = rt.snapshot
    if snap is not None and snap.lists is not None and snap.lists.state == "absent":
        if hasattr(rt, "build_lists"):  # the fast path, as a server would
            rt.build_lists(snap.serving, directory, snap.lists)
        else:  # before the serving layer
            rt._build_lists(model, directory, snap.lists)
        for thread, _ in __import__("serendip.service.runtime", fromlist=["_BUILDS"])._BUILDS:
            thread.join()
    users = _users(model)[::4]
    out: dict[str, Any] = {"initial": _served(rt, users)}
    cats = sorted({str(c) for c in model.item_category_ if str(c)})[:2]
    out["filtered"] = _served(rt, users[:6], categories=cats or None)
    top = out["initial"][users[0]]
    out["excluded"] = _served(rt, users[:4], exclude=[r["item"] for r in top[:3]])
    # live state: events for some users, a follow, new items, a deletion
    t = 2.0e9
    events = []
    for j, user in enumerate(users[:6]):
        for n in range(3):
            item = str(model.items_.id((97 * j + 31 * n) % len(model.items_)))
            events.append({"user": user, "item": item, "event": "like", "timestamp": t + n})
    events.append({"user": "brand-new-user", "item": str(model.items_.id(1)), "timestamp": t})
    rt.on_events(events)
    authors = [str(a) for a in model.item_author_ if str(a)]
    if len(users) > 2:
        rt.on_follow(users[1], users[2])
    fresh = [
        {
            "item": f"fresh-{n}",
            "category": cats[0] if cats else "",
            "author": authors[n] if n < len(authors) else "",
            "created_at": t - 10 + n,
        }
        for n in range(3)
    ]
    rt.on_items(fresh)
    rt.on_items_deleted([top[0]["item"]] if top else [])
    out["live"] = _served(rt, [*users, "brand-new-user"])
    out["context_item"] = _served(rt, users[:4], context_item=str(model.items_.id(5)))
    out["similar"] = {
        str(model.items_.id(j)): [[r.item, _num(r.score)] for r in rt.similar(str(model.items_.id(j)), 10)]
        for j in (2, 3)
        if _has_similar(model, j)
    }
    out["trending"] = [[r.item, _num(r.score)] for r in rt.trending(10)]
    return out


def _has_similar(model: Any, j: int) -> bool:
    try:
        model.similar_items(str(model.items_.id(j)), 1)
    except Exception:
        return False
    return True


def dump(work: Path, out: Path, datasets: list[str], refit: bool) -> None:
    from serendip.models.base import Recommender

    result: dict[str, Any] = {}
    scratch = Path(tempfile.mkdtemp(prefix="serendip-refit-")) if refit else None
    try:
        if scratch is not None:
            (scratch / "data-small").symlink_to(work / "data-small")
            fit(scratch, datasets)
        root = scratch or work
        for name in datasets:
            for model_name in MODELS[name]:
                directory = root / name / model_name
                print(f"dump {name}/{model_name}", flush=True)
                # a copy: the runtime writes precomputed lists into the artifact
                copy = Path(tempfile.mkdtemp(prefix="serendip-art-")) / model_name
                shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("serving-lists"))
                model = Recommender.load(copy)
                entry = _model_outputs(model)
                entry["runtime"] = _runtime_outputs(copy, Recommender.load(copy))
                result[f"{name}/{model_name}"] = entry
                shutil.rmtree(copy.parent, ignore_errors=True)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True))
    print(f"wrote {out}")


def _walk(a: Any, b: Any, path: str, diffs: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                diffs.append(f"{path}/{key}: only in {'B' if key not in a else 'A'}")
            else:
                _walk(a[key], b[key], f"{path}/{key}", diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{path}: length {len(a)} != {len(b)}")
        for j, (x, y) in enumerate(zip(a, b, strict=False)):
            _walk(x, y, f"{path}[{j}]", diffs)
    elif a != b:
        diffs.append(f"{path}: {a!r} != {b!r}")


def diff(a_path: Path, b_path: Path) -> int:
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    total = 0
    for key in sorted(set(a) | set(b)):
        diffs: list[str] = []
        _walk(a.get(key), b.get(key), key, diffs)
        n_lists = sum(len(v) for v in (a.get(key) or {}).get("recommend", {}).values())
        print(f"{key}: {'identical' if not diffs else f'{len(diffs)} differences'} ({n_lists} items)")
        for line in diffs[:5]:
            print(f"  {line if len(line) < 240 else line[:240] + ' ...'}")
        total += len(diffs)
    return 1 if total else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["fit", "dump", "diff"])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/serendip-compare"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--dataset", action="append", choices=sorted(MODELS))
    ap.add_argument("--refit", action="store_true")
    args = ap.parse_args()
    datasets = args.dataset or sorted(MODELS)
    if args.command == "fit":
        fit(args.work, datasets)
        return 0
    if args.command == "dump":
        if args.out is None:
            ap.error("dump needs --out")
        dump(args.work, args.out, datasets, args.refit)
        return 0
    if len(args.files) != 2:
        ap.error("diff needs two files")
    return diff(args.files[0], args.files[1])


if __name__ == "__main__":
    sys.exit(main())
