"""Prometheus metrics of one app, in its own `CollectorRegistry` (two apps in one process, as in
the tests, never share or collide).

Under `serve --workers` (prometheus_client's multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` set
before the worker starts) every worker writes its values to memory-mapped files in that
directory and `render` sums them over the live workers, so a scrape that reaches any worker
sees the whole server: counters and histograms add up, the serving-path counts add up, and
the model and monitor gauges take the live workers' maximum or most recent value.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Protocol, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = ["CONTENT_TYPE_LATEST", "MonitorReading", "ServiceMetrics"]


class MonitorReading(Protocol):
    """What the monitor gauges read of one monitor (`serendip.operations.MonitorResult`)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def out_of_bounds(self) -> bool: ...


# Latency buckets in seconds, dense around the 10-100 ms the recommendations target.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """Request latency per route, errors, recommendations served, events ingested (accepted,
    duplicates), exposures logged (per experiment and variant), the active model (version,
    name, age since its fit), model swaps, the candidate-source mix, and the live monitors'
    values (`serendip.operations.monitors`) with whether each is out of bounds."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        #: several worker processes share the values (see the module docstring)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.latency = Histogram(
            "serendip_http_request_duration_seconds",
            "Time to answer a request, by route template and method.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "serendip_http_errors_total",
            "Responses with status >= 400, by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.recommendations = Counter(
            "serendip_recommendations_served_total",
            "Recommendation lists served, by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.recommended_items = Counter(
            "serendip_recommended_items_total",
            "Items returned in recommendation lists.",
            registry=r,
        )
        self.events = Counter(
            "serendip_events_ingested_total",
            "Events stored, by outcome (accepted or duplicate).",
            ["outcome"],
            registry=r,
        )
        self.model_version = Gauge(
            "serendip_model_version_info",
            "1 for the model version serving now.",
            ["version"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_swaps = Counter(
            "serendip_model_swaps_total",
            "Model activations, by outcome (ok or failed).",
            ["outcome"],
            registry=r,
        )
        self.sources = Counter(
            "serendip_candidate_source_items_total",
            "Recommended items by the candidate source that proposed them.",
            ["source"],
            registry=r,
        )
        self.exposures = Counter(
            "serendip_exposures_logged_total",
            "Served lists logged as exposures, by experiment and variant (empty: none).",
            ["experiment", "variant"],
            registry=r,
        )
        self.model_info = Gauge(
            "serendip_model_info",
            "1 for the model serving now, with its version and model name.",
            ["version", "model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_registered = Gauge(
            "serendip_model_registered_timestamp_seconds",
            "When the serving model version was fitted and registered (epoch seconds).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self._model_registered_at: float | None = None
        self._monitor_labels: set[tuple[str, str]] = set()
        self._path_labels: set[str] = set()
        self.described_version: str | None = None
        self.model_age = Gauge(
            "serendip_model_age_seconds",
            "Seconds since the serving model version was fitted and registered (-1: unknown).",
            registry=r,
            multiprocess_mode="livemax",
        )
        if not self.multiprocess:  # there, `render` sets it (values live in files)
            self.model_age.set_function(self._model_age)
        self.monitor_value = Gauge(
            "serendip_monitor_value",
            "Last value of each live quality and drift monitor (absent: too little data).",
            ["monitor", "kind"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.monitor_out = Gauge(
            "serendip_monitor_out_of_bounds",
            "1 when the monitor's last value was outside its thresholds, else 0.",
            ["monitor"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.monitor_runs = Counter(
            "serendip_monitor_runs_total",
            "Times the monitors were computed.",
            registry=r,
        )
        self.monitor_last_run = Gauge(
            "serendip_monitor_last_run_timestamp_seconds",
            "When the monitors were last computed (epoch seconds).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.serving_paths = Gauge(
            "serendip_recommend_path_requests",
            "Personal recommendations the active model version served per path since it was "
            "loaded: hit (cached list), precomputed (the lists saved with the model), "
            "incremental (precomputed candidates updated with live events), full (every source).",
            ["path"],
            registry=r,
            multiprocess_mode="livesum",
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def set_model_version(
        self, version: str | None, *, model: str | None = None, registered_at: float | None = None
    ) -> None:
        """The version serving now; with its model name and registration time when known (a
        call naming the version already described, without them, keeps them: `/metrics` calls
        this with the runtime's version on every scrape)."""
        if model is None and version is not None and version == self.described_version:
            return
        self._reset(self.model_version)
        self._reset(self.model_info)
        self._model_registered_at = registered_at
        #: the version whose model name and age the gauges carry (None: not known)
        self.described_version = version if model is not None else None
        self.model_registered.set(registered_at or 0.0)
        if version is not None:
            self.model_version.labels(version).set(1)
            self.model_info.labels(version, model or "").set(1)

    def _model_age(self) -> float:
        at = self._model_registered_at
        return -1.0 if at is None else max(0.0, time.time() - at)

    def observe_ingest(self, accepted: int, duplicates: int) -> None:
        """Events stored and events skipped as already stored."""
        self.events.labels("accepted").inc(accepted)
        self.events.labels("duplicate").inc(duplicates)

    def observe_exposures(
        self, n: int = 1, *, experiment: str | None = None, variant: str | None = None
    ) -> None:
        """`n` served lists logged as exposures (of `experiment`'s `variant` when in one)."""
        self.exposures.labels(experiment or "", variant or "").inc(n)

    def observe_monitors(self, readings: Iterable[MonitorReading]) -> None:
        """The monitors' latest values (a monitor without a value drops its gauge)."""
        self.monitor_runs.inc()
        self.monitor_last_run.set(time.time())
        for r in readings:
            if r.value is None:
                if (r.name, r.kind) in self._monitor_labels:
                    if self.multiprocess:  # a file keeps the last value: make it NaN
                        self.monitor_value.labels(r.name, r.kind).set(float("nan"))
                    self.monitor_value.remove(r.name, r.kind)
                    self._monitor_labels.discard((r.name, r.kind))
            else:
                self.monitor_value.labels(r.name, r.kind).set(r.value)
                self._monitor_labels.add((r.name, r.kind))
            self.monitor_out.labels(r.name).set(1.0 if r.out_of_bounds else 0.0)

    def observe_recommendations(
        self, endpoint: str, explanations: Iterable[Mapping[str, object] | None], n_items: int
    ) -> None:
        self.recommendations.labels(endpoint).inc()
        self.recommended_items.inc(n_items)
        for source in _sources(explanations):
            self.sources.labels(source).inc()

    def set_serving_paths(self, paths: Mapping[str, int]) -> None:
        """The active version's requests per serving path (`SnapshotCache.paths`). Under
        `serve --workers` each recommendation calls this (its worker's share of the sum), so
        only the paths that went away are zeroed, not every label walked."""
        if self.multiprocess:
            for gone in self._path_labels - paths.keys():
                self.serving_paths.labels(gone).set(0)
        else:
            self.serving_paths.clear()
        self._path_labels = set(paths)
        for path, n in paths.items():
            self.serving_paths.labels(path).set(n)

    def _reset(self, gauge: Gauge) -> None:
        """Drop every label of `gauge`. In multiprocess mode a worker's file keeps each label
        it ever set (prometheus_client cannot clear there), so they are set to 0 instead."""
        if not self.multiprocess:
            gauge.clear()
            return
        for metric in gauge.collect():
            for sample in metric.samples:
                gauge.labels(*sample.labels.values()).set(0)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        self.model_age.set(self._model_age())
        summed = CollectorRegistry()
        multiprocess.MultiProcessCollector(summed)  # type: ignore[no-untyped-call]
        return generate_latest(summed)


def _sources(explanations: Iterable[Mapping[str, object] | None]) -> Iterable[str]:
    """The candidate source of each item, from its explanation (`source` / `sources`, or
    evidence of kind `source`); `model` when the serving model is a single model."""
    for exp in explanations:
        if not exp:
            yield "model"
            continue
        src = exp.get("source") or exp.get("sources")
        if isinstance(src, str):
            yield src[:64]
            continue
        if isinstance(src, (list, tuple)) and src:
            first = src[0]
            yield str(first.get("name", first) if isinstance(first, Mapping) else first)[:64]
            continue
        evidence = cast(Iterable[object], exp.get("evidence", ()))  # a list in every explanation
        ev = [e for e in evidence if isinstance(e, Mapping)]
        named = [e.get("id") for e in ev if e.get("kind") == "source"]
        yield str(named[0])[:64] if named else str(exp.get("model", "model"))[:64]
