"""Users and the social graph: declared interests, follow/unfollow, activity privacy, consent,
the export of everything held about a user and their erasure (admin scope).

Every user ID in a path is the platform's raw ID; with a pseudonym secret set it is replaced by
its pseudonym before the store or the runtime sees it (`serendip.service.privacy`). Writes
naming an erased user answer 409: their data does not come back."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, HTTPException, Request, status

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
from serendip.service.export import current_recommendations, sticky_assignments
from serendip.service.privacy import (
    ConsentPublic,
    ConsentUpdate,
    ErasureReceiptPublic,
    PrivacyContext,
    PrivacyDep,
    apply_consent,
    erase_user,
)
from serendip.service.routes._params import K, UserPath
from serendip.service.runtime import ModelRuntime
from serendip.service.schemas import (
    FollowPublic,
    PrivacyUpdate,
    UserCreate,
    UserExportPublic,
    UserPublic,
)
from serendip.store import Store, User, UserIn

router = APIRouter(prefix="/v1/users", tags=["users"])

_write = [Depends(require("write"))]


def _public(user: User | UserIn, raw: str) -> UserPublic:
    return UserPublic(user=raw, interests=list(user.interests), private=bool(user.private))


def _writable(privacy: PrivacyContext, *stored: str) -> None:
    """409 when a write names an erased user."""
    if privacy.erased(stored):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="this user was erased; their data is not taken again",
        )


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
    privacy: PrivacyDep,
) -> UserPublic:
    """Declared interests steer a new user's first recommendations (cold start)."""
    enforce_limits(body, settings)
    stored = privacy.pseudonyms.user(user_id)
    _writable(privacy, stored)
    row = UserIn(
        user=stored,
        interests=tuple(dict.fromkeys(body.interests)),
        private=body.private,
        created_at=body.created_at if body.created_at is not None else time.time(),
    )
    store.users.upsert([row])
    _notify_user(runtime, row)
    return _public(row, user_id)


@router.get(
    "/{user_id}",
    response_model=UserPublic,
    summary="Read a user",
    dependencies=[Depends(require("read"))],
    responses={404: {"description": "No such user."}},
)
def get_user(user_id: UserPath, store: StoreDep, privacy: PrivacyDep) -> UserPublic:
    user = store.users.get(privacy.pseudonyms.user(user_id))
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no user '{user_id}'")
    return _public(user, user_id)


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
    privacy: PrivacyDep,
) -> UserPublic:
    """A private user's activity is never shown to others as a reason ("X liked this"), nor
    used by others' in-network sources."""
    stored = privacy.pseudonyms.user(user_id)
    _writable(privacy, stored)
    row = _set_private(store, runtime, stored, body.private)
    return _public(row, user_id)


def _set_private(store: Store, runtime: ModelRuntime, stored: str, private: bool) -> UserIn:
    current = store.users.get(stored)
    row = UserIn(
        user=stored,
        interests=tuple(current.interests) if current else (),
        private=private,
        created_at=current.created_at if current else time.time(),
    )
    store.users.upsert([row])
    withheld = not store.consents.get(stored).activity_for_others
    live = UserIn(row.user, row.interests, private or withheld, row.created_at)
    _notify_user(runtime, live)  # a user withholding their activity stays hidden as evidence
    return row


@router.get(
    "/{user_id}/consent",
    response_model=ConsentPublic,
    summary="Read a user's consent",
    dependencies=[Depends(require("read"))],
)
def get_consent(user_id: UserPath, store: StoreDep, privacy: PrivacyDep) -> ConsentPublic:
    """The switches (the defaults -- all on, not private -- when never changed)."""
    stored = privacy.pseudonyms.user(user_id)
    return _consent_public(store, stored, user_id)


def _consent_public(store: Store, stored: str, raw: str) -> ConsentPublic:
    c = store.consents.get(stored)
    profile = store.users.get(stored)
    return ConsentPublic(
        user=raw,
        personalization=c.personalization,
        activity_for_others=c.activity_for_others,
        private=bool(profile.private) if profile is not None else False,
        updated_at=c.updated_at,
    )


