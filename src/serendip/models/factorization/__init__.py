"""Latent-factor models: PureSVD, NMF, implicit ALS, BPR and a LightFM-style hybrid.

All score a user and an item by the inner product of their factor vectors (plus an item bias),
fold unknown or updated users in from their history with the item side fixed, measure item
similarity as cosine in factor space, and save their factors as plain arrays.

Example (listen counts as confidence, then a user the model never saw)::

    model = IALS(factors=32, regularization=20.0, alpha=1.0, weighting="log1p").fit(train)
    model.recommend(["u1", "u2"], k=10).to_frame()
    model.recommend(["newcomer"], k=10, context={"newcomer": ["artist-7", "artist-9"]})
"""

from serendip.models.factorization._als import IALS
from serendip.models.factorization._base import FactorModel
from serendip.models.factorization._bpr import BPR
from serendip.models.factorization._hybrid import HybridMF
from serendip.models.factorization._svd import NMF, PureSVD

__all__ = ["BPR", "IALS", "NMF", "FactorModel", "HybridMF", "PureSVD"]
