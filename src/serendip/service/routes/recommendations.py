"""Recommendations for a user, items similar to an item, trending items. Read scope."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from serendip.errors import SerendipError
from serendip.service.auth import require
from serendip.service.deps import MetricsDep, ServingRuntimeDep, SettingsDep, check_k
from serendip.service.routes._params import IdList, ItemPath, K, UserPath
from serendip.service.schemas import Id, RecommendationsPublic, rec_items_public
from serendip.serving.contract import RecItem

router = APIRouter(prefix="/v1", tags=["recommendations"], dependencies=[Depends(require("read"))])


def _public(
    recs: Sequence[RecItem], *, user: str | None, version: str | None, explain: bool
) -> RecommendationsPublic:
    items = rec_items_public(recs, explain=explain)
    return RecommendationsPublic(user=user, model_version=version, items=items)


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationsPublic,
    summary="Recommendations for a user",
)
def recommend(
    user_id: UserPath,
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
) -> RecommendationsPublic | Response:  # the body is `response_model`'s either way
    """The user's top-k items, best first. An unknown user is not an error: they get the
    cold-start list (declared interests, trending). Items the user already interacted with,
    `exclude`, `context_item` and deleted items are never returned."""
    check_k(k, settings)
    snap = runtime.snapshot  # read once: the list and the reported version agree under a swap
    version = snap.version if snap is not None else None
    recs = runtime.recommend(
        user_id,
        k,
        explain=explain,
        categories=tuple(category) if category else None,
        authors=tuple(author) if author else None,
        exclude=tuple(exclude or ()),
        context_item=context_item,
        snapshot=snap,
    )
    metrics.observe_recommendations(
        "user", [r.explanation for r in recs] if explain else [None] * len(recs), len(recs)
    )
    body = _encoded(recs, user=user_id, version=version, explain=explain)
    if body is not None:
        return Response(body, media_type="application/json")
    return _public(recs, user=user_id, version=version, explain=explain)


def _encoded(
    recs: Sequence[RecItem], *, user: str | None, version: str | None, explain: bool
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
        text = _dumps({"user": user, "model_version": version, "items": items})
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
    runtime: ServingRuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    k: K = 10,
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
    return _public(recs, user=None, version=version, explain=True)


@router.get("/trending", response_model=RecommendationsPublic, summary="Trending items")
def trending(
    runtime: ServingRuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    k: K = 10,
    category: Annotated[Id | None, Query(description="Only this category.")] = None,
) -> RecommendationsPublic:
    """What is popular now, time-decayed."""
    check_k(k, settings)
    snap = runtime.snapshot
    version = snap.version if snap is not None else None
    recs = runtime.trending(k, category=category, snapshot=snap)
    metrics.observe_recommendations("trending", [None] * len(recs), len(recs))
    return _public(recs, user=None, version=version, explain=True)
