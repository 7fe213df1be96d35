"""First start: give a newcomer a working system at once.

With an empty store, generate the synthetic platform of `settings.bootstrap_preset` (kept under
`<artifacts_dir>/../bootstrap/` and reused on the next empty start), import it into the store,
fit the default model, register it as a model version, activate it and load it. With a store
that has data but no model version, fit the default model on the stored data instead.

The default model is `pipeline` (the two-stage recommender) when this installation has it, else
item-kNN: it explains every item by the user's own history ("because you liked X"), scales with
sparse top-k similarities, and reacts to a new event without a refit, which makes the demo of
real-time recommendations with reasons honest.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from serendip.errors import ConfigError
from serendip.service.settings import Settings

if TYPE_CHECKING:  # imported where used: the first start is the only caller
    from serendip.data.dataset import Dataset
    from serendip.models.base import ModelConfig, Recommender
    from serendip.service.runtime import ModelRuntime
    from serendip.store import ModelVersion, Store

__all__ = ["default_model_name", "run_bootstrap"]

log = logging.getLogger("serendip.service")

FALLBACK_MODEL = "item-knn"


def default_model_name(requested: str | None = None) -> str:
    """`requested` if given (it must exist in the zoo), else `pipeline`, else item-kNN."""
    from serendip.models.registry import MODELS

    if requested:
        if requested not in MODELS:
            raise ConfigError(f"unknown default model '{requested}'; valid: {', '.join(MODELS)}")
        return requested
    return "pipeline" if "pipeline" in MODELS else FALLBACK_MODEL


def _synthetic(settings: Settings) -> Dataset:
    from serendip.data.loaders import is_platform_dir, load_platform
    from serendip.data.synthetic import generate_platform

    root = Path(settings.artifacts_dir).parent / "bootstrap"
    out = root / f"{settings.bootstrap_preset}-seed{settings.bootstrap_seed}"
    if not is_platform_dir(out):
        log.info(
            "first start: generating the '%s' synthetic platform in %s",
            settings.bootstrap_preset,
            out,
        )
        generate_platform(settings.bootstrap_preset, seed=settings.bootstrap_seed, out=out)
    return load_platform(out)


def fit_and_register(
    store: Store, dataset: Dataset, settings: Settings, *, source: str
) -> ModelVersion:
    """Fit the default model on `dataset` (its last `train_window_days` when set), save it under
    `artifacts_dir` with its precomputed serving lists (pipeline), register it. Returns the
    registered `ModelVersion` (not yet active)."""
    import numpy as np

    from serendip.models.registry import create_model

    name = default_model_name(settings.default_model)
    full = len(dataset.interactions)
    if settings.train_window_days is not None and dataset.interactions.has_timestamps:
        end = float(np.nanmax(dataset.interactions.timestamp))
        dataset = dataset.between(end - settings.train_window_days * 86_400.0, None)
        source = f"{source}:last{settings.train_window_days:g}d"
    log.info(
        "fitting the default model '%s' on %s (%d of %d interactions)",
        name,
        source,
        len(dataset.interactions),
        full,
    )
    start = time.perf_counter()
    model: Recommender[ModelConfig] = create_model(name, dict(settings.default_model_params)).fit(
        dataset
    )
    fit_s = time.perf_counter() - start
    stamp = time.strftime("%Y%m%dT%H%M%S")
    directory = Path(settings.artifacts_dir) / f"{name}-{stamp}-{uuid.uuid4().hex[:6]}"
    model.save(directory)
    metrics: dict[str, object] = {
        "fit_seconds": round(fit_s, 3),
        "n_users": len(dataset.users),
        "n_items": len(dataset.items),
        "n_interactions": len(dataset.interactions),
        "trained_on": source,
    }
    from serendip.pipeline.serving import serving_model
    from serendip.serving.precompute import build_ranked_lists, fingerprint

    serving = serving_model(model)
    if settings.precompute_lists and serving.caches_candidates:
        start = time.perf_counter()
        lists = build_ranked_lists(
            serving,
            fingerprint=fingerprint(directory),
            workers=settings.precompute_workers,
            directory=directory,
            adapter=serving_model,
            progress=_progress("precomputing ranked candidates"),
        )
        if lists is not None:
            lists.save(directory)
            metrics["lists_seconds"] = round(time.perf_counter() - start, 3)
            log.info("precomputed lists: %d users, %.0f MB", len(lists), lists.nbytes / 2**20)
    return store.models.register(name, str(directory.resolve()), metrics)


def _progress(what: str) -> Callable[[int, int], None]:
    """A progress callback that logs about every 10%."""
    last = [-1]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            log.info("%s: %d / %d", what, done, total)

    return report


def run_bootstrap(
    store: Store,
    runtime: ModelRuntime,
    settings: Settings,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> str | None:
    """Fill an empty store, fit, register, activate and load the default model; its version.

    None when stopped early (server shutting down)."""
    start = time.perf_counter()
    if store.events.count() == 0:
        dataset = _synthetic(settings)
        if should_stop():
            return None
        log.info("first start: importing %d interactions into the store", len(dataset.interactions))
        counts = store.import_dataset(dataset)
        log.info("imported %s", counts)
        source = f"synthetic:{settings.bootstrap_preset}:seed{settings.bootstrap_seed}"
    else:
        since = None
        if settings.train_window_days is not None:
            # only the window is read: the store may hold far more events than a fit needs
            newest = store.events.newest_timestamp()
            if newest is not None:
                since = newest - settings.train_window_days * 86_400.0
        dataset = store.to_dataset(since=since)
        source = "store"
    if should_stop():
        return None
    version = fit_and_register(store, dataset, settings, source=source)
    runtime.load(Path(version.path), version.version)
    store.models.activate(version.version)
    log.info(
        "first start done in %.1f s: model %s (%s) serving",
        time.perf_counter() - start,
        version.version,
        version.name,
    )
    return str(version.version)
