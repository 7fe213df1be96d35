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
from typing import Any

from serendip.errors import ConfigError
from serendip.service.settings import Settings

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


def _synthetic(settings: Settings) -> Any:
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


def fit_and_register(store: Any, dataset: Any, settings: Settings, *, source: str) -> Any:
    """Fit the default model on `dataset`, save it under `artifacts_dir`, register it. Returns
    the registered `ModelVersion` (not yet active)."""
    from serendip.models.registry import create_model

    name = default_model_name(settings.default_model)
    log.info("fitting the default model '%s' on %s", name, source)
    start = time.perf_counter()
    model = create_model(name).fit(dataset)
    fit_s = time.perf_counter() - start
    stamp = time.strftime("%Y%m%dT%H%M%S")
    directory = Path(settings.artifacts_dir) / f"{name}-{stamp}-{uuid.uuid4().hex[:6]}"
    model.save(directory)
    metrics = {
        "fit_seconds": round(fit_s, 3),
        "n_users": len(dataset.users),
        "n_items": len(dataset.items),
        "n_interactions": len(dataset.interactions),
        "trained_on": source,
    }
    return store.models.register(name, str(directory.resolve()), metrics)


def run_bootstrap(
    store: Any,
    runtime: Any,
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
        dataset = store.to_dataset()
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
