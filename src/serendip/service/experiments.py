"""The service side of online experiments: which list a user is served while an experiment
runs, the exposure log, and the experiment lifecycle the API and the CLI share.

- **Routing** (`ExperimentService.serve`): the running experiment is read from the store (and
  re-read every `refresh_s`, so a start or stop in another worker process or from the CLI takes
  effect everywhere within that time). In an A/B experiment a user's variant is
  `assign(user, salt, shares)` -- a pure function, so every process agrees -- and their list
  comes from the variant's model version, loaded next to the active one
  (`ModelRuntime.variant`). A variant whose version cannot be loaded falls back to the active
  version, and the log says so once per version. In an interleaving experiment the list is the
  team draft of the two variants' lists, seeded by the request ID (so a logged list can be
  rebuilt), logged with the contributing variant of every item. Users who turned
  personalization off are in no experiment: they get the non-personalized list.
- **Exposures** (`ExposureLog`): every served list (request ID, user, surface, items in
  order, model version, experiment, variant, teams, time served) is appended to an in-memory
  buffer -- a request never waits for the database -- and written in batches by a background
  thread, and at shutdown.
- **Lifecycle** (`create_experiment`, `start_experiment`, `stop_experiment`,
  `experiment_results`): the spec is validated (`serendip.experiments.spec`), variants must
  name registered model versions, one experiment runs at a time; results analyse the
  experiment's exposures and the events of its period (`serendip.experiments.analysis`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from serendip.errors import DataError, SerendipError
from serendip.experiments.assignment import assign
from serendip.experiments.interleaving import TEAMS, team_draft
from serendip.experiments.spec import ExperimentSpec, parse_spec
from serendip.service.metrics import ServiceMetrics
from serendip.service.runtime import ModelRuntime
from serendip.serving.contract import RecItem
from serendip.serving.serve import Snapshot
from serendip.store import Store
from serendip.store.operations import Experiment, Exposure, ExposureIn
from serendip.store.types import Event, NotFoundError

__all__ = [
    "ExperimentService",
    "ExposureLog",
    "Running",
    "Served",
    "create_experiment",
    "experiment_results",
    "running_experiment",
    "start_experiment",
    "stop_experiment",
]

_log = logging.getLogger("serendip.service")

#: the surface of a user's recommendations (the one experiments run on)
USER_SURFACE = "user"


class ConflictError(SerendipError):
    """The experiment cannot move as asked (another one runs, a variant cannot load): 409."""


# ----------------------------------------------------------------------------- exposure log
class ExposureLog:
    """A buffer of served lists, written to `store.exposures` in batches by a daemon thread.

    `add` appends to a deque (atomic under the GIL, no lock, no I/O); the writer wakes every
    `interval_s`, or at once when `batch` exposures wait, and writes up to `batch` per
    transaction. A failed write (the database away) keeps the exposures for the next try; more
    than `max_pending` waiting drops the oldest, counted in `dropped` and logged. `close`
    stops the writer and writes what is left.
    """

    def __init__(
        self,
        store: Store,
        *,
        interval_s: float = 0.5,
        batch: int = 1_000,
        max_pending: int = 200_000,
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.batch = batch
        self.max_pending = max_pending
        self.written = 0
        self.dropped = 0
        self._pending: collections.deque[ExposureIn] = collections.deque()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def add(self, exposure: ExposureIn) -> None:
        """Queue one served list (stamped with its time now when `at` is None)."""
        if exposure.at is None:
            exposure = ExposureIn(
                exposure.request_id,
                exposure.user,
                exposure.surface,
                exposure.items,
                exposure.model_version,
                exposure.experiment,
                exposure.variant,
                exposure.teams,
                time.time(),
            )
        self._pending.append(exposure)
        if self._thread is None:
            self._start()
        if len(self._pending) >= self.batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="serendip-exposures", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write everything queued now; returns the exposures written."""
        done = 0
        with self._flush_lock:
            while self._pending:
                chunk: list[ExposureIn] = []
                while self._pending and len(chunk) < self.batch:
                    chunk.append(self._pending.popleft())
                try:
                    self.store.exposures.add_many(chunk)
                except DataError as exc:  # a malformed row: retrying cannot help
                    self.dropped += len(chunk)
                    _log.error("dropped %d exposures the store refused: %s", len(chunk), exc)
                    continue
                except Exception:
                    self._pending.extendleft(reversed(chunk))
                    excess = len(self._pending) - self.max_pending
                    for _ in range(max(0, excess)):
                        self._pending.popleft()
                    self.dropped += max(0, excess)
                    _log.exception("writing exposures failed; %d wait", len(self._pending))
                    break
                done += len(chunk)
                self.written += len(chunk)
        return done

    def close(self) -> None:
        """Stop the writer, then write what is left."""
        self._closed.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=30.0)
        self.flush()


