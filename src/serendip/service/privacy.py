"""Privacy at the service edge: pseudonyms at ingestion, erasure (data, live state, active model,
artifacts), consent, and the retention schedule.

**Pseudonyms.** With `Settings.pseudonym_secret`, every user ID a route receives is replaced by
its keyed pseudonym (`serendip.privacy.pseudonym`) before it reaches the store or the runtime,
so the store never holds a raw ID; export and erasure take the raw ID and map it the same way.
`stored_user(request, raw)` / `PrivacyDep` are what a route calls.

**Erasure** (`erase_user`), in this order:
1. the store: events, follows both ways, unfollows, exposures, consent and profile deleted in one
   transaction; items the user authored stay but are re-attributed to a tombstone
   (`erased~<hash>`), so no row names them;
2. the live path, at once: the user is hidden as evidence in every loaded model (the private
   machinery: never cited, never social evidence; followers' lists made anew), their live
   history, follows and share of the live counts are dropped (`OnlineState.forget_user`), and
   their freshness stamp moves on, so their cached and precomputed lists are never served again;
3. the erasure log: a keyed hash (`erasure_subject`, HMAC-SHA256 under the pseudonym secret when
   set, else a per-installation key in `<artifacts>/.erasure-key`), never the ID, with the
   receipt's counts; imports and training exports skip that subject from then on, and event
   ingestion drops its events;
4. exactly, in the background (`ErasureRefit`): the active model's configuration is fitted again
   on the store's data -- now without the user -- registered and hot-swapped in; then every
   entry under the artifacts directory that still holds the user's ID (UTF-8 or the UTF-32 of
   NumPy string arrays, zip members included) is deleted, and its registered version marked
   failed with the reason: versions trained with the user are retired, and rolling back to them
   is gone by design. Erasures that arrive while a refit runs are covered by one more refit.
   The refit is exact for every deterministic model: the new version is what a fit on data
   that never held the user gives (`tests/service/test_erasure.py` compares item-kNN,
   popularity and iALS -- fixed seed -- with a fit on such data: equal to the last digit; two
   pipeline fits on equal data give equal lists and scores). Not exact: models whose fit is not
   deterministic (multi-threaded deep models) match only in distribution; and between the
   erasure and the swap the old model still scores with the user's past contributions
   (co-occurrences, factors, counts), hidden as evidence only -- no model offers an exact
   decrement through the serving contract yet.

**Consent** (`apply_consent`): personalization off -> the runtime's non-personalized list
(`ModelRuntime.on_consent`); activity for others off -> the user's share of the live counts
leaves at once and their later events count for nobody else (`OnlineState.withhold`), every
loaded model treats them as private (never social evidence nor cited), and the next fit does
not learn from their interactions at all (`Store.to_dataset` drops them): their own list is
then built from their history folded in at request time (`replay_withheld_history` feeds their
stored recent events into the live state, which counts them for nobody else).

**Retention** (`RetentionSchedule`): with `Settings.retention_days`, a daemon thread purges
events and exposures older than the window once a day (`serendip.privacy.retention.purge`);
`serendip purge` does the same from cron.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from serendip.privacy.pseudonym import (
    KEY_FILE,
    Pseudonymizer,
    erasure_key,
    erasure_subject,
)
from serendip.privacy.retention import DAY, PurgeResult, purge
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import Settings
from serendip.store import Store

__all__ = [
    "ConsentPublic",
    "ConsentUpdate",
    "ErasureReceiptPublic",
    "ErasureRefit",
    "PrivacyContext",
    "PrivacyDep",
    "RetentionSchedule",
    "app_privacy",
    "apply_consent",
    "apply_consents_at_start",
    "erase_user",
    "files_naming",
    "forget_live",
    "privacy_context",
    "replay_withheld_history",
    "start_retention",
    "stored_user",
]

_log = logging.getLogger("serendip.service")


# ----------------------------------------------------------------------------- schemas
class ConsentUpdate(BaseModel):
    """A user's consent switches; a field left out keeps its current value."""

    model_config = ConfigDict(extra="forbid")

    personalization: bool | None = Field(
        default=None, description="False: the same non-personalized list as everyone."
    )
    activity_for_others: bool | None = Field(
        default=None,
        description="False: the user's activity shapes nobody else's recommendations.",
    )
    private: bool | None = Field(
        default=None, description="True: others' explanations never name the user."
    )


class ConsentPublic(BaseModel):
    user: str = Field(description="The user ID as sent.")
    personalization: bool
    activity_for_others: bool
    private: bool
    updated_at: float | None = Field(description="When consent last changed (None: never).")


