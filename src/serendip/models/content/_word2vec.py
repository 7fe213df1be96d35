"""Word2Vec content model: word vectors trained on the catalogue's own documents (gensim)."""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Choice, FloatRange, IntRange, ModelConfig, SearchSpace
from serendip.models.content._base import ContentRecommender, ItemVectors
from serendip.models.content._text import item_tokens
from serendip.models.content._weights import WeightingConfig, empty_csr

__all__ = ["Word2VecConfig", "Word2VecContent"]


class Word2VecConfig(WeightingConfig):
    """Word2Vec hyperparameters (defaults tuned on MovieLens 100K, validation split).

    vector_size: embedding dimension; window: context size in tokens; min_df: a token must
    appear in at least this share of the items (or, when >= 1, this many items), rarer ones get
    poor vectors and are dropped; epochs: passes over the catalogue; sg: 1 = skip-gram, 0 = CBOW; negative: negative
    samples per positive.
    """

    vector_size: int = Field(default=64, ge=2, le=1024)
    window: int = Field(default=5, ge=1)
    min_df: float = Field(default=0.01, gt=0)
    epochs: int = Field(default=20, ge=1)
    sg: int = Field(default=0, ge=0, le=1)
    negative: int = Field(default=5, ge=1)


def _stable_hash(s: str) -> int:
    # Python's hash() of strings is salted per process; gensim seeds some vectors with it.
    return zlib.crc32(s.encode("utf-8"))


class Word2VecContent(ContentRecommender[Word2VecConfig]):
    """Items as the mean of the Word2Vec vectors of their tokens (title and text words, whole
    tags, category), centred on the catalogue mean; the vectors are trained on the catalogue itself, seeded, single-threaded
    for determinism. Users: weighted sum of their items' vectors; score = cosine."""

    name = "word2vec"
    description = "Word2Vec trained on the catalog text (gensim)."
    Config: ClassVar[type[ModelConfig]] = Word2VecConfig
    search_space: ClassVar[SearchSpace] = {
        "vector_size": IntRange(16, 128, log=True),
        "window": IntRange(2, 10),
        "min_df": FloatRange(0.0005, 0.05, log=True),
        "epochs": IntRange(5, 50, log=True),
        "sg": Choice((0, 1)),
        "value_transform": Choice(("none", "log1p")),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {"vector_size": 16, "epochs": 5}

    def _item_vectors(self, dataset: Dataset) -> ItemVectors:
        from gensim.models import Word2Vec

        cfg = self.config
        assert isinstance(cfg, Word2VecConfig)
        meta = dataset.item_meta
        n = len(meta)
        docs = [item_tokens(meta, i) for i in range(n)]
        df = Counter(t for d in docs for t in set(d))
        least = int(cfg.min_df) if cfg.min_df >= 1 else math.ceil(cfg.min_df * n)
        docs = [[t for t in d if df[t] >= least] for d in docs]
        dim = cfg.vector_size
        vectors = np.zeros((n, dim), np.float32)
        terms = empty_csr(n, 0)
        names = np.zeros(0, dtype=str)
        if not any(docs):
            return ItemVectors(vectors, terms, names)
        model = Word2Vec(
            sentences=[d for d in docs if d],
            vector_size=dim,
            window=cfg.window,
            min_count=1,
            sg=cfg.sg,
            negative=cfg.negative,
            epochs=cfg.epochs,
            seed=cfg.seed,
            workers=1,
            hashfxn=_stable_hash,
        )
        kv = model.wv
        vocab: dict[str, int] = kv.key_to_index
        if not vocab:
            return ItemVectors(vectors, terms, names)
        rows: list[int] = []
        cols: list[int] = []
        for i, doc in enumerate(docs):
            idx = [vocab[t] for t in doc if t in vocab]
            if idx:
                vectors[i] = kv.vectors[idx].mean(axis=0)
                uniq = sorted(set(idx))
                rows += [i] * len(uniq)
                cols += uniq
            if self.progress is not None and (i + 1) % 10_000 == 0:
                self.progress(i + 1, n)
        has = np.flatnonzero(np.any(vectors != 0, axis=1))
        if len(has) > 1:
            # Word2Vec vectors share a common direction (stronger the less training data), which
            # makes every mean vector look alike; removing the catalogue mean leaves what
            # distinguishes items (Mu & Viswanath's "all-but-the-top", first step).
            vectors[has] -= vectors[has].mean(axis=0)
        terms = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(vocab)))
        names = np.asarray(kv.index_to_key, dtype=str)
        return ItemVectors(vectors, terms, names)
