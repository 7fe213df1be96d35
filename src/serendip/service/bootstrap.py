"""First start: give a newcomer a working system at once.

With an empty store, generate the synthetic platform of `settings.bootstrap_preset` (kept under
`<artifacts_dir>/../bootstrap/` and reused on the next empty start), import it into the store,
fit the default model, register it as a model version, activate it and load it. With a store
that has data but no model version, fit the default model on the stored data instead.

The default model is `pipeline` (the two-stage recommender) when this installation has it, else
item-kNN: it explains every item by the user's own history ("because you liked X"), scales with
sparse top-k similarities, and reacts to a new event without a refit, which makes the demo of
real-time recommendations with reasons honest.

The pipeline's fit takes minutes on a small machine. So that a first start answers at once, a
fast model (`settings.bootstrap_fast_model`, item-kNN by default: seconds on the `small` preset)
is fitted, registered and activated first; the default model is fitted next and hot-swapped in
when its fit ends. `BootstrapStatus` tells `/readyz` which stage the first start is in.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from serendip.errors import ConfigError
from serendip.service.settings import Settings

if TYPE_CHECKING:  # imported where used: the first start is the only caller
    from serendip.data.dataset import Dataset
    from serendip.models.base import ModelConfig, Recommender
    from serendip.service.runtime import ModelRuntime
    from serendip.store import ModelVersion, Store

__all__ = [
    "BootstrapStatus",
    "default_model_name",
    "fit_and_register",
    "is_stand_in",
    "resume_upgrade",
    "run_bootstrap",
]

log = logging.getLogger("serendip.service")

FALLBACK_MODEL = "item-knn"


@dataclass
class BootstrapStatus:
    """What the first start is doing, for `/readyz`: written by the bootstrap thread, read by
    requests (each field is replaced whole, so a reader sees an old or a new value, never half)."""

    #: the stage and when it began (`time.monotonic()`); None when the first start is not running
    current: tuple[str, float] | None = None
    #: progress inside the stage, e.g. "2000 / 5000 users"
    detail: str | None = None
    #: the default model being fitted while a fast model serves
    upgrading_to: str | None = None

    def enter(self, stage: str | None) -> None:
        self.detail = None
        self.current = None if stage is None else (stage, time.monotonic())

    def describe(self) -> str | None:
        """E.g. "fitting the default model 'pipeline' (34 s so far)"; None when idle."""
        current, detail = self.current, self.detail
        if current is None:
            return None
        stage, since = current
        text = f"{stage} ({time.monotonic() - since:.0f} s so far)"
        return f"{text}: {detail}" if detail else text


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
    store: Store,
    dataset: Dataset,
    settings: Settings,
    *,
    source: str,
    model_name: str | None = None,
    params: Mapping[str, object] | None = None,
    status: BootstrapStatus | None = None,
) -> ModelVersion:
    """Fit the default model (or `model_name` with `params`) on `dataset` (its last
    `train_window_days` when set), save it under `artifacts_dir` with its precomputed serving
    lists (pipeline), register it. Returns the registered `ModelVersion` (not yet active)."""
    import numpy as np

    from serendip.models.registry import create_model

    if model_name is None:
        name = default_model_name(settings.default_model)
        params = settings.default_model_params
    else:
        name = default_model_name(model_name)
    role = "the default model" if model_name is None else "the fast model"
    full = len(dataset.interactions)
    if settings.train_window_days is not None and dataset.interactions.has_timestamps:
        end = float(np.nanmax(dataset.interactions.timestamp))
        dataset = dataset.between(end - settings.train_window_days * 86_400.0, None)
        source = f"{source}:last{settings.train_window_days:g}d"
    log.info(
        "fitting %s '%s' on %s (%d of %d interactions)",
        role,
        name,
        source,
        len(dataset.interactions),
        full,
    )
    if status is not None:
        status.enter(f"fitting {role} '{name}'")
    start = time.perf_counter()
    model: Recommender[ModelConfig] = create_model(name, dict(params or {})).fit(dataset)
    fit_s = time.perf_counter() - start
    log.info("fitted %s '%s' in %.1f s", role, name, fit_s)
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
    if model_name is not None:  # a fast model serving until the default model's fit ends
        metrics["stand_in_for"] = default_model_name(settings.default_model)
    from serendip.pipeline.serving import serving_model
    from serendip.serving.precompute import build_ranked_lists, fingerprint

    serving = serving_model(model)
    if settings.precompute_lists and serving.caches_candidates:
        if status is not None:
            status.enter(f"precomputing the ranked candidates of '{name}'")
        start = time.perf_counter()
        lists = build_ranked_lists(
            serving,
            fingerprint=fingerprint(directory),
            workers=settings.precompute_workers,
            directory=directory,
            adapter=serving_model,
            progress=_progress("precomputing ranked candidates", status),
        )
        if lists is not None:
            lists.save(directory)
            metrics["lists_seconds"] = round(time.perf_counter() - start, 3)
            log.info("precomputed lists: %d users, %.0f MB", len(lists), lists.nbytes / 2**20)
    return store.models.register(name, str(directory.resolve()), metrics)


def _progress(what: str, status: BootstrapStatus | None = None) -> Callable[[int, int], None]:
    """A progress callback that logs about every 10% (and shows each step in `status`)."""
    last = [-1]

    def report(done: int, total: int) -> None:
        if status is not None:
            status.detail = f"{done} / {total}"
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
    status: BootstrapStatus | None = None,
) -> str | None:
    """Fill an empty store, fit, register, activate and load the default model; its version.

    With `settings.bootstrap_fast_model` set and different from the default model, that model is
    fitted and activated first, so requests are answered within seconds, and the default model
    replaces it when its fit ends. None when stopped before any model served (server shutting
    down)."""
    status = status if status is not None else BootstrapStatus()
    start = time.perf_counter()
    try:
        if store.events.count() == 0:
            status.enter(f"generating the '{settings.bootstrap_preset}' synthetic platform")
            dataset = _synthetic(settings)
            if should_stop():
                return None
            n = len(dataset.interactions)
            log.info("first start: importing %d interactions into the store", n)
            status.enter(f"importing {n} interactions into the store")
            counts = store.import_dataset(dataset)
            log.info("imported %s", counts)
            source = f"synthetic:{settings.bootstrap_preset}:seed{settings.bootstrap_seed}"
        else:
            status.enter("reading the stored events")
            dataset, source = _stored(store, settings), "store"
        if should_stop():
            return None
        name = default_model_name(settings.default_model)
        fast = _fast_model(settings, name)
        serving: ModelVersion | None = None
        if fast is not None:
            serving = _serve_fast(store, runtime, settings, dataset, fast, source, status)
            if serving is not None:
                log.info(
                    "first start: %s (%s) serving after %.1f s",
                    serving.version,
                    serving.name,
                    time.perf_counter() - start,
                )
            if should_stop():
                return None if serving is None else str(serving.version)
        return _fit_default(store, runtime, settings, dataset, source, serving, status, start)
    finally:
        status.upgrading_to = None
        status.enter(None)


def resume_upgrade(
    store: Store,
    runtime: ModelRuntime,
    settings: Settings,
    serving: ModelVersion,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    status: BootstrapStatus | None = None,
) -> str | None:
    """After a restart that loaded a fast model standing in for the default one (the process
    stopped before the default model's fit ended): fit the default model on the stored events
    and swap it in. The version serving at the end."""
    status = status if status is not None else BootstrapStatus()
    start = time.perf_counter()
    try:
        log.info(
            "model %s (%s) stands in for '%s', whose fit did not end: fitting it now",
            serving.version,
            serving.name,
            serving.metrics.get("stand_in_for"),
        )
        status.upgrading_to = default_model_name(settings.default_model)
        status.enter("reading the stored events")
        dataset = _stored(store, settings)
        if should_stop():
            return str(serving.version)
        return _fit_default(store, runtime, settings, dataset, "store", serving, status, start)
    finally:
        status.upgrading_to = None
        status.enter(None)


def is_stand_in(version: ModelVersion, settings: Settings) -> bool:
    """Whether `version` is a first start's fast model for this settings' default model."""
    wanted = version.metrics.get("stand_in_for")
    return wanted is not None and wanted == default_model_name(settings.default_model)


def _stored(store: Store, settings: Settings) -> Dataset:
    since = None
    if settings.train_window_days is not None:
        # only the window is read: the store may hold far more events than a fit needs
        newest = store.events.newest_timestamp()
        if newest is not None:
            since = newest - settings.train_window_days * 86_400.0
    return store.to_dataset(since=since)


def _fit_default(
    store: Store,
    runtime: ModelRuntime,
    settings: Settings,
    dataset: Dataset,
    source: str,
    serving: ModelVersion | None,
    status: BootstrapStatus,
    start: float,
) -> str | None:
    """Fit the default model, load and activate it (replacing `serving`, the fast model, unless
    an operator activated another version meanwhile); the version serving at the end."""
    name = default_model_name(settings.default_model)
    if serving is not None:
        status.upgrading_to = name
    try:
        version = fit_and_register(store, dataset, settings, source=source, status=status)
    except Exception:
        if serving is None:
            raise
        log.exception(
            "first start: fitting the default model '%s' failed; %s (%s) keeps serving",
            name,
            serving.version,
            serving.name,
        )
        return str(serving.version)
    if serving is not None:
        active = store.models.active()
        if active is None or active.version != serving.version:  # an operator chose meanwhile
            log.info(
                "first start: %s (%s) registered, not activated: version %s was activated "
                "meanwhile",
                version.version,
                version.name,
                None if active is None else active.version,
            )
            return None if active is None else str(active.version)
    status.enter(f"loading the default model '{name}'")
    runtime.load(Path(version.path), version.version)
    status.upgrading_to = None
    store.models.activate(version.version)
    if serving is not None:
        log.info(
            "first start: swapped %s (%s) for %s (%s)",
            serving.version,
            serving.name,
            version.version,
            version.name,
        )
    log.info(
        "first start done in %.1f s: model %s (%s) serving",
        time.perf_counter() - start,
        version.version,
        version.name,
    )
    return str(version.version)


def _fast_model(settings: Settings, default: str) -> str | None:
    """The model to serve while the default one fits: None when unset, unknown, or the same."""
    fast = settings.bootstrap_fast_model
    if not fast or fast == default:
        return None
    try:
        return default_model_name(fast)
    except ConfigError as exc:
        log.warning("first start: no fast model (%s)", exc)
        return None


def _serve_fast(
    store: Store,
    runtime: ModelRuntime,
    settings: Settings,
    dataset: Dataset,
    name: str,
    source: str,
    status: BootstrapStatus,
) -> ModelVersion | None:
    """Fit, register, load and activate the fast model `name`; its version, or None when any
    step fails (logged: the first start goes on with the default model alone)."""
    try:
        version = fit_and_register(
            store, dataset, settings, source=source, model_name=name, status=status
        )
        status.enter(f"loading the fast model '{name}'")
        # set before the swap: no reader sees the fast model serving without the upgrade to come
        status.upgrading_to = default_model_name(settings.default_model)
        runtime.load(Path(version.path), version.version)
        store.models.activate(version.version)
    except Exception:
        status.upgrading_to = None
        log.exception("first start: the fast model '%s' failed; fitting the default model", name)
        return None
    return version