class ErasureReceiptPublic(BaseModel):
    """What an erasure removed. The ID itself is not kept anywhere after it."""

    user: str = Field(description="The user ID as sent.")
    subject: str = Field(description="The keyed hash the erasure log keeps.")
    erased_at: float
    store: dict[str, int] = Field(description="Rows deleted (or re-attributed) per table.")
    live: dict[str, int] = Field(description="What the live state dropped.")
    model: str = Field(
        description="What happens to the active model: hidden at once, refitted without the "
        "user and hot-swapped in the background."
    )
    refit: str = Field(description="scheduled, not requested, or no model is active.")
    artifacts: str = Field(description="What happens to the artifact directories.")


# ----------------------------------------------------------------------------- context
@dataclass
class PrivacyContext:
    """One server's privacy state: its pseudonymizer, erasure key and background refit."""

    settings: Settings
    store: Store
    pseudonyms: Pseudonymizer
    key: bytes
    refit: ErasureRefit | None = None
    retention: RetentionSchedule | None = None

    def subject(self, stored: str) -> str:
        return erasure_subject(self.key, stored)

    def erased(self, stored: Iterable[str]) -> set[str]:
        """Those of `stored` (stored IDs) the erasure log names (one small query)."""
        subjects = self.store.erasures.subjects()
        if not subjects:
            return set()
        return {u for u in set(stored) if self.subject(u) in subjects}


def make_context(settings: Settings, store: Store) -> PrivacyContext:
    secret = settings.pseudonym_secret
    raw = None if secret is None else secret.get_secret_value().encode()
    key = erasure_key(raw, Path(settings.artifacts_dir))
    ctx = PrivacyContext(settings, store, Pseudonymizer(raw), key)
    store.erasure_subject = ctx.subject  # imports and training exports skip erased users
    return ctx


_CTX_LOCK = threading.Lock()


def privacy_context(request: Request) -> PrivacyContext:
    """The app's `PrivacyContext`, made on first use (and kept on `app.state.privacy`)."""
    return app_privacy(request.app)


def app_privacy(app: FastAPI) -> PrivacyContext:
    """`privacy_context` for code that holds the app, not a request (the follower)."""
    state = app.state
    ctx: PrivacyContext | None = getattr(state, "privacy", None)
    store: Store = state.store
    if ctx is None or ctx.store is not store:
        with _CTX_LOCK:
            ctx = getattr(state, "privacy", None)
            if ctx is None or ctx.store is not store:
                ctx = make_context(state.settings, store)
                state.privacy = ctx
    return ctx


async def _privacy_dep(request: Request) -> PrivacyContext:
    return privacy_context(request)


#: A route's privacy context: `privacy: PrivacyDep`, then `privacy.pseudonyms.user(raw)`.
PrivacyDep = Annotated[PrivacyContext, Depends(_privacy_dep)]


def stored_user(request: Request, raw: str) -> str:
    """The ID the store and the runtime know `raw` by (its pseudonym when a secret is set):
    for the recommendation routes, which receive raw IDs too."""
    return privacy_context(request).pseudonyms.user(raw)


# ----------------------------------------------------------------------------- consent
def apply_consent(
    runtime: ModelRuntime | None,
    store: Store,
    user: str,
    personalization: bool,
    activity_for_others: bool,
) -> None:
    """Apply stored consent to the live path at once (see the module's docstring)."""
    if runtime is None:
        return
    runtime.on_consent(user, personalization, activity_for_others)
    runtime.state.withhold([user], not activity_for_others)
    profile = store.users.get(user)
    private = bool(profile.private) if profile is not None else False
    runtime.on_users([{"user": user, "private": private or not activity_for_others}])


def apply_consents_at_start(
    runtime: ModelRuntime, store: Store, *, replayed_since: float | None = None
) -> int:
    """At a server's start (or after a restart): the stored consents into the runtime and the
    live state, and the withheld users' recent history into their own live history. Returns
    how many users withhold their activity. `replayed_since`: the live state already holds
    the events from then on (`warm_runtime`), so only older ones are fed in."""
    runtime.load_consents(store)
    withheld = sorted(store.consents.withheld_activity())
    if withheld:
        runtime.state.withhold(withheld)
        runtime.on_users([{"user": u, "private": True} for u in withheld])
        replay_withheld_history(runtime, store, withheld, before=replayed_since)
    return len(withheld)


