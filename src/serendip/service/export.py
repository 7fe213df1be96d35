"""A user's export: the part the serving runtime holds (their current recommendations and
why each is shown) and the sticky assignment of the running experiments; the store holds the
rest (`Store.export_user`)."""

from __future__ import annotations

from serendip.errors import SerendipError
from serendip.experiments.assignment import assign
from serendip.service.runtime import ModelRuntime
from serendip.service.schemas import ExportRecommendationsPublic, rec_items_public
from serendip.store import Store

__all__ = ["current_recommendations", "sticky_assignments"]


def sticky_assignments(store: Store, user: str) -> list[dict[str, object]]:
    """The variant each running experiment assigns `user` (sticky: the salted hash of the
    user), whether or not a list was served to them under it yet."""
    from serendip.experiments.spec import parse_spec

    out: list[dict[str, object]] = []
    for exp in store.experiments.list("running"):
        try:
            spec = parse_spec(exp.spec)
        except (SerendipError, ValueError):
            continue
        variant = assign(user, spec.salt, spec.shares) if spec.kind == "ab" else "interleaved"
        out.append(
            {
                "experiment": exp.experiment_id,
                "variant": variant,
                "kind": spec.kind,
                "source": "sticky assignment of a running experiment",
                "started_at": exp.started_at,
            }
        )
    return out


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
