"""Request and response bodies of the HTTP API (pydantic v2), with their bounds.

Names follow the FastAPI template: `ThingCreate` is what a client sends, `ThingPublic` what the
API returns. Every field has a description, so `/docs` explains the API on its own. The bounds
here are hard caps; `Settings.limits` may set stricter ones (checked in the routes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from serendip.data.dataset import EVENT_TYPES

if TYPE_CHECKING:
    from serendip.serving.contract import RecItem

__all__ = [
    "EARLIEST_TIMESTAMP",
    "MAX_BATCH",
    "MAX_ID_LENGTH",
    "MAX_LIST_LENGTH",
    "MAX_TEXT_LENGTH",
    "ErrorPublic",
    "EventBatchCreate",
    "EventCreate",
    "FollowPublic",
    "HealthPublic",
    "IngestPublic",
    "ItemBatchCreate",
    "ItemCreate",
    "ItemDeletePublic",
    "ItemsDelete",
    "ModelActivatePublic",
    "ModelVersionPublic",
    "ModelsPublic",
    "PrivacyUpdate",
    "ReadyPublic",
    "RecItemPublic",
    "RecommendationsPublic",
    "UpsertPublic",
    "UserCreate",
    "UserExportPublic",
    "UserPublic",
    "rec_items_public",
]

MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 20_000
MAX_LIST_LENGTH = 1_000
MAX_BATCH = 10_000
#: 2000-01-01T00:00:00Z: anything earlier is a unit mistake (milliseconds are caught the other way).
EARLIEST_TIMESTAMP = 946_684_800.0
#: How far in the future a timestamp may lie (clock skew between the platform and us).
MAX_CLOCK_SKEW_S = 86_400.0


def _printable(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


#: An external ID (user, item, event, author, category): 1..256 printable characters.
Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(_printable),
]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]


def check_timestamp(value: float | None) -> float | None:
    """Epoch seconds between 2000-01-01 and one day from now, or None."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError("must be a finite number of epoch seconds")
    if value < EARLIEST_TIMESTAMP:
        raise ValueError(
            f"{value} is before 2000-01-01 ({EARLIEST_TIMESTAMP:.0f}); send epoch seconds"
        )
    latest = time.time() + MAX_CLOCK_SKEW_S
    if value > latest:
        hint = " (milliseconds? send seconds)" if value > 1e12 else ""
        raise ValueError(f"{value} is more than a day in the future{hint}")
    return value


def parse_time(value: object) -> object:
    """ISO 8601 strings ("2026-01-31T12:00:00Z"; no zone = UTC) become epoch seconds."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("expected epoch seconds or an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return value


Timestamp = Annotated[float | None, BeforeValidator(parse_time), AfterValidator(check_timestamp)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT_LENGTH)


# ----------------------------------------------------------------------------- events
class EventCreate(_Body):
    """One interaction of a user with an item. Sending the same `event_id` again is a no-op."""

    event_id: Id = Field(
        description="Client-chosen unique ID; the key that makes ingestion idempotent.",
        examples=["evt-000001"],
    )
    user: Id = Field(description="External user ID.", examples=["u000001"])
    item: Id = Field(description="External item ID.", examples=["i0000001"])
    event: str = Field(
        description=f"Event type, one of: {', '.join(EVENT_TYPES)}.", examples=["like"]
    )
    timestamp: Timestamp = Field(
        default=None,
        description="Epoch seconds or ISO 8601 (2000-01-01 .. now + 1 day); default: arrival.",
        examples=[1_760_000_000.0],
    )
    value: float | None = Field(
        default=None,
        ge=-1e9,
        le=1e9,
        allow_inf_nan=False,
        description="Optional value: a rating, a watch share, a listen count.",
    )

    @field_validator("event")
    @classmethod
    def _known_event(cls, v: str) -> str:
        if v not in EVENT_TYPES:
            raise ValueError(f"unknown event type '{v[:40]}'; valid: {', '.join(EVENT_TYPES)}")
        return v


class EventBatchCreate(_Body):
    """Up to 10,000 events, stored in one transaction before the response is sent."""

    events: list[EventCreate] = Field(
        min_length=1, max_length=MAX_BATCH, description="The events (1 .. 10,000)."
    )


class IngestPublic(BaseModel):
    """What happened to the events sent. Once this is returned they are durable."""

    received: int = Field(description="Events in the request.")
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events whose event_id was already stored (ignored).")


# ----------------------------------------------------------------------------- catalog
class ItemCreate(_Body):
    """An item of the catalog; upserting an existing ID replaces its fields."""

    item: Id = Field(description="External item ID.", examples=["i0000001"])
    title: Text = Field(default="", description="Title (searchable text).")
    text: Text = Field(default="", description="Body text used by the content sources.")
    tags: list[Id] = Field(
        default_factory=list, max_length=MAX_LIST_LENGTH, description="Tags, e.g. ['jazz']."
    )
    category: Id | None = Field(default=None, description="Category, used by category filters.")
    author: Id | None = Field(
        default=None, description="Author's user ID, used by in-network sources."
    )
    created_at: Timestamp = Field(default=None, description="Epoch seconds; default: now.")


class ItemBatchCreate(_Body):
    """Up to 10,000 items to insert or replace."""

    items: list[ItemCreate] = Field(min_length=1, max_length=MAX_BATCH, description="The items.")


class ItemsDelete(_Body):
    """Items to remove from every response at once."""

    items: list[Id] = Field(min_length=1, max_length=MAX_BATCH, description="Item IDs.")


class UpsertPublic(BaseModel):
    upserted: int = Field(description="Records inserted or replaced.")


class ItemDeletePublic(BaseModel):
    deleted: list[str] = Field(description="Item IDs now deleted.")


# ----------------------------------------------------------------------------- users
class UserCreate(_Body):
    """A user's declared profile; upserting replaces it."""

    interests: list[Id] = Field(
        default_factory=list,
        max_length=MAX_LIST_LENGTH,
        description="Declared interests (categories or tags); used for cold start.",
    )
    private: bool = Field(
        default=False, description="Private activity: never used as social evidence for others."
    )
    created_at: Timestamp = Field(default=None, description="Epoch seconds; default: now.")