def replay_withheld_history(
    runtime: ModelRuntime,
    store: Store,
    users: Iterable[str] | None = None,
    *,
    before: float | None = None,
) -> int:
    """Feed withheld users' most recent stored events (those before `before`, when given)
    into their live history (counted for nobody else): the fit leaves their interactions out,
    so this is how their own list still knows their taste. Returns the events replayed."""
    chosen = list(store.consents.withheld_activity() if users is None else users)
    runtime.state.withhold(chosen)
    n = 0
    for u in chosen:
        recent = store.events.recent(u, runtime.state.history_size)
        events = [e for e in reversed(recent) if before is None or e.timestamp < before]
        if events:
            n += runtime.state.add_events(events)
    return n


# ----------------------------------------------------------------------------- erasure
def erase_user(
    ctx: PrivacyContext,
    runtime: ModelRuntime | None,
    raw: str,
    *,
    refit: bool = True,
    swap_lock: threading.Lock | None = None,
) -> ErasureReceiptPublic:
    """Erase the user known to the platform as `raw` (see the module's docstring); the
    receipt says what went. A user with nothing stored still gets a receipt (all zeros) and an
    erasure record, so a later import cannot bring them back."""
    stored = ctx.pseudonyms.user(raw)
    subject = ctx.subject(stored)
    counts = ctx.store.erase_user(stored, author_tombstone=ctx.store.author_tombstone(stored))
    live: dict[str, int] = {} if runtime is None else forget_live(runtime, stored)
    at = time.time()
    ctx.store.erasures.record(subject, {"store": counts, "live": live, "at": at})
    active = runtime is not None and runtime.snapshot is not None
    if refit and active and runtime is not None:
        job = ctx.refit
        if job is None or job.runtime is not runtime:
            job = ctx.refit = ErasureRefit(ctx, runtime, swap_lock or threading.Lock())
        job.request(stored)
        refit_state = "scheduled"
    elif refit and not active:
        refit_state = "no model is active"
        purge_artifacts(ctx, [stored], keep=())
    else:
        refit_state = "not requested"
    return ErasureReceiptPublic(
        user=raw,
        subject=subject,
        erased_at=at,
        store=counts,
        live=live,
        model="hidden at once in every loaded version (never cited, never social evidence, "
        "cached and precomputed lists dropped); "
        + (
            "the active model's configuration is refitted on the data without the user and "
            "hot-swapped in the background"
            if refit_state == "scheduled"
            else "no refit: the loaded model keeps the user's past contributions until the next fit"
        ),
        refit=refit_state,
        artifacts="every model version trained with the user is deleted from the artifacts "
        "directory after the swap and marked failed: rollback to those versions is gone by design",
    )


def forget_live(runtime: ModelRuntime, stored: str) -> dict[str, int]:
    """The live path's part of an erasure (step 2 above), on this server: hidden in every
    loaded model, out of the consent sets, dropped from the live state. Returns what the live
    state dropped. The follower calls it for erasures made through another server."""
    runtime.on_users([{"user": stored, "private": True}])  # hidden at once, every model
    runtime.on_consent(stored, True, True)  # out of the consent sets
    return runtime.state.forget_user(stored)


