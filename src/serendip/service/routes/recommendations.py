"""Recommendations for a user, items similar to an item, trending items. Read scope.

While an experiment runs, a user's list comes from their variant (or interleaves two) and the
response names the experiment and the variant (`serendip.service.experiments`). Every list
served to a known user is logged as an exposure under the request's ID (`X-Request-ID`):
surface "user" for a user's recommendations, and "similar" / "trending" when those requests
name the user (`?user=`; without it nobody is known to have seen the list and nothing is
logged). The log is written in batches off the request path."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import Field

from serendip.errors import SerendipError
from serendip.service.auth import require
from serendip.service.deps import MetricsDep, ServingRuntimeDep, SettingsDep, check_k
from serendip.service.experiments import ExperimentService, Served
from serendip.service.routes._params import IdList, ItemPath, K, UserPath
from serendip.service.schemas import Id, RecommendationsPublic, rec_items_public
from serendip.serving.contract import RecItem
from serendip.serving.serve import Snapshot

router = APIRouter(prefix="/v1", tags=["recommendations"], dependencies=[Depends(require("read"))])


class UserRecommendationsPublic(RecommendationsPublic):
    """A user's list, with the experiment that shaped it."""

    experiment: str | None = Field(
        default=None, description="The running experiment the list belongs to (None: none)."
    )
    variant: str | None = Field(
        default=None,
        description="The user's variant in an A/B experiment (None otherwise; an interleaved "
        "list mixes both rankers).",
    )


def _public(
    recs: Sequence[RecItem], *, user: str | None, version: str | None, explain: bool
) -> RecommendationsPublic:
    items = rec_items_public(recs, explain=explain)
    return RecommendationsPublic(user=user, model_version=version, items=items)


def _experiments(request: Request) -> ExperimentService | None:
    service: ExperimentService | None = getattr(request.app.state, "experiments", None)
    return service


def _request_id(request: Request) -> str:
    rid: str = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    return rid


def _log_exposure(
    request: Request, user: str | None, surface: str, recs: list[RecItem], version: str | None
) -> None:
    service = _experiments(request)
    if user is not None and service is not None:
        service.log(_request_id(request), user, surface, Served(recs, version))


@router.get(
    "/users/{user_id}/recommendations",
    response_model=UserRecommendationsPublic,
    summary="Recommendations for a user",
)
def recommend(
    user_id: UserPath,
    request: Request,
    runtime: ServingRuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    k: K = 10,
    explain: Annotated[bool, Query(description="Add an explanation to every item.")] = False,
    category: Annotated[IdList, Query(description="Only items of these categories.")] = None,
    author: Annotated[IdList, Query(description="Only items by these authors.")] = None,
    exclude: Annotated[IdList, Query(description="Never return these item IDs.")] = None,
    context_item: Annotated[
        Id | None, Query(description="The item the user is looking at now (context).")
    ] = None,
) -> UserRecommendationsPublic | Response:  # the body is `response_model`'s either way
    """The user's top-k items, best first. An unknown user is not an error: they get the
    cold-start list (declared interests, trending). Items the user already interacted with,
    `exclude`, `context_item` and deleted items are never returned. While an experiment runs
    the list comes from the user's variant (`experiment`, `variant`); a user who turned
    personalization off gets the non-personalized list."""
    check_k(k, settings)
    categories = tuple(category) if category else None
    authors = tuple(author) if author else None
    excluded = tuple(exclude or ())

    def from_version(snap: Snapshot | None) -> list[RecItem]:
        return runtime.recommend(
            user_id,
            k,
            explain=explain,
            categories=categories,
            authors=authors,
            exclude=excluded,
            context_item=context_item,
            snapshot=snap,
        )

    service = _experiments(request)
    if service is None:
        snap = runtime.snapshot  # read once: the list and the reported version agree
        served = Served(from_version(snap), snap.version if snap is not None else None)
    else:
        served = service.serve(user_id, k, request_id=_request_id(request), recommend=from_version)
    recs = served.recs
    metrics.observe_recommendations(
        "user", [r.explanation for r in recs] if explain else [None] * len(recs), len(recs)
    )
    cache = runtime.snapshot.cache if runtime.snapshot is not None else None
    if metrics.multiprocess and cache is not None:  # this worker's share of the summed paths
        metrics.set_serving_paths(dict(cache.paths))
    extra = {"experiment": served.experiment, "variant": served.variant}
    body = _encoded(recs, user=user_id, version=served.model_version, explain=explain, extra=extra)
    if body is not None:
        return Response(body, media_type="application/json")
    items = rec_items_public(recs, explain=explain)
    return UserRecommendationsPublic(
        user=user_id, model_version=served.model_version, items=items, **extra
    )


def _encoded(
    recs: Sequence[RecItem],
    *,
    user: str | None,
    version: str | None,
    explain: bool,
    extra: dict[str, str | None],
) -> bytes | None:
    """The `RecommendationsPublic` body encoded straight from the runtime's items: the hot
    route skips building and re-validating the response models (a large share of a cached
    request's CPU). None when a value is not plain JSON (say a NaN score): the caller then
    takes the validated path, which encodes it the standard way."""
    items = [
        {
            "item": str(r.item),
            "rank": i + 1,
            "score": float(r.score),
            "explanation": r.explanation if explain and r.explanation is not None else None,
        }
        for i, r in enumerate(recs)
    ]
    try:
        text = _dumps({"user": user, "model_version": version, "items": items, **extra})
    except (TypeError, ValueError):
        return None
    return text.encode()


_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode


@router.get(
    "/items/{item_id}/similar",
    response_model=RecommendationsPublic,
    summary="Items similar to an item",
    responses={404: {"description": "The item was deleted."}},
)
def similar(
    item_id: ItemPath,
    request: Request,
    runtime: ServingRuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    k: K = 10,
    user: Annotated[
        Id | None, Query(description="Who is shown the list: logs it as their exposure.")
    ] = None,
) -> RecommendationsPublic:
    """Items like `item_id` ("more like this"); an unknown item gets an empty list, a deleted
    one 404."""
    check_k(k, settings)
    snap = runtime.snapshot
    version = snap.version if snap is not None else None
    try:
        recs = runtime.similar(item_id, k, snapshot=snap)
    except SerendipError as exc:  # the item was deleted
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    metrics.observe_recommendations("similar", [None] * len(recs), len(recs))
    _log_exposure(request, user, "similar", recs, version)
    return _public(recs, user=None, version=version, explain=True)


@router.get("/trending", response_model=RecommendationsPublic, summary="Trending items")
def trending(
    request: Request,
    runtime: ServingRuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    k: K = 10,
    category: Annotated[Id | None, Query(description="Only this category.")] = None,
    user: Annotated[
        Id | None, Query(description="Who is shown the list: logs it as their exposure.")
    ] = None,
) -> RecommendationsPublic:
    """What is popular now, time-decayed."""
    check_k(k, settings)
    snap = runtime.snapshot
    version = snap.version if snap is not None else None
    recs = runtime.trending(k, category=category, snapshot=snap)
    metrics.observe_recommendations("trending", [None] * len(recs), len(recs))
    _log_exposure(request, user, "trending", recs, version)
    return _public(recs, user=None, version=version, explain=True)
