"""A seeded simulator of a social content platform, standing in for a platform's own data.

Users with topical interests (a Dirichlet mixture pulled towards their community's topics)
follow each other (communities, fame-driven power-law in-degrees, reciprocity inside
communities); authors post items whose text, tags and category come from topic vocabularies;
users see posts of followed authors, items their followees liked or shared, and items they
discover by interest and popularity, and respond through a view -> click/like -> comment/share
funnel. The ground truth (interest mixtures, item topics and quality, the response model) is
written next to the data, so later work can simulate a user's response to a recommendation.

>>> from serendip.data.synthetic import generate_platform, load_truth, response_probability
>>> out = generate_platform("tiny", seed=1, out="data/tiny")  # doctest: +SKIP
>>> truth = load_truth(out)  # doctest: +SKIP
>>> response_probability(truth, ["u000001"], ["i0000002"])  # doctest: +SKIP
"""

from serendip.data.synthetic._config import PRESETS, PlatformConfig, resolve_config
from serendip.data.synthetic._generate import FORMAT, ProgressCallback, generate_platform
from serendip.data.synthetic._topics import TOPICS, Topic
from serendip.data.synthetic._truth import (
    PlatformTruth,
    ResponseModel,
    load_truth,
    response_probability,
)

__all__ = [
    "FORMAT",
    "PRESETS",
    "TOPICS",
    "PlatformConfig",
    "PlatformTruth",
    "ProgressCallback",
    "ResponseModel",
    "Topic",
    "generate_platform",
    "load_truth",
    "resolve_config",
    "response_probability",
]