class PrivacyUpdate(_Body):
    private: bool = Field(description="True hides this user's activity from others' reasons.")


class UserPublic(BaseModel):
    user: str = Field(description="External user ID.")
    interests: list[str] = Field(description="Declared interests.")
    private: bool = Field(description="Whether the user's activity is private.")


class FollowPublic(BaseModel):
    follower: str = Field(description="Who follows.")
    followee: str = Field(description="Who is followed.")
    following: bool = Field(description="Whether the follow edge exists after the call.")


# ----------------------------------------------------------------------------- recommendations
class RecItemPublic(BaseModel):
    item: str = Field(description="External item ID.")
    rank: int = Field(description="1-based position.")
    score: float = Field(description="Model score (higher is better; scale depends on model).")
    explanation: dict[str, object] | None = Field(
        default=None, description="Why: structured evidence and a sentence (when explain=true)."
    )


def rec_items_public(recs: Sequence[RecItem], *, explain: bool = True) -> list[RecItemPublic]:
    """Served items as the API shows them: ranks from 1, explanations when asked for."""
    return [
        RecItemPublic(
            item=str(r.item),
            rank=i + 1,
            score=float(r.score),
            explanation=(dict(r.explanation) if explain and r.explanation is not None else None),
        )
        for i, r in enumerate(recs)
    ]


class RecommendationsPublic(BaseModel):
    user: str | None = Field(
        default=None, description="User asked for (None for trending/similar)."
    )
    model_version: str | None = Field(description="Model version that produced the list.")
    items: list[RecItemPublic] = Field(description="Best first; may be shorter than k.")


# ----------------------------------------------------------------------------- user export
class ExportProfilePublic(UserPublic):
    created_at: float | None = Field(description="When the user joined, epoch seconds.")
    updated_at: float = Field(description="Last change of the profile, epoch seconds.")


class ExportEventPublic(BaseModel):
    event_id: str = Field(description="The event's ID.")
    item: str = Field(description="External item ID.")
    event: str = Field(description=f"Event type, one of: {', '.join(EVENT_TYPES)}.")
    timestamp: float = Field(description="When it happened, epoch seconds.")
    value: float | None = Field(description="Its value (a rating, a count), if any.")
    received_at: float = Field(description="When Serendip stored it, epoch seconds.")


class ExportFollowingPublic(BaseModel):
    followee: str = Field(description="Whom the user follows.")
    created_at: float = Field(description="Since when, epoch seconds.")


class ExportFollowerPublic(BaseModel):
    follower: str = Field(description="Who follows the user.")
    created_at: float = Field(description="Since when, epoch seconds.")