@router.put(
    "/{user_id}/consent",
    response_model=ConsentPublic,
    summary="Set a user's consent",
    dependencies=_write,
    responses={409: {"description": "The user was erased."}},
)
def set_consent(
    user_id: UserPath,
    body: ConsentUpdate,
    store: StoreDep,
    runtime: RuntimeDep,
    privacy: PrivacyDep,
) -> ConsentPublic:
    """personalization off: the same non-personalized list as everyone; activity_for_others
    off: the user's activity shapes nobody else's recommendations, at once in the live path
    and from the next fit on; private: others' explanations never name them. Fields left out
    keep their value. Applied at once, without a retrain."""
    stored = privacy.pseudonyms.user(user_id)
    _writable(privacy, stored)
    c = store.consents.update(
        stored,
        personalization=body.personalization,
        activity_for_others=body.activity_for_others,
    )
    if body.private is not None:
        _set_private(store, runtime, stored, body.private)
    notify(
        "consent",
        lambda: apply_consent(runtime, store, stored, c.personalization, c.activity_for_others),
    )
    return _consent_public(store, stored, user_id)


@router.delete(
    "/{user_id}",
    response_model=ErasureReceiptPublic,
    summary="Erase a user from the data and the models",
    dependencies=[Depends(require("admin"))],
)
def erase(
    user_id: UserPath,
    request: Request,
    runtime: RuntimeDep,
    privacy: PrivacyDep,
    refit: bool = True,
) -> ErasureReceiptPublic:
    """Delete everything stored about the user, forget them in the live state, hide them at
    once in every loaded model, record the erasure as a keyed hash (later imports and fits
    skip them), then -- in the background -- refit the active model's configuration without
    them, hot-swap it in and delete the artifact directories of every version trained with
    them (rollback to those is gone by design). `refit=false` skips the refit and purge."""
    return erase_user(privacy, runtime, user_id, refit=refit, swap_lock=request.app.state.swap_lock)


def _check_pair(user_id: str, followee: str) -> None:
    if user_id == followee:
        raise field_error(("path", "followee"), "a user cannot follow themselves")


@router.get(
    "/{user_id}/follows",
    response_model=list[str],
    summary="Whom a user follows",
    dependencies=[Depends(require("read"))],
)
def followees(user_id: UserPath, store: StoreDep, privacy: PrivacyDep) -> list[str]:
    """Stored IDs: pseudonyms when a pseudonym secret is set."""
    return list(store.social.followees(privacy.pseudonyms.user(user_id)))


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
    privacy: PrivacyDep,
) -> FollowPublic:
    """Idempotent: following twice is one edge. Their posts reach the user's list at once."""
    _check_pair(user_id, followee)
    a, b = privacy.pseudonyms.user(user_id), privacy.pseudonyms.user(followee)
    _writable(privacy, a, b)
    store.social.follow(a, b, time.time())
    notify("follow", lambda: runtime.on_follow(a, b))
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
    privacy: PrivacyDep,
) -> FollowPublic:
    """Idempotent: unfollowing someone not followed is a no-op."""
    _check_pair(user_id, followee)
    a, b = privacy.pseudonyms.user(user_id), privacy.pseudonyms.user(followee)
    _writable(privacy, a, b)
    store.social.unfollow(a, b)
    notify("unfollow", lambda: runtime.on_unfollow(a, b))
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
    privacy: PrivacyDep,
    k: K = 10,
) -> UserExportPublic:
    """The user's profile, events, follow edges both ways, unfollows, authored items, the
    lists they were shown (exposures), their experiment assignments (from those lists, and
    the sticky assignment of every running experiment), their consent switches and the
    current top-k with why each item is shown. Admin scope: it is another user's data. With
    a pseudonym secret, the path takes the raw ID and other users appear as pseudonyms."""
    check_k(k, settings)
    stored = privacy.pseudonyms.user(user_id)
    data = store.export_user(stored)
    if not data.pop("has_data"):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"nothing is stored about '{user_id}'"
        )
    data["user"] = user_id
    data["experiments"]["records"] += sticky_assignments(store, stored)
    version, recs = current_recommendations(runtime, stored, k)
    return UserExportPublic.model_validate(
        {**data, "exported_at": time.time(), "model_version": version, "recommendations": recs}
    )
