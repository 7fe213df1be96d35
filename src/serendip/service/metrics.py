"""Prometheus metrics of one app, in its own `CollectorRegistry` (two apps in one process, as in
the tests, never share or collide)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

# Latency buckets in seconds, dense around the 10-100 ms the recommendations target.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """Request latency per route, errors, recommendations served, events ingested, the active
    model version and the candidate-source mix."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def set_model_version(self, version: str | None) -> None:
        self.model_version.clear()
        if version is not None:
            self.model_version.labels(version).set(1)

    def observe_recommendations(
        self, endpoint: str, explanations: Iterable[Mapping[str, object] | None], n_items: int
    ) -> None:
        self.recommendations.labels(endpoint).inc()
        self.recommended_items.inc(n_items)
        for source in _sources(explanations):
            self.sources.labels(source).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


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
