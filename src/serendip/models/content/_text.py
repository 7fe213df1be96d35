"""Text helpers shared by the content models: tokens, per-item token lists, interest matching."""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import ItemTable, UserTable
from serendip.models.content._weights import empty_csr

__all__ = ["interest_matrix", "item_tokens", "tag_token", "tokenize"]

# scikit-learn's default token pattern: words of two or more word characters.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of `text` (two or more word characters each)."""
    return _TOKEN.findall(text.lower())


def tag_token(tag: str) -> str:
    """A tag or category as one token: "Hip Hop" -> "hip_hop" (so it stays one unit)."""
    return "_".join(_TOKEN.findall(tag.lower())) or tag.strip().lower()


def item_tokens(meta: ItemTable, i: int) -> list[str]:
    """Tokens of item i: words of title and text, then whole-tag and category tokens."""
    out = tokenize(str(meta.title[i])) + tokenize(str(meta.text[i]))
    out += [tag_token(str(t)) for t in meta.tags[i] if str(t).strip()]
    cat = str(meta.category[i])
    if cat:
        out.append(tag_token(cat))
    return out


def interest_matrix(meta: ItemTable, users: UserTable, which: np.ndarray) -> sp.csr_matrix:
    """Items matching the declared interests of the users in `which` (bool mask over users).

    An interest matches an item when it equals the item's category or one of its tags (case
    and punctuation folded), or is a word of its title or text. Returns a float32 CSR
    n_users x n_items whose row u spreads weight 1 over u's matched items, in proportion to how
    many of u's interests each matches; rows outside `which` (or without a match) are empty.
    """
    n_users, n_items = len(users), len(meta)
    wanted: dict[str, list[int]] = {}
    for user in np.flatnonzero(which).tolist():
        for interest in users.interests[user]:
            key = tag_token(str(interest))
            if key:
                wanted.setdefault(key, []).append(user)
    if not wanted:
        return empty_csr(n_users, n_items)
    # Invert only the keys someone asked for: one pass over the catalogue.
    hits: dict[str, set[int]] = {k: set() for k in wanted}
    for i in range(n_items):
        keys = {tag_token(str(t)) for t in meta.tags[i]}
        keys.add(tag_token(str(meta.category[i])))
        keys.update(tokenize(f"{meta.title[i]} {meta.text[i]}"))
        for k in keys & hits.keys():
            hits[k].add(i)
    rows: list[int] = []
    cols: list[int] = []
    for key, us in wanted.items():
        items = sorted(hits[key])
        for u in us:
            rows.extend([u] * len(items))
            cols.extend(items)
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items), dtype=np.float32
    )
    m.sum_duplicates()
    totals = np.asarray(m.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ m, dtype=np.float32)
