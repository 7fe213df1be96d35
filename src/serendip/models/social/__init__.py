"""Social models: recommendations that use who follows whom.

`in-network` (what followees authored, liked or shared, weighted by learned tie strength),
`social-ppr` (personalised PageRank over users, items and follow edges) and `socialmf`
(implicit MF with a social regulariser). On a dataset without a social graph each degrades to a
collaborative signal instead of failing: in-network uses each user's most similar users as an
implicit network (then popularity), PPR walks the user-item graph only, SocialMF is plain
implicit ALS. Explanations never name a user whose `user_meta.private` is true.

The graph helpers (follow and authorship matrices, tie strengths, similar users) are public
too: the pipeline's sources build on them.
"""

from serendip.models.social._graph import (
    TieConfig,
    authored_matrix,
    follow_matrix,
    row_normalised,
    similar_users,
    tie_strengths,
)
from serendip.models.social._innetwork import InNetwork, InNetworkConfig
from serendip.models.social._ppr import SocialPPR, SocialPPRConfig
from serendip.models.social._socialmf import SocialMF, SocialMFConfig

__all__ = [
    "InNetwork",
    "InNetworkConfig",
    "SocialMF",
    "SocialMFConfig",
    "SocialPPR",
    "SocialPPRConfig",
    "TieConfig",
    "authored_matrix",
    "follow_matrix",
    "row_normalised",
    "similar_users",
    "tie_strengths",
]
