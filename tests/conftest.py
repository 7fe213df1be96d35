"""Shared fixtures: a small social platform built in memory, and the real datasets' location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """Path of a real dataset under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(
            f"real dataset {name} not found at {path} (../shared is absent in a fresh clone)"
        )
    return path


def make_toy_platform(
    seed: int = 0, n_users: int = 60, n_items: int = 120, n_topics: int = 4
) -> Dataset:
    """A small social platform with topical structure: users follow mostly within their topic,
    interact mostly with items of their topic, authors are users. Built in memory, in milliseconds."""
    rng = np.random.default_rng(seed)
    user_topic = rng.integers(0, n_topics, n_users)
    item_topic = rng.integers(0, n_topics, n_items)
    authors = rng.integers(0, n_users, n_items)
    t0 = 1_700_000_000.0
    words = [[f"w{t}_{j}" for j in range(12)] for t in range(n_topics)]
    items = pd.DataFrame(
        {
            "item": [f"i{j:03d}" for j in range(n_items)],
            "title": [f"title {' '.join(rng.choice(words[t], 2))}" for t in item_topic],
            "text": [" ".join(rng.choice(words[t], 8)) for t in item_topic],
            "tags": ["|".join(rng.choice(words[t][:5], 2, replace=False)) for t in item_topic],
            "category": [f"cat{t}" for t in item_topic],
            "author": [f"u{a:03d}" for a in authors],
            "created_at": t0 + rng.uniform(0, 20, n_items) * 86400,
        }
    )
    users = pd.DataFrame(
        {
            "user": [f"u{u:03d}" for u in range(n_users)],
            "created_at": t0 - 86400.0,
            "interests": [f"cat{t}" for t in user_topic],
        }
    )
    follows = set()
    for u in range(n_users):
        same = np.flatnonzero(user_topic == user_topic[u])
        for v in rng.choice(same, size=min(4, len(same)), replace=False):
            if v != u:
                follows.add((u, int(v)))
        v = int(rng.integers(0, n_users))
        if v != u:
            follows.add((u, v))
    social = pd.DataFrame(
        {
            "follower": [f"u{a:03d}" for a, _ in sorted(follows)],
            "followee": [f"u{b:03d}" for _, b in sorted(follows)],
        }
    )
    rows = []
    events = np.array(["view", "like", "share"])
    for u in range(n_users):
        n = int(rng.integers(5, 25))
        p = np.where(item_topic == user_topic[u], 8.0, 1.0)
        p /= p.sum()
        chosen = rng.choice(n_items, size=n, replace=False, p=p)
        for j in chosen:
            ts = items.created_at[j] + rng.uniform(0, 10) * 86400
            rows.append((f"u{u:03d}", f"i{j:03d}", ts, events[rng.choice(3, p=[0.6, 0.3, 0.1])]))
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp", "event"])
    return Dataset.from_frames(inter, items, users, social, name="toy")


@pytest.fixture(scope="session")
def toy_platform() -> Dataset:
    return make_toy_platform()