class ExportUnfollowPublic(BaseModel):
    follower: str = Field(description="Who unfollowed.")
    followee: str = Field(description="Who was unfollowed.")
    at: float = Field(description="When, epoch seconds.")


class ExportAuthoredItemPublic(BaseModel):
    item: str = Field(description="External item ID.")
    title: str = Field(description="Its title.")
    created_at: float | None = Field(description="When it was published, epoch seconds.")
    deleted_at: float | None = Field(description="When it was deleted, if it was.")


class ExportNotKeptPublic(BaseModel):
    """A kind of record Serendip does not keep yet: always empty, present for a stable shape."""

    records: list[dict[str, object]] = Field(description="The records (none kept yet).")
    note: str = Field(description="What is (not) kept.")


class ExportRecommendationsPublic(BaseModel):
    k: int = Field(description="How many items were asked for.")
    items: list[RecItemPublic] = Field(
        description="The user's current top-k, best first, each with why it is shown."
    )
    reason: str | None = Field(
        default=None, description="Why there are no recommendations (say, no model is active)."
    )


class UserExportPublic(BaseModel):
    """Everything Serendip holds about one user (`GET /v1/users/{id}/export`, `serendip
    export`). Timestamps are epoch seconds."""

    user: str = Field(description="External user ID.")
    exported_at: float = Field(description="When this export was made, epoch seconds.")
    model_version: str | None = Field(
        description="Model version that produced `recommendations` (None: no model)."
    )
    profile: ExportProfilePublic | None = Field(description="The profile, if one is stored.")
    events: list[ExportEventPublic] = Field(description="The user's events, oldest first.")
    following: list[ExportFollowingPublic] = Field(description="Whom the user follows.")
    followers: list[ExportFollowerPublic] = Field(description="Who follows the user.")
    unfollows: list[ExportUnfollowPublic] = Field(
        description="Logged unfollows by or of the user, oldest first."
    )
    authored_items: list[ExportAuthoredItemPublic] = Field(
        description="Items naming the user as author (deleted ones included)."
    )
    exposures: ExportNotKeptPublic = Field(description="Items shown to the user (not kept yet).")
    experiments: ExportNotKeptPublic = Field(description="Experiment assignments (not kept yet).")
    consent: ExportNotKeptPublic = Field(description="Consent records (not kept yet).")
    recommendations: ExportRecommendationsPublic = Field(
        description="The current top-k with explanations, from the active model."
    )


# ----------------------------------------------------------------------------- models
class ModelVersionPublic(BaseModel):
    version: str = Field(description="Version ID.")
    name: str = Field(description="Model name in the zoo (or `pipeline`).")
    active: bool = Field(description="Whether this version serves now.")
    metrics: dict[str, object] = Field(description="Validation metrics recorded at registration.")
    created_at: float | None = Field(default=None, description="Registration time, epoch seconds.")
    path: str | None = Field(default=None, description="Artifact directory.")
    status: str | None = Field(default=None, description="registered, active, retired or failed.")
    error: str | None = Field(
        default=None, description="Why the version failed to load, if it did."
    )


class ModelsPublic(BaseModel):
    active: str | None = Field(description="Version serving now.")
    versions: list[ModelVersionPublic] = Field(
        description="Every registered version, newest first."
    )


class ModelActivatePublic(BaseModel):
    active: str = Field(description="Version serving now.")
    previous: str | None = Field(description="Version that served before.")


# ----------------------------------------------------------------------------- health
class HealthPublic(BaseModel):
    status: str = Field(description="`ok` while the process answers.")


class ReadyPublic(BaseModel):
    ready: bool = Field(description="Whether a model is active and the store reachable.")
    model_version: str | None = Field(description="Active model version.")
    model: str | None = Field(default=None, description="Name of the active version's model.")
    upgrading_to: str | None = Field(
        default=None,
        description=(
            "On a first start: the default model being fitted while a fast model serves; it "
            "replaces the active version when its fit ends."
        ),
    )
    stage: str | None = Field(
        default=None,
        description="What the first start is doing now and for how long, with its progress.",
    )
    reason: str | None = Field(default=None, description="Why not ready.")
    worker: int = Field(
        default=0, description="Which server process answered (`serve --workers`; 0: the first)."
    )


class ErrorPublic(BaseModel):
    detail: object = Field(description="What was wrong: a message, or a list of {loc, msg, type}.")
    request_id: str | None = Field(
        default=None, description="Quote it when reporting a server error."
    )
