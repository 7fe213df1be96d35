"""Feature content model: category, author, tags, text length and item age as sparse features."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset, ItemTable
from serendip.models.base import FloatRange, IntRange, ModelConfig, SearchSpace
from serendip.models.content._base import ContentRecommender, ItemVectors
from serendip.models.content._text import tokenize
from serendip.models.content._weights import WeightingConfig, l2_rows

__all__ = ["FeatureConfig", "FeatureContent"]

_DAY = 86_400.0


class FeatureConfig(WeightingConfig):
    """Feature hyperparameters (defaults tuned on MovieLens 100K, validation split).

    *_weight: the share of each block in the item vector (each block is L2-normalised first):
    category and author one-hot, tags multi-hot, and two standardised numbers, log text length
    (words of title and text) and log item age in days at the newest training interaction.
    min_count: authors and tags on fewer items are dropped (they cannot relate two items).
    """

    category_weight: float = Field(default=4.0, ge=0)
    author_weight: float = Field(default=0.5, ge=0)
    tag_weight: float = Field(default=1.0, ge=0)
    length_weight: float = Field(default=0.0, ge=0)
    age_weight: float = Field(default=0.0, ge=0)
    min_count: int = Field(default=2, ge=1)


def _onehot(
    values: list[list[str]], prefix: str, min_count: int
) -> tuple[sp.csr_matrix, list[str]]:
    counts = Counter(v for vs in values for v in set(vs) if v)
    keep = sorted(v for v, c in counts.items() if c >= min_count)
    col = {v: j for j, v in enumerate(keep)}
    rows: list[int] = []
    cols: list[int] = []
    for i, vs in enumerate(values):
        js = sorted({col[v] for v in vs if v in col})
        rows += [i] * len(js)
        cols += js
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(values), len(keep))
    )
    return m, [f"{prefix}={v}" for v in keep]


def _standardised(x: np.ndarray) -> np.ndarray:
    """z-scores of the finite entries; missing (NaN) entries and constant columns become 0."""
    out = np.zeros(len(x), np.float32)
    ok = np.isfinite(x)
    if ok.sum() > 1 and float(np.std(x[ok])) > 0:
        out[ok] = (x[ok] - x[ok].mean()) / x[ok].std()
    return out


def item_numbers(meta: ItemTable, reference_time: float) -> tuple[np.ndarray, np.ndarray]:
    """(log1p word count of title + text, log1p age in days at `reference_time`; NaN unknown)."""
    length = np.array(
        [np.log1p(len(tokenize(f"{meta.title[i]} {meta.text[i]}"))) for i in range(len(meta))]
    )
    age = np.log1p(np.clip((reference_time - meta.created_at) / _DAY, 0.0, None))
    return length, age


class FeatureContent(ContentRecommender[FeatureConfig]):
    """Items as weighted blocks of extracted features (sparse; numbers standardised); users as
    the weighted sum of their items' feature vectors; score = cosine. Explanations name the
    shared features ("category=news", "tag=python", "author=u17")."""

    name = "content-features"
    description = "Category, author, tags, length and age features."
    Config: ClassVar[type[ModelConfig]] = FeatureConfig
    search_space: ClassVar[SearchSpace] = {
        "category_weight": FloatRange(0.0, 5.0),
        "author_weight": FloatRange(0.0, 2.0),
        "tag_weight": FloatRange(0.0, 2.0),
        "length_weight": FloatRange(0.0, 1.0),
        "age_weight": FloatRange(0.0, 1.0),
        "min_count": IntRange(1, 5),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {}

    def _item_vectors(self, dataset: Dataset) -> ItemVectors:
        cfg = self.config
        assert isinstance(cfg, FeatureConfig)
        meta = dataset.item_meta
        ts = dataset.interactions.timestamp
        created = meta.created_at
        ref = (
            float(np.nanmax(ts))
            if np.isfinite(ts).any()
            else float(np.nanmax(created))
            if np.isfinite(created).any()
            else 0.0
        )
        cat, cat_names = _onehot([[str(c)] for c in meta.category], "category", 1)
        auth, auth_names = _onehot([[str(a)] for a in meta.author], "author", cfg.min_count)
        tags, tag_names = _onehot(
            [[str(t).strip().lower() for t in ts_] for ts_ in meta.tags], "tag", cfg.min_count
        )
        length, age = item_numbers(meta, ref)
        numbers = sp.csr_matrix(np.column_stack([_standardised(length), _standardised(age)]))
        blocks = [
            l2_rows(cat) * cfg.category_weight,
            l2_rows(auth) * cfg.author_weight,
            l2_rows(tags) * cfg.tag_weight,
            sp.csr_matrix(numbers[:, [0]] * cfg.length_weight),
            sp.csr_matrix(numbers[:, [1]] * cfg.age_weight),
        ]
        names = [*cat_names, *auth_names, *tag_names, "text length", "item age"]
        vectors = sp.csr_matrix(sp.hstack(blocks, format="csr"), dtype=np.float32)
        # Explanations compare features present in both; negative z-scores say "short"/"old",
        # which a product of two negatives would misread, so only positive parts count there.
        terms = vectors.copy()
        terms.data = np.clip(terms.data, 0.0, None)
        terms.eliminate_zeros()
        return ItemVectors(vectors, terms, np.asarray(names, dtype=str))