# ----------------------------------------------------------------------------- routing
@dataclass(frozen=True, slots=True)
class Running:
    """The running experiment as routing needs it."""

    experiment_id: str
    spec: ExperimentSpec
    #: variant name -> model version (None: the active version)
    versions: Mapping[str, str | None]

    @property
    def kind(self) -> str:
        return self.spec.kind


@dataclass(frozen=True, slots=True)
class Served:
    """One served list and what produced it."""

    recs: list[RecItem]
    model_version: str | None
    experiment: str | None = None
    variant: str | None = None
    teams: tuple[str, ...] = ()


#: recommend(snapshot) -> the request's list from that version (the route binds the filters)
Recommend = Callable[[Snapshot | None], list[RecItem]]


def running_experiment(store: Store) -> Running | None:
    """The experiment running now (the first started, if the store holds several)."""
    running = sorted(store.experiments.list("running"), key=lambda e: e.started_at or 0.0)
    if not running:
        return None
    exp = running[0]
    spec = parse_spec(exp.spec)
    return Running(exp.experiment_id, spec, {v.name: v.model_version for v in spec.variants})


class ExperimentService:
    """Routing and exposure logging for one app (its store and runtime)."""

    def __init__(
        self,
        store: Store,
        runtime: ModelRuntime,
        *,
        log_exposures: bool = True,
        refresh_s: float = 2.0,
        exposure_interval_s: float = 0.5,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        #: counts the logged exposures per experiment and variant (`/metrics`)
        self.metrics = metrics
        self.refresh_s = refresh_s
        self.exposures: ExposureLog | None = (
            ExposureLog(store, interval_s=exposure_interval_s) if log_exposures else None
        )
        self._running: Running | None = None
        self._read_at = -float("inf")
        self._refresh_lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ the running experiment
    def current(self) -> Running | None:
        """The running experiment, re-read from the store every `refresh_s`."""
        if time.monotonic() - self._read_at < self.refresh_s:
            return self._running
        with self._refresh_lock:
            if time.monotonic() - self._read_at >= self.refresh_s:
                self._refresh()
        return self._running

    def _refresh(self) -> None:
        try:
            running = running_experiment(self.store)
        except Exception:  # a stored spec this code cannot read, the database away: no test
            _log.exception("reading the running experiment failed; serving without one")
            running = None
        previous = self._running
        self._running, self._read_at = running, time.monotonic()
        if _versions(running) != _versions(previous):
            self.runtime.pin(_versions(running))

    def invalidate(self) -> None:
        """Re-read the running experiment now (after a start or stop)."""
        with self._refresh_lock:
            self._refresh()

    # ------------------------------------------------------------------ serving
    def serve(
        self, user: str, k: int, *, request_id: str, recommend: Recommend, log: bool = True
    ) -> Served:
        """The user's list: from their variant while an experiment runs, else the active
        version's; logged as an exposure (surface "user") when `log`."""
        exp = self.current()
        if exp is None or not self.runtime.personalized(user):
            snap = self.runtime.snapshot
            served = Served(recommend(snap), None if snap is None else snap.version)
        elif exp.kind == "interleaving":
            served = self._interleaved(exp, k, request_id, recommend)
        else:
            variant = assign(user, exp.spec.salt, exp.spec.shares)
            snap = self._snapshot(exp, variant)
            served = Served(
                recommend(snap), None if snap is None else snap.version, exp.experiment_id, variant
            )
        if log:
            self.log(request_id, user, USER_SURFACE, served)
        return served

    def _interleaved(self, exp: Running, k: int, request_id: str, recommend: Recommend) -> Served:
        (name_a, _), (name_b, _) = exp.spec.shares
        snap_a, snap_b = self._snapshot(exp, name_a), self._snapshot(exp, name_b)
        list_a, list_b = recommend(snap_a), recommend(snap_b)
        items, teams = team_draft(
            [r.item for r in list_a], [r.item for r in list_b], k, seed=request_id
        )
        by_team = {TEAMS[0]: {r.item: r for r in list_a}, TEAMS[1]: {r.item: r for r in list_b}}
        recs = [by_team[team][item] for item, team in zip(items, teams, strict=True)]
        names = {TEAMS[0]: name_a, TEAMS[1]: name_b}
        versions = [s.version for s in (snap_a, snap_b) if s is not None]
        return Served(
            recs,
            "+".join(versions) or None,
            exp.experiment_id,
            None,
            tuple(names[t] for t in teams),
        )

    def _snapshot(self, exp: Running, variant: str) -> Snapshot | None:
        """The variant's version, loaded next to the active one; the active one (and a log
        line, once per version) when it cannot be loaded."""
        version = exp.versions.get(variant)
        if version is None:
            return self.runtime.snapshot
        try:
            return self.runtime.variant(version)
        except SerendipError as exc:
            if (exp.experiment_id, version) not in self._warned:
                self._warned.add((exp.experiment_id, version))
                _log.warning(
                    "experiment %s: variant '%s' (model version %s) cannot be served, its users "
                    "get the active version %s: %s",
                    exp.experiment_id,
                    variant,
                    version,
                    self.runtime.active_version,
                    exc,
                )
            return self.runtime.snapshot

    def log(self, request_id: str, user: str, surface: str, served: Served) -> None:
        """Queue the served list as an exposure (no-op when exposures are not logged)."""
        if self.exposures is None or not served.recs:
            return
        self.exposures.add(
            ExposureIn(
                request_id,
                user,
                surface,
                tuple(r.item for r in served.recs),
                served.model_version,
                served.experiment,
                served.variant,
                served.teams,
            )
        )
        if self.metrics is not None:
            self.metrics.observe_exposures(1, experiment=served.experiment, variant=served.variant)

    def close(self) -> None:
        if self.exposures is not None:
            self.exposures.close()

    # ------------------------------------------------------------------ lifecycle over the API
    def start(self, experiment_id: str) -> Experiment:
        """`start_experiment`, after loading every variant's version into this runtime (a
        version that cannot load refuses the start: ConflictError, the experiment stays a
        draft)."""
        exp = _get(self.store, experiment_id)
        spec = parse_spec(exp.spec)
        for v in spec.variants:
            if v.model_version is None:
                continue
            try:
                self.runtime.variant(v.model_version, self._path(v.model_version))
            except SerendipError as exc:
                raise ConflictError(
                    f"experiment '{experiment_id}' was not started: variant '{v.name}' "
                    f"cannot be served: {exc}"
                ) from None
        started = start_experiment(self.store, experiment_id)
        self.invalidate()
        return started

    def _path(self, version: str) -> str:
        registered = self.store.models.get(version)
        if registered is None:
            raise DataError(f"no model version '{version}' is registered", field="model_version")
        return str(registered.path)

    def stop(self, experiment_id: str) -> Experiment:
        stopped = stop_experiment(self.store, experiment_id)
        self.invalidate()
        return stopped

    def results(self, experiment_id: str, *, now: float | None = None) -> dict[str, object]:
        """`experiment_results`, after writing this process's queued exposures."""
        if self.exposures is not None:
            self.exposures.flush()
        return experiment_results(self.store, experiment_id, now=now)


def _versions(running: Running | None) -> frozenset[str]:
    if running is None:
        return frozenset()
    return frozenset(v for v in running.versions.values() if v is not None)


# ----------------------------------------------------------------------------- lifecycle
def _get(store: Store, experiment_id: str) -> Experiment:
    exp = store.experiments.get(experiment_id)
    if exp is None:
        raise NotFoundError(f"no experiment '{experiment_id}'")
    return exp


def create_experiment(store: Store, experiment_id: str, spec: Mapping[str, object]) -> Experiment:
    """Validate `spec` (`ExperimentSpec`: ConfigError naming every problem), check that every
    variant's model version is registered (DataError), and store a draft. The stored spec
    carries the salt (a fresh one unless given), so assignment never changes afterwards."""
    parsed = parse_spec(spec)
    for v in parsed.variants:
        if v.model_version is not None and store.models.get(v.model_version) is None:
            raise DataError(
                f"variant '{v.name}': no model version '{v.model_version}' is registered",
                field="model_version",
            )
    if store.experiments.get(experiment_id) is not None:
        raise ConflictError(f"experiment '{experiment_id}' exists")
    return store.experiments.create(experiment_id, parsed.kind, parsed.to_json())


def start_experiment(store: Store, experiment_id: str) -> Experiment:
    """draft -> running; ConflictError while another experiment runs (one at a time: a user
    is in at most one test) or when this one is not a draft."""
    exp = _get(store, experiment_id)
    if exp.status != "draft":
        raise ConflictError(f"experiment '{experiment_id}' is {exp.status}; only a draft starts")
    others = [e.experiment_id for e in store.experiments.list("running")]
    if others:
        raise ConflictError(
            f"experiment '{others[0]}' is running; stop it before starting '{experiment_id}'"
        )
    return store.experiments.start(experiment_id)


def stop_experiment(store: Store, experiment_id: str) -> Experiment:
    """running -> stopped; ConflictError when it is not running."""
    exp = _get(store, experiment_id)
    if exp.status != "running":
        raise ConflictError(
            f"experiment '{experiment_id}' is {exp.status}; only a running one stops"
        )
    return store.experiments.stop(experiment_id)


def period_data(
    store: Store, exp: Experiment, spec: ExperimentSpec, *, now: float | None = None
) -> tuple[list[Exposure], list[Event], list[Event]]:
    """The experiment's exposures, the events of its period (until the stop plus the
    attribution window, or now) and the pre-period events (one period's length before the
    start, for CUPED)."""
    if exp.started_at is None:
        raise ConflictError(f"experiment '{exp.experiment_id}' has not started; no results yet")
    now = time.time() if now is None else now
    end = min(now, exp.stopped_at + spec.window_s) if exp.stopped_at is not None else now
    length = max(0.0, (exp.stopped_at or now) - exp.started_at)
    exposures = store.exposures.between(
        exp.started_at, exp.stopped_at, experiment=exp.experiment_id
    )
    pre_start = exp.started_at - max(length, spec.window_s)
    events: list[Event] = []
    pre: list[Event] = []
    for e in store.events.since(pre_start):
        if e.timestamp < exp.started_at:
            pre.append(e)
        elif e.timestamp <= end:
            events.append(e)
    return exposures, events, pre


def experiment_results(
    store: Store, experiment_id: str, *, now: float | None = None
) -> dict[str, object]:
    """The analysis of the experiment so far (or of its whole run once stopped):
    `serendip.experiments.analysis` over its exposures and its period's events."""
    from serendip.experiments import analysis

    exp = _get(store, experiment_id)
    spec = parse_spec(exp.spec)
    exposures, events, pre = period_data(store, exp, spec, now=now)
    if spec.kind == "interleaving":
        (name_a, _), (name_b, _) = spec.shares
        return analysis.analyze_interleaving(
            exposures,
            events,
            spec.window_s,
            metric=spec.primary_metric,
            rankers=(name_a, name_b),  # the teams are logged as the variants' names
            alpha=spec.alpha,
        ).to_dict()
    report = analysis.analyze(spec, exposures, events, pre_events=pre)
    return dict(report.to_dict())
