"""Every model of the zoo by name, resolved lazily so listing models imports no torch.

Each entry names the module and class that implement it; a family's subpackage is imported only
when one of its models is asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from serendip.errors import ConfigError

__all__ = ["MODELS", "ModelEntry", "create_model", "get_model_class", "list_models"]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    family: str
    target: str  # "module:Class"
    description: str


_P = "serendip.models"

MODELS: dict[str, ModelEntry] = {
    e.name: e
    for e in [
        # baselines
        ModelEntry(
            "popularity",
            "baselines",
            f"{_P}.baselines:Popularity",
            "Most interacted items overall.",
        ),
        ModelEntry(
            "trending",
            "baselines",
            f"{_P}.baselines:Trending",
            "Most interacted items, exponentially time-decayed.",
        ),
        ModelEntry(
            "category-popularity",
            "baselines",
            f"{_P}.baselines:CategoryPopularity",
            "Popular items within the categories the user engages with.",
        ),
        ModelEntry(
            "random",
            "baselines",
            f"{_P}.baselines:RandomRecommender",
            "Uniformly random unseen items (a floor).",
        ),
        # neighbourhood
        ModelEntry(
            "item-knn",
            "neighborhood",
            f"{_P}.neighborhood:ItemKNN",
            "Item-based kNN: sparse top-k item similarities (cosine/asymmetric/Jaccard, BM25/TF-IDF, shrinkage).",
        ),
        ModelEntry(
            "user-knn",
            "neighborhood",
            f"{_P}.neighborhood:UserKNN",
            "User-based kNN over sparse user similarities.",
        ),
        ModelEntry(
            "rp3beta",
            "neighborhood",
            f"{_P}.neighborhood:RP3beta",
            "Three-step random walk user-item-user-item with popularity penalty.",
        ),
        # factorization
        ModelEntry(
            "puresvd",
            "factorization",
            f"{_P}.factorization:PureSVD",
            "Truncated SVD of the interaction matrix.",
        ),
        ModelEntry(
            "nmf",
            "factorization",
            f"{_P}.factorization:NMF",
            "Non-negative matrix factorization (scikit-learn).",
        ),
        ModelEntry(
            "ials",
            "factorization",
            f"{_P}.factorization:IALS",
            "Implicit ALS with confidence weighting (implicit).",
        ),
        ModelEntry(
            "bpr",
            "factorization",
            f"{_P}.factorization:BPR",
            "Bayesian personalised ranking MF (numpy, seeded; sampled negatives, Adam).",
        ),
        ModelEntry(
            "lightfm",
            "factorization",
            f"{_P}.factorization:HybridMF",
            "Hybrid factorization: users/items as sums of feature embeddings (LightFM-style, cold start).",
        ),
        # linear
        ModelEntry(
            "ease",
            "linear",
            f"{_P}.linear:EASE",
            "Embarrassingly shallow autoencoder (closed form; dense item x item, capped).",
        ),
        ModelEntry(
            "user-ease",
            "linear",
            f"{_P}.linear:UserEASE",
            "User-side EASE: closed-form user x user autoencoder (dense, capped users).",
        ),
        # content
        ModelEntry(
            "tfidf",
            "content",
            f"{_P}.content:TfidfContent",
            "TF-IDF over title, text and tags; user profile from history.",
        ),
        ModelEntry(
            "word2vec",
            "content",
            f"{_P}.content:Word2VecContent",
            "Word2Vec trained on the catalog text (gensim).",
        ),
        ModelEntry(
            "sbert",
            "content",
            f"{_P}.content:SentenceContent",
            "Sentence embeddings (all-MiniLM-L6-v2, offline).",
        ),
        ModelEntry(
            "content-features",
            "content",
            f"{_P}.content:FeatureContent",
            "Category, author, tags, length and age features.",
        ),
        # social
        ModelEntry(
            "in-network",
            "social",
            f"{_P}.social:InNetwork",
            "Items followees authored, liked or shared, weighted by tie strength.",
        ),
        ModelEntry(
            "social-ppr",
            "social",
            f"{_P}.social:SocialPPR",
            "Personalised PageRank over the user-item-user graph.",
        ),
        ModelEntry(
            "socialmf",
            "social",
            f"{_P}.social:SocialMF",
            "Socially regularised matrix factorization.",
        ),
        # deep
        ModelEntry(
            "neumf",
            "deep",
            f"{_P}.deep:NeuMF",
            "Neural collaborative filtering (GMF + MLP), torch.",
        ),
        ModelEntry(
            "multvae",
            "deep",
            f"{_P}.deep:MultVAE",
            "Variational autoencoder with multinomial likelihood, torch.",
        ),
        ModelEntry(
            "recvae",
            "deep",
            f"{_P}.deep:RecVAE",
            "Mult-VAE with composite prior and alternating updates (RecVAE), torch.",
        ),
        ModelEntry(
            "sasrec", "deep", f"{_P}.deep:SASRec", "Self-attentive sequential transformer, torch."
        ),
        # hybrids
        ModelEntry(
            "weighted-hybrid",
            "hybrid",
            f"{_P}.hybrid:WeightedHybrid",
            "Normalised score blend with weights tuned on validation.",
        ),
        ModelEntry(
            "switching-hybrid",
            "hybrid",
            f"{_P}.hybrid:SwitchingHybrid",
            "Cold users/items -> content/social/popular, warm -> collaborative.",
        ),
        ModelEntry(
            "mixed-hybrid",
            "hybrid",
            f"{_P}.hybrid:MixedHybrid",
            "Interleaved lists with per-source quotas.",
        ),
        # the production pipeline (sources -> ranker -> rerank -> explanations)
        ModelEntry(
            "pipeline",
            "pipeline",
            "serendip.pipeline.recommender:PipelineRecommender",
            "Two-stage pipeline: social, collaborative, content, trending and exploration sources, "
            "a LightGBM LambdaRank ranker, diversity re-ranking with rules, explanations.",
        ),
    ]
}


def list_models() -> list[ModelEntry]:
    return list(MODELS.values())


def get_model_class(name: str) -> Any:
    entry = MODELS.get(name)
    if entry is None:
        raise ConfigError(f"unknown model '{name}'; valid: {', '.join(MODELS)}")
    module_name, _, cls_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model '{name}' is not available in this installation ({exc})") from None


def create_model(name: str, params: dict[str, Any] | None = None) -> Any:
    """An unfitted model by registry name with validated parameters."""
    return get_model_class(name)(params or {})
