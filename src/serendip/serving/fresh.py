"""The live catalog step: items upserted after the model's fit, which the model does not
know, reach the users they are most likely for -- followers of their author, readers of their
category, users who declared it an interest -- in at most a few of the last slots of a list,
newest first, before any retrain."""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from serendip.models.base import Evidence, Explanation, ModelConfig, Recommender
from serendip.serving.contract import LiveEvent, RecItem, ServingModel
from serendip.serving.state import ItemInfo, OnlineState

__all__ = ["FreshIndex", "FreshPick", "fresh_picks", "with_fresh"]

#: How many of a user's most recent history items define their "most read" category for the
#: live catalog step (a taste that moved on should not keep pulling the old category).
RECENT_HISTORY = 50


@dataclass(frozen=True, slots=True, eq=False)
class FreshIndex:
    """The live items a snapshot's model does not know (upserted after its fit, not deleted),
    indexed by author and by category, newest first (unknown creation time last), stamped with
    the catalog version it was read at. Requests share it read-only. It is updated once per
    catalog change and incrementally: only the items changed since the previous index (the
    live state's change log) are looked up in the model's vocabulary and moved between groups,
    so the cost follows the change, not the size of the live catalog (a bulk import before the
    fit leaves many known items in the live state)."""

    version: int
    #: the change log's epoch and the position this index has read up to
    epoch: int
    log_pos: int
    info: dict[str, ItemInfo]
    by_author: dict[str, tuple[str, ...]]
    by_category: dict[str, tuple[str, ...]]

    @classmethod
    def build(
        cls,
        version: int,
        model: Recommender[ModelConfig],
        state: OnlineState,
        previous: FreshIndex | None,
    ) -> FreshIndex:
        """The index at `version` (read before calling): `previous` plus the changes logged
        since it (from scratch without one, or after the log was compacted)."""
        if previous is None:
            epoch, pos, changed, reset = state.catalog_changes(-1, 0)
        else:
            epoch, pos, changed, reset = state.catalog_changes(previous.epoch, previous.log_pos)
        if reset or previous is None:
            info: dict[str, ItemInfo] = {}
            by_author: dict[str, tuple[str, ...]] = {}
            by_category: dict[str, tuple[str, ...]] = {}
        else:  # copy on write: requests in flight keep reading `previous`
            info = dict(previous.info)
            by_author, by_category = dict(previous.by_author), dict(previous.by_category)
        ids = list(dict.fromkeys(changed))
        if ids:
            unknown = model.items_.indices(ids) < 0
            ids = [i for i, new in zip(ids, unknown.tolist(), strict=True) if new]
        current = state.item_infos(ids)  # deleted items are gone from the live catalog
        # per group: the changed items that leave it and those that (re-)enter it
        moves: dict[tuple[int, str], tuple[set[str], list[str]]] = {}
        for i in ids:
            old, new = info.pop(i, None), current.get(i)
            for entry, leaving in ((old, True), (new, False)):
                if entry is None:
                    continue
                for which, key in ((0, entry.author), (1, entry.category)):
                    if key:
                        out, into = moves.setdefault((which, key), (set(), []))
                        if leaving:
                            out.add(i)
                        else:
                            into.append(i)
            if new is not None:
                info[i] = new

        def newest(x: str) -> tuple[bool, float, str]:
            return _newest_key(x, info[x])

        for (which, key), (out, into) in moves.items():
            groups = by_category if which else by_author
            members = [x for x in groups.get(key, ()) if x not in out]
            if len(into) > 16:  # many arrivals (a first build, a bulk upsert): one sort
                members.extend(into)
                members.sort(key=newest)
            else:  # a few arrivals into a sorted group: binary insertion
                for x in into:
                    bisect.insort(members, x, key=newest)
            if members:
                groups[key] = tuple(members)
            else:
                groups.pop(key, None)
        return cls(version, epoch, pos, info, by_author, by_category)


def _newest_key(item: str, info: ItemInfo) -> tuple[bool, float, str]:
    """Sort key: newest first, unknown creation time last, then by ID."""
    unknown = math.isnan(info.created_at)
    return unknown, 0.0 if unknown else -info.created_at, item


def _top_category(
    serving: ServingModel, user: str, events: Sequence[LiveEvent], index: FreshIndex
) -> tuple[str, float] | None:
    """The most frequent category among the user's recent history items (the fitted history,
    `ServingModel.recent_items`, plus the most recent live events) and its share of them; None
    without a categorised history."""
    model = serving.model
    hist = serving.recent_items(user)
    # a few dozen strings: a Counter beats numpy/pandas round trips at this size
    counts = Counter(str(c) for c in model.item_category_[np.asarray(hist, np.int64)].tolist())
    for item, _, _ in events[-RECENT_HISTORY:]:
        j = model.items_.get(item)
        info = index.info.get(item)
        counts[str(model.item_category_[j]) if j >= 0 else (info.category if info else "")] += 1
    counts.pop("", None)  # missing categories are "" (see `Dataset`)
    if not counts:
        return None
    best = min(counts, key=lambda c: (-counts[c], c))  # ties: the first by name
    return best, counts[best] / sum(counts.values())


