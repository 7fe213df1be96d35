"""A user's export: the part the serving runtime holds (their current recommendations and
why each is shown); the store holds the rest (`Store.export_user`)."""

from __future__ import annotations

from serendip.errors import SerendipError
from serendip.service.runtime import ModelRuntime
from serendip.service.schemas import ExportRecommendationsPublic, rec_items_public

__all__ = ["current_recommendations"]


def current_recommendations(
    runtime: ModelRuntime, user: str, k: int
) -> tuple[str | None, ExportRecommendationsPublic]:
    """The user's top-k from the active model with explanations (and its version), or an
    empty list with the reason."""
    snap = runtime.snapshot  # read once: the list and the version agree under a swap
    if snap is None:
        return None, ExportRecommendationsPublic(k=k, items=[], reason="no model is active")
    try:
        recs = runtime.recommend(user, k, explain=True, snapshot=snap)
    except SerendipError as exc:
        return snap.version, ExportRecommendationsPublic(
            k=k, items=[], reason=f"the active model could not recommend: {exc}"
        )
    return snap.version, ExportRecommendationsPublic(k=k, items=rec_items_public(recs))
