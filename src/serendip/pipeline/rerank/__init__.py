"""Stage three: rules and re-ranking of one user's ranked candidates.

`allowed_candidates` applies the filters no ranking may break (seen, blocked, removed, not yet
published, the user's own items); `rerank` then builds the final list greedily from composed
steps (`steps`), one small class per mechanism, chosen and ordered by `RerankParams`: maximal
marginal relevance (Carbonell & Goldstein, 1998) over content similarity, a per-author cap, an
in-network / out-of-network share target and a long-tail quota, on a relevance that calibrated
terms may shift (an out-of-network boost, popularity and exposure penalties). Everything is per
user over at most `pool` candidates (dense m x m similarity, m ~ 100), so one user costs well
under a millisecond. The one state across users is the `ExposureCounter`: how often each item
was already shown in a batch (or by a serving process), so that later lists spread over the
catalog.
"""

from serendip.pipeline.rerank.catalog import (
    CatalogRules,
    ExposureCounter,
    allowed_candidates,
    diversity_vectors,
)
from serendip.pipeline.rerank.compose import Reranker, rerank
from serendip.pipeline.rerank.steps import (
    AuthorCap,
    ExposurePenalty,
    LongTailQuota,
    MaximalMarginalRelevance,
    OutOfNetworkBoost,
    OutOfNetworkTarget,
    Pool,
    PopularityPenalty,
    Slate,
    TopRelevance,
)

__all__ = [
    "AuthorCap",
    "CatalogRules",
    "ExposureCounter",
    "ExposurePenalty",
    "LongTailQuota",
    "MaximalMarginalRelevance",
    "OutOfNetworkBoost",
    "OutOfNetworkTarget",
    "Pool",
    "PopularityPenalty",
    "Reranker",
    "Slate",
    "TopRelevance",
    "allowed_candidates",
    "diversity_vectors",
    "rerank",
]