@dataclass(frozen=True, slots=True)
class FreshPick:
    """A live item picked for a user, and why: route "author" (evidence: the followed author),
    "category" (the user's most read category, weight: its share) or "interest"."""

    item: str
    route: str
    key: str
    weight: float


def _explanation(
    serving: ServingModel, user: str, pick: FreshPick, score: float
) -> dict[str, object]:
    """Why a live item the model does not know is shown, structured like the pipeline's
    explanations (a source head, then the evidence)."""
    key, weight = pick.key, pick.weight
    if pick.route == "author":
        head = Evidence("source", "fresh-followed", 1.0, "new item")
        if serving.is_private(key):  # the pipeline never names a private author either
            evidence: tuple[Evidence, ...] = (head,)
            text = "New from someone you follow"
        else:
            evidence = (head, Evidence("author", key, 1.0))
            text = f"New from {key}, whom you follow"
    elif pick.route == "category":
        head = Evidence("source", "content", weight, "new item")
        evidence = (head, Evidence("category", key, weight, "share of your recent history"))
        text = f"New in {key}, which you often read"
    else:
        head = Evidence("source", "content", weight, "new item")
        evidence = (head, Evidence("interest", key, weight))
        text = f"New in {key}, one of your interests"
    return Explanation(user, pick.item, serving.model.name, score, evidence, text).to_dict()


def fresh_picks(
    serving: ServingModel,
    index: FreshIndex,
    state: OnlineState,
    user: str,
    limit: int,
    served: Sequence[RecItem],
    categories: Iterable[str] | None,
    authors: Iterable[str] | None,
    exclude: Sequence[str],
) -> list[FreshPick]:
    """Up to `limit` live items for `user`: by an author they follow (fitted follows plus
    live ones), then in their most read category or a declared interest; newest first, none
    the user has seen, was served already, excluded or created after now."""
    events = state.history(user)
    blocked = set(exclude) | {e[0] for e in events} | {r.item for r in served}
    wanted_cat = None if categories is None else {str(c) for c in categories}
    wanted_auth = None if authors is None else {str(a) for a in authors}
    now = time.time()

    def eligible(item: str) -> bool:
        info = index.info[item]
        return (
            item not in blocked
            and not info.created_at > now  # NaN (unknown) passes
            and (wanted_cat is None or info.category in wanted_cat)
            and (wanted_auth is None or info.author in wanted_auth)
        )

    def newest(routed: list[FreshPick]) -> list[FreshPick]:
        return sorted(routed, key=lambda p: _newest_key(p.item, index.info[p.item]))

    by_author: list[FreshPick] = []
    if index.by_author:
        live, dropped = state.followees(user)
        followed = (set(serving.followees(user)) | live) - dropped
        for author in sorted(followed & index.by_author.keys()):
            # each group is newest first: its first `limit` eligible items are the
            # only ones that can be picked, so a large group costs no more
            items = list(itertools.islice(filter(eligible, index.by_author[author]), limit))
            by_author += [FreshPick(i, "author", author, 1.0) for i in items]
    by_content: list[FreshPick] = []
    if index.by_category:
        routes: dict[str, tuple[str, float]] = {}
        top = _top_category(serving, user, events, index)
        if top is not None:
            routes[top[0]] = ("category", top[1])
        for interest in serving.interests(user):
            routes.setdefault(interest, ("interest", 1.0))
        for cat, (route, weight) in routes.items():
            items = list(itertools.islice(filter(eligible, index.by_category.get(cat, ())), limit))
            by_content += [FreshPick(i, route, cat, weight) for i in items]
    picks: list[FreshPick] = []
    seen: set[str] = set()
    for pick in newest(by_author) + newest(by_content):
        if pick.item not in seen and len(picks) < limit:
            seen.add(pick.item)
            picks.append(pick)
    return picks


def with_fresh(
    serving: ServingModel,
    index: FreshIndex,
    state: OnlineState,
    user: str,
    k: int,
    served: list[RecItem],
    *,
    slots: int,
    explain: bool,
    categories: Iterable[str] | None,
    authors: Iterable[str] | None,
    exclude: Sequence[str],
) -> list[RecItem]:
    """The list with live items merged in: they take at most `slots` of the last slots, newest
    first (author route first), scored just below the last item kept; the list keeps length k.
    Costs a dict lookup when there are no live items."""
    if slots == 0 or not index.info:
        return served
    limit = min(slots, k)
    picks = fresh_picks(serving, index, state, user, limit, served, categories, authors, exclude)
    if not picks:
        return served
    keep = served[: k - len(picks)]
    last = keep[-1].score if keep else 1.0
    last = last if math.isfinite(last) else 0.0
    step = 1e-6 * max(1.0, abs(last))  # below the kept items, in pick order
    for n, pick in enumerate(picks, start=1):
        score = last - n * step
        expl = _explanation(serving, user, pick, score) if explain else None
        keep.append(RecItem(pick.item, score, expl))
    return keep
