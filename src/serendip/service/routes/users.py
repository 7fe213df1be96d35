"""Users and the social graph: declared interests, follow/unfollow, activity privacy, and
the export of everything held about a user (admin scope)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, HTTPException, status

from serendip.service.auth import require
from serendip.service.deps import (
    RuntimeDep,
    SettingsDep,
    StoreDep,
    check_k,
    enforce_limits,
    field_error,
    notify,
)
from serendip.service.export import current_recommendations
from serendip.service.routes._params import K, UserPath
from serendip.service.runtime import ModelRuntime
from serendip.service.schemas import (
    FollowPublic,
    PrivacyUpdate,
    UserCreate,
    UserExportPublic,
    UserPublic,
)
from serendip.store import User, UserIn

router = APIRouter(prefix="/v1/users", tags=["users"])

_write = [Depends(require("write"))]


def _public(user: User | UserIn) -> UserPublic:
    return UserPublic(user=user.user, interests=list(user.interests), private=bool(user.private))


def _notify_user(runtime: ModelRuntime, row: UserIn) -> None:
    notify("users", lambda: runtime.on_users([row]))


@router.put(
    "/{user_id}", response_model=UserPublic, summary="Create or replace a user", dependencies=_write
)
def upsert_user(
    user_id: UserPath,
    body: UserCreate,
    store: StoreDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
) -> UserPublic:
    """Declared interests steer a new user's first recommendations (cold start)."""
    enforce_limits(body, settings)
    row = UserIn(
        user=user_id,
        interests=tuple(dict.fromkeys(body.interests)),
        private=body.private,
        created_at=body.created_at if body.created_at is not None else time.time(),
    )
    store.users.upsert([row])
    _notify_user(runtime, row)
    return _public(row)


@router.get(
    "/{user_id}",
    response_model=UserPublic,
    summary="Read a user",
    dependencies=[Depends(require("read"))],
    responses={404: {"description": "No such user."}},
)
def get_user(user_id: UserPath, store: StoreDep) -> UserPublic:
    user = store.users.get(user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no user '{user_id}'")
    return _public(user)


@router.put(
    "/{user_id}/privacy",
    response_model=UserPublic,
    summary="Set activity privacy",
    dependencies=_write,
)
def set_privacy(
    user_id: UserPath,
    body: PrivacyUpdate,
    store: StoreDep,
    runtime: RuntimeDep,
) -> UserPublic:
    """A private user's activity is never shown to others as a reason ("X liked this"), nor
    used by others' in-network sources."""
    current = store.users.get(user_id)
    row = UserIn(
        user=user_id,
        interests=tuple(current.interests) if current else (),
        private=body.private,
        created_at=current.created_at if current else time.time(),
    )
    store.users.upsert([row])
    _notify_user(runtime, row)
    return _public(row)


def _check_pair(user_id: str, followee: str) -> None:
    if user_id == followee:
        raise field_error(("path", "followee"), "a user cannot follow themselves")


@router.get(
    "/{user_id}/follows",
    response_model=list[str],
    summary="Whom a user follows",
    dependencies=[Depends(require("read"))],
)
def followees(user_id: UserPath, store: StoreDep) -> list[str]:
    return list(store.social.followees(user_id))


@router.put(
    "/{user_id}/follows/{followee}",
    response_model=FollowPublic,
    summary="Follow a user",
    dependencies=_write,
)
def follow(
    user_id: UserPath,
    followee: UserPath,
    store: StoreDep,
    runtime: RuntimeDep,
) -> FollowPublic:
    """Idempotent: following twice is one edge. Their posts reach the user's list at once."""
    _check_pair(user_id, followee)
    store.social.follow(user_id, followee, time.time())
    notify("follow", lambda: runtime.on_follow(user_id, followee))
    return FollowPublic(follower=user_id, followee=followee, following=True)


@router.delete(
    "/{user_id}/follows/{followee}",
    response_model=FollowPublic,
    summary="Unfollow a user",
    dependencies=_write,
)
def unfollow(
    user_id: UserPath,
    followee: UserPath,
    store: StoreDep,
    runtime: RuntimeDep,
) -> FollowPublic:
    """Idempotent: unfollowing someone not followed is a no-op."""
    _check_pair(user_id, followee)
    store.social.unfollow(user_id, followee)
    notify("unfollow", lambda: runtime.on_unfollow(user_id, followee))
    return FollowPublic(follower=user_id, followee=followee, following=False)


@router.get(
    "/{user_id}/export",
    response_model=UserExportPublic,
    summary="Export everything held about a user",
    dependencies=[Depends(require("admin"))],
    responses={404: {"description": "Nothing at all is stored about this user."}},
)
def export_user(
    user_id: UserPath,
    store: StoreDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    k: K = 10,
) -> UserExportPublic:
    """The user's profile, events, follow edges both ways, unfollows, authored items, the
    sections not kept yet (exposures, experiments, consent: empty, with a note) and the
    current top-k with why each item is shown. Admin scope: it is another user's data."""
    check_k(k, settings)
    data = store.export_user(user_id)
    if not data.pop("has_data"):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"nothing is stored about '{user_id}'"
        )
    version, recs = current_recommendations(runtime, user_id, k)
    return UserExportPublic.model_validate(
        {**data, "exported_at": time.time(), "model_version": version, "recommendations": recs}
    )
