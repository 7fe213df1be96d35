"""Simulated traffic for the operations tests: the toy platform's catalog, users and follow
graph in a store, and events or served lists drawn from a chosen item distribution over a time
window."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from serendip.data.dataset import Dataset
from serendip.store import EventIn, Store
from serendip.store.operations import ExposureIn

#: "Now" of the simulations: far after the toy platform's own events (which become history).
T = 1_800_000_000.0
HOUR = 3600.0
DAY = 86_400.0


def item_weights(ds: Dataset, *, shifted: bool = False, seed: int = 0) -> np.ndarray:
    """A popularity law over the toy catalog: a Zipf law over a random order of the items
    weighted towards categories cat0 and cat1; `shifted` sends the traffic to the other
    categories and the tail of that order instead."""
    rng = np.random.default_rng(seed)
    n = len(ds.items)
    order = rng.permutation(n)
    w = np.empty(n)
    w[order] = 1.0 / np.arange(1, n + 1) ** 0.8
    cats = np.asarray(ds.item_meta.category)
    head = np.isin(cats, ["cat0", "cat1"])
    w = w[::-1] * np.where(head, 0.1, 3.0) if shifted else w * np.where(head, 3.0, 1.0)
    return w / w.sum()


def add_events(
    store: Store,
    ds: Dataset,
    weights: np.ndarray,
    start: float,
    end: float,
    n: int,
    *,
    seed: int,
    prefix: str,
) -> None:
    """`n` events of random users on items drawn from `weights`, stamped in [start, end)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, len(ds.users), n)
    items = rng.choice(len(ds.items), size=n, p=weights)
    kinds = rng.choice(["view", "like", "share"], size=n, p=[0.7, 0.2, 0.1])
    ts = np.sort(rng.uniform(start, end, n))
    store.events.add_batch(
        [
            EventIn(
                f"{prefix}:{j}",
                str(ds.users.id(int(users[j]))),
                str(ds.items.id(int(items[j]))),
                str(kinds[j]),
                float(ts[j]),
            )
            for j in range(n)
        ]
    )


def platform_store(store: Store, ds: Dataset) -> Store:
    """`store` filled with the toy platform (its events are history before the windows)."""
    store.import_dataset(ds)
    return store


def serve_lists(
    store: Store,
    ds: Dataset,
    weights: np.ndarray,
    start: float,
    end: float,
    n: int,
    *,
    seed: int,
    k: int = 10,
    click_rate: float = 0.2,
    empty_rate: float = 0.0,
    users: np.ndarray | None = None,
) -> int:
    """`n` served lists of `k` items drawn from `weights` (a share `empty_rate` of them empty)
    to random users (or `users`), stamped in [start, end); a share `click_rate` of the lists gets
    a view of one of its items ten minutes later. Returns the lists clicked."""
    rng = np.random.default_rng(seed)
    pool = np.arange(len(ds.users)) if users is None else users
    exposures, events = [], []
    for j in range(n):
        u = str(ds.users.id(int(rng.choice(pool))))
        at = float(rng.uniform(start, end))
        empty = rng.random() < empty_rate
        items = (
            ()
            if empty
            else tuple(
                str(ds.items.id(int(i)))
                for i in rng.choice(len(ds.items), k, replace=False, p=weights)
            )
        )
        exposures.append(ExposureIn(f"r{seed}-{j}", u, "home", items, "v1", at=at))
        if items and rng.random() < click_rate:
            events.append(
                EventIn(
                    f"click{seed}-{j}", u, items[int(rng.integers(len(items)))], "view", at + 600.0
                )
            )
    store.exposures.add_many(exposures)
    store.events.add_batch(events)
    return len(events)


def build_tiny_store(directory: Path) -> Path:
    """A SQLite store file holding the generator's `tiny` platform (seed 1): 300 users, 1,000
    items, 15,000 timed events; copy it per test (`shutil.copyfile`)."""
    from serendip.data.loaders import load_platform
    from serendip.data.synthetic import generate_platform

    generate_platform("tiny", seed=1, out=directory / "platform")
    path = directory / "tiny.db"
    with Store.open(f"sqlite:///{path}") as store:
        store.import_dataset(load_platform(directory / "platform"))
    return path