@dataclass
class ErasureRefit:
    """Refits the active model without the erased users, swaps it in, then purges artifacts.
    One refit at a time; erasures arriving meanwhile are covered by one more."""

    ctx: PrivacyContext
    runtime: ModelRuntime
    swap_lock: threading.Lock
    _pending: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _idle: threading.Event = field(default_factory=threading.Event)
    #: (version, seconds) of each refit done, and the error of the last failure
    done: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    #: artifact entries deleted so far
    purged: int = 0

    def __post_init__(self) -> None:
        self._idle.set()

    def request(self, stored: str) -> None:
        with self._lock:
            self._pending.append(stored)
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="serendip-erasure-refit", daemon=True
                )
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no refit is pending or running; False on timeout."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._idle.set()
                    return
            try:
                self.refit_once(batch)
            except Exception as exc:
                self.error = str(exc) or type(exc).__name__
                _log.exception("refit after an erasure failed; the erased users stay hidden")

    def refit_once(self, erased: list[str]) -> str | None:
        """Fit the active model's configuration on the store's data, register it, swap it in,
        purge the artifacts holding `erased`; the new version (None: no model active)."""
        from serendip.models.registry import create_model

        snap = self.runtime.snapshot
        if snap is None:
            self.purged += purge_artifacts(self.ctx, erased, keep=())
            return None
        settings, store = self.ctx.settings, self.ctx.store
        model = snap.model
        start = time.perf_counter()
        since = None
        if settings.train_window_days is not None:
            newest = store.events.newest_timestamp()
            if newest is not None:
                since = newest - settings.train_window_days * DAY
        dataset = store.to_dataset(since=since)
        fitted = create_model(model.name, model.get_params()).fit(dataset)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        directory = Path(settings.artifacts_dir) / f"{model.name}-{stamp}-{uuid.uuid4().hex[:6]}"
        fitted.save(directory)
        seconds = round(time.perf_counter() - start, 3)
        version = store.models.register(
            model.name,
            str(directory.resolve()),
            {
                "fit_seconds": seconds,
                "n_users": len(dataset.users),
                "n_items": len(dataset.items),
                "n_interactions": len(dataset.interactions),
                "trained_on": "store:refit-after-erasure",
            },
            lineage={"parent": snap.version, "reason": "erasure"},
        )
        with self.swap_lock:
            self.runtime.load(directory, version.version)
            store.models.activate(version.version)
        # the old version's background list build (stopped by the swap) must not write its
        # lists -- whose explanations may cite the user -- back after the purge
        holder = snap.lists
        deadline = time.monotonic() + 120.0
        while holder is not None and holder.state == "building" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.purged += purge_artifacts(self.ctx, erased, keep=(directory.resolve(),))
        self.done.append((version.version, seconds))
        _log.info("erasure: version %s (refitted in %.1f s) now serving", version.version, seconds)
        return version.version


def purge_artifacts(ctx: PrivacyContext, erased: list[str], *, keep: Iterable[Path]) -> int:
    """Delete every entry under the artifacts directory (but `keep` and the key file) whose
    files name one of `erased`; mark their registered versions failed. Returns how many."""
    root = Path(ctx.settings.artifacts_dir)
    if not root.is_dir():
        return 0
    kept = {Path(p).resolve() for p in keep}
    by_path = {Path(v.path).resolve(): v for v in ctx.store.models.list()}
    n = 0
    for entry in sorted(root.iterdir()):
        if entry.name == KEY_FILE or entry.resolve() in kept:
            continue
        if not files_naming(entry, erased):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        n += 1
        version = by_path.get(entry.resolve())
        if version is not None and not version.active:
            ctx.store.models.mark_failed(
                version.version,
                "artifact purged after an erasure: it was trained on an erased user's data "
                "(rollback to it is gone by design)",
            )
    return n


def _needles(ids: Iterable[str]) -> list[bytes]:
    out = []
    for i in ids:
        out += [i.encode("utf-8"), i.encode("utf-32-le"), i.encode("utf-16-le")]
    return out


def files_naming(path: Path, ids: Iterable[str]) -> list[Path]:
    """Files at or under `path` whose bytes contain one of `ids` (UTF-8, or the UTF-32/16 of
    NumPy and Arrow string arrays), looking inside zip archives (`.npz`) too."""
    needles = _needles(ids)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    hits = []
    for f in files:
        data = f.read_bytes()
        if any(n in data for n in needles):
            hits.append(f)
            continue
        if zipfile.is_zipfile(f):
            with zipfile.ZipFile(f) as z:
                if any(any(n in z.read(m) for n in needles) for m in z.namelist()):
                    hits.append(f)
    return hits


# ----------------------------------------------------------------------------- retention
class RetentionSchedule:
    """Purge events and exposures older than `days` every `every_s` seconds (first run at
    once), in a daemon thread; `stop()` ends it."""

    def __init__(self, store: Store, days: float, *, every_s: float = DAY) -> None:
        self.store, self.days, self.every_s = store, days, every_s
        self._stop = threading.Event()
        self.last: PurgeResult | None = None
        self._thread = threading.Thread(target=self._run, name="serendip-retention", daemon=True)

    def start(self) -> RetentionSchedule:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.last = purge(self.store, self.days)
                _log.info(
                    "retention: purged %d events and %d exposures older than %g days",
                    self.last.events,
                    self.last.exposures,
                    self.days,
                )
            except Exception:
                _log.exception("retention purge failed")
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()


def start_retention(ctx: PrivacyContext) -> RetentionSchedule | None:
    """Start the daily purge when `Settings.retention_days` is set (once per context); the
    server's start calls it (`privacy_context` gives the context from the app)."""
    days = ctx.settings.retention_days
    if days is None or ctx.retention is not None:
        return ctx.retention
    ctx.retention = RetentionSchedule(ctx.store, days).start()
    return ctx.retention
