"""TF-IDF content model: one weighted TF-IDF block per field (title, text, tags)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from sklearn.feature_extraction.text import TfidfVectorizer

from serendip.data.dataset import Dataset
from serendip.models.base import Choice, FloatRange, IntRange, ModelConfig, SearchSpace
from serendip.models.content._base import ContentRecommender, ItemVectors
from serendip.models.content._text import tag_token
from serendip.models.content._weights import WeightingConfig, empty_csr, l2_rows

__all__ = ["TfidfConfig", "TfidfContent"]


class TfidfConfig(WeightingConfig):
    """TF-IDF hyperparameters (defaults tuned on MovieLens 100K, validation split).

    title_weight / text_weight / tag_weight: how much each field's (L2-normalised) TF-IDF block
    counts in the item vector; tags also carry the item's category. min_df: a word must appear
    in at least this share of the items (or, when >= 1, this many items): rare title words are
    noise for a profile (tags are never pruned); max_df: in at most this share of them. ngram_max: 1 = words,
    2 = words and word pairs (title and text). sublinear_tf: 1 + log(tf) instead of tf.
    """

    title_weight: float = Field(default=2.0, ge=0)
    text_weight: float = Field(default=1.0, ge=0)
    tag_weight: float = Field(default=1.0, ge=0)
    min_df: float = Field(default=0.01, gt=0)
    max_df: float = Field(default=1.0, gt=0, le=1)
    max_features: int | None = Field(default=None, ge=1)
    ngram_max: int = Field(default=1, ge=1, le=3)
    sublinear_tf: bool = True
    stop_words: bool = True


def _tags_of(tags: tuple[str, ...], category: str) -> list[str]:
    out = [tag_token(str(t)) for t in tags if str(t).strip()]
    if category:
        out.append(tag_token(category))
    return out


class TfidfContent(ContentRecommender[TfidfConfig]):
    """Items as TF-IDF vectors of their title, text and tags (+ category); users as the
    weighted, normalised sum of their items' vectors; score = cosine. Sparse throughout.

    >>> model = TfidfContent().fit(dataset)  # doctest: +SKIP
    >>> model.recommend(["u1"], k=10)  # doctest: +SKIP
    """

    name = "tfidf"
    description = "TF-IDF over title, text and tags; user profile from history."
    Config: ClassVar[type[ModelConfig]] = TfidfConfig
    search_space: ClassVar[SearchSpace] = {
        "title_weight": FloatRange(0.0, 2.0),
        "text_weight": FloatRange(0.0, 2.0),
        "tag_weight": FloatRange(0.0, 2.0),
        "min_df": FloatRange(0.0005, 0.05, log=True),
        "ngram_max": IntRange(1, 2),
        "sublinear_tf": Choice((True, False)),
        "half_life_days": Choice((None, 30.0, 180.0, 720.0)),
        "value_transform": Choice(("none", "log1p")),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {}

    def _item_vectors(self, dataset: Dataset) -> ItemVectors:
        cfg = self.config
        assert isinstance(cfg, TfidfConfig)
        meta = dataset.item_meta
        n = len(meta)
        words = {
            "token_pattern": r"(?u)\b\w\w+\b",
            "stop_words": "english" if cfg.stop_words else None,
            "ngram_range": (1, cfg.ngram_max),
        }
        fields: list[tuple[str, float, list[Any], dict[str, Any]]] = [
            ("", cfg.title_weight, [str(t) for t in meta.title], words),
            ("", cfg.text_weight, [str(t) for t in meta.text], words),
            (
                "#",
                cfg.tag_weight,
                [_tags_of(meta.tags[i], str(meta.category[i])) for i in range(n)],
                {"analyzer": lambda tokens: tokens},
            ),
        ]
        blocks: list[sp.csr_matrix] = []
        names: list[str] = []
        for prefix, weight, docs, opts in fields:
            if weight <= 0:
                continue
            # Tags are a curated vocabulary: a rare tag still says something, so min_df only
            # prunes title and text words.
            min_df: float | int = 1 if prefix == "#" else cfg.min_df
            if min_df >= 1:
                min_df = min(int(min_df), max(n, 1))
            vec = TfidfVectorizer(
                min_df=min_df,
                max_df=cfg.max_df,
                max_features=cfg.max_features,
                sublinear_tf=cfg.sublinear_tf,
                dtype=np.float32,
                **opts,
            )
            try:
                m = vec.fit_transform(docs)
            except ValueError:  # the field is empty in this catalogue (or pruned away)
                continue
            blocks.append(l2_rows(m) * np.float32(weight))
            names += [f"{prefix}{t}" for t in vec.get_feature_names_out()]
        if not blocks:
            empty = empty_csr(n, 0)
            return ItemVectors(empty, empty, np.zeros(0, dtype=str))
        vectors = sp.csr_matrix(sp.hstack(blocks, format="csr"), dtype=np.float32)
        return ItemVectors(vectors, vectors, np.asarray(names, dtype=str))
