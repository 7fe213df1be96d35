"""The serving layer: the contract the HTTP service calls on a model (`ServingModel`), the live
state between fits, per-snapshot caches, precomputed lists, and one request's logic.

Below the pipeline and above the model zoo: the pipeline implements the contract
(`serendip.pipeline.serving`), every zoo model is served through `ZooServing`.
"""

from serendip.serving.context import UserContext
from serendip.serving.contract import LiveUser, RankedCandidates, RecItem, ServingModel
from serendip.serving.state import OnlineState
from serendip.serving.zoo import ZooServing

__all__ = [
    "LiveUser",
    "OnlineState",
    "RankedCandidates",
    "RecItem",
    "ServingModel",
    "UserContext",
    "ZooServing",
]
