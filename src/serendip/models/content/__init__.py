"""Content-based models: items as vectors of their metadata, users as profiles of their items.

TF-IDF (`tfidf`), Word2Vec trained on the catalogue (`word2vec`), sentence embeddings
(`sbert`, offline all-MiniLM-L6-v2) and extracted features (`content-features`). All share one
profile-and-cosine machinery (`ContentRecommender`), recommend items nobody has interacted with
yet, and fall back to declared interests, context items or popularity for users without history.

The interaction weighting and text helpers are public too: the social models and the pipeline's
sources build on them.
"""

from serendip.models.content._base import ContentRecommender, ItemVectors
from serendip.models.content._features import FeatureConfig, FeatureContent
from serendip.models.content._sbert import (
    SentenceConfig,
    SentenceContent,
    bundled_model_path,
    static_model_dir,
)
from serendip.models.content._text import interest_matrix, item_tokens, tag_token, tokenize
from serendip.models.content._tfidf import TfidfConfig, TfidfContent
from serendip.models.content._weights import (
    WeightingConfig,
    empty_csr,
    events_matrix,
    l2_rows,
    weighting_matrix_config,
)
from serendip.models.content._word2vec import Word2VecConfig, Word2VecContent

__all__ = [
    "ContentRecommender",
    "FeatureConfig",
    "FeatureContent",
    "ItemVectors",
    "SentenceConfig",
    "SentenceContent",
    "TfidfConfig",
    "TfidfContent",
    "WeightingConfig",
    "Word2VecConfig",
    "Word2VecContent",
    "bundled_model_path",
    "empty_csr",
    "events_matrix",
    "interest_matrix",
    "item_tokens",
    "l2_rows",
    "static_model_dir",
    "tag_token",
    "tokenize",
    "weighting_matrix_config",
]
