"""The serving runtime: the active model version, hot swaps, and dispatch to the serving layer.

`ModelRuntime` holds the active `Snapshot` (the model's `ServingModel` adapter, version,
caches, precomputed lists) behind one reference. A request reads it once and keeps that
snapshot to the end, so it takes no lock and never sees half a swap; `load` builds and checks a
complete new snapshot (artifact read, serving contract, a smoke recommendation for a few known
users and one unknown) before replacing the reference, and a failed load raises
`SerendipError` and leaves the old one serving. The live state between fits
(`serendip.serving.state.OnlineState`) survives swaps, so an event changes that user's next
recommendations at once. After each load BLAS and OpenMP are limited to one thread
(`limit_threads`): a request is a few small products, and fanning them out over a shared
machine's cores costs more CPU than it saves.

Several versions can serve at once: an A/B experiment's variants are loaded next to the active
version (`variant`, validated like an activation) and share its live state, so events, catalog
changes and follows reach every loaded version. Consent is applied here too: a user who turned
personalization off gets the non-personalized list (trending) from `recommend` (`on_consent`).
"""

from __future__ import annotations

import atexit
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from serendip.errors import ConfigError, SerendipError
from serendip.models.ann import AnnRetrieval
from serendip.models.base import ModelConfig, Recommender
from serendip.serving.cache import SnapshotCache
from serendip.serving.contract import RecItem, ServingModel
from serendip.serving.precompute import ListsHolder, RankedLists, build_ranked_lists, fingerprint
from serendip.serving.refresh import LiveRefresher
from serendip.serving.serve import (
    Request,
    Snapshot,
    fresh_index,
    recommend,
    refresh,
    similar,
    smoke_lists,
    trending,
)
from serendip.serving.state import OnlineState, field_of
from serendip.threads import limit_threads

if TYPE_CHECKING:  # the store (SQLAlchemy) stays unimported where the runtime runs offline
    from serendip.store import Store

__all__ = ["ModelRuntime", "OnlineState", "RecItem", "Snapshot", "SnapshotCache"]

_log = logging.getLogger("serendip.service")

#: A user ID no model knows (external IDs are printable strings): the smoke test's cold user.
_UNKNOWN = "\x00smoke"


class ModelRuntime:
    """The active model plus live state; what the HTTP layer calls.

    >>> rt = ModelRuntime()                                    # doctest: +SKIP
    >>> rt.load(Path("models/ials-3"), "3")                    # doctest: +SKIP
    >>> rt.on_events([EventIn("e1", "u1", "i9", "like", 1.7e9, None)])  # doctest: +SKIP
    >>> rt.recommend("u1", 10, explain=True)                   # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        history_size: int = 200,
        trending_half_life_s: float = 86_400.0,
        smoke_users: int = 3,
        loader: Callable[[Path], Recommender[ModelConfig]] | None = None,
        adapter: Callable[[Recommender[ModelConfig]], ServingModel] | None = None,
        cache_size: int = 10_000,
        single_thread: bool = True,
        precompute: bool = True,
        build_in_background: bool = True,
        freeze_gc: bool = True,
        fresh_slots: int = 2,
        incremental: bool = True,
        refresh_live: bool = False,
        refresh_k: int = 20,
        refresh_share: float = 1.0,
    ) -> None:
        if cache_size < 0:
            raise ConfigError(f"cache_size must be at least 0, got {cache_size}")
        if fresh_slots < 0:
            raise ConfigError(f"fresh_slots must be at least 0, got {fresh_slots}")
        #: most slots of a k-list that live items unknown to the model may take (`serendip.serving.fresh`)
        self.fresh_slots = fresh_slots
        #: use precomputed ranked candidates (`serendip.serving.precompute`)
        self.precompute = precompute
        #: ... and build them in a background thread after a load that found none
        self.build_in_background = build_in_background
        #: serve a known user with live state from their lists updated with it, not the whole
        #: pipeline (`serendip.serving.serve._incremental`)
        self.incremental = incremental
        #: ... updated as their events arrive, in a background thread, for requests of up to
        #: `refresh_k` items (`serendip.serving.refresh`); None: on their next request
        self.refresh_k = refresh_k
        #: ... taking at most this share of one core (`LiveRefresher.max_share`)
        self._refresher = (
            LiveRefresher(
                self._refresh_user,
                max_share=refresh_share,
                on_idle=gc.freeze if freeze_gc else None,  # the updates' lists, as at a load
            )
            if refresh_live
            else None
        )
        #: after each load, move the heap out of the cyclic GC's sight (`_freeze_heap`)
        self.freeze_gc = freeze_gc
        self.store = store
        self.state = OnlineState(history_size=history_size, half_life_s=trending_half_life_s)
        self.smoke_users = smoke_users
        self.cache_size = cache_size
        self.single_thread = single_thread
        self._loader = loader or Recommender.load
        if adapter is None:  # imported here: the pipeline is heavy, and `import` stays light
            from serendip.pipeline.serving import serving_model

            adapter = serving_model
        #: builds the serving contract of a loaded model
        self._adapter = adapter
        self._snapshot: Snapshot | None = None
        self._load_lock = threading.Lock()
        #: users made private since the start: cached explanations citing them are made anew
        self._hidden: frozenset[str] = frozenset()
        #: loaded versions other than the active one (experiment variants), by version
        self._variants: dict[str, Snapshot] = {}
        #: versions the running experiments need: kept loaded across swaps
        self._pinned: frozenset[str] = frozenset()
        #: versions that failed to load as variants, with the reason (not retried per request)
        self._unloadable: dict[str, str] = {}
        #: users who turned personalization off: they get the non-personalized list
        self._not_personalized: frozenset[str] = frozenset()
        #: users whose activity must not shape other users' recommendations (consent)
        self.withheld_activity: frozenset[str] = frozenset()
        self._consent_lock = threading.Lock()

    # -------------------------------------------------------------- versions
    @property
    def active_version(self) -> str | None:
        snap = self._snapshot
        return None if snap is None else snap.version

    @property
    def snapshot(self) -> Snapshot | None:
        """The active snapshot (read once per request)."""
        return self._snapshot

    def _active(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise SerendipError("no model is loaded: load or activate a model version first")
        return snap

    def load(self, directory: Path | str, version: str) -> None:
        """Load the artifact in `directory` as `version`, validate it, then make it active.

        Validation: the artifact reads and is fitted, its serving adapter implements the
        serving contract (`ServingModel`), and a smoke recommendation for a few known users and
        one unknown user returns well-formed lists (valid, unique items, finite scores). Any
        failure raises `SerendipError` naming the version and the reason; the previous version
        keeps serving. Loads are serialised; requests never wait for them.
        """
        directory = Path(directory)
        if self.store is not None:
            self.load_consents(self.store)
        with self._load_lock:
            snap = self._build(directory, str(version))
            old = self._snapshot
            self._snapshot = snap
            self._variants.pop(snap.version, None)  # served as the active version now
            if old is not None and old.version in self._pinned:
                self._variants.setdefault(old.version, old)  # an experiment still serves it
            elif old is not None and old.lists is not None:
                old.lists.stop()  # a background build for the old version is wasted work now
            self._after_load(snap, directory)
        if self._refresher is not None:
            # the live users' lists for this version, the most recently active first (as many
            # as the cache holds): after a restart their events were replayed before any model
            # could take them, and after a swap their lists belong to the old version
            self._refresher.submit(self.state.recent_users(self.cache_size))

    def _build(self, directory: Path, version: str) -> Snapshot:
        """Read, adapt and validate the artifact in `directory` as a complete `Snapshot`
        (not yet serving); `SerendipError` naming the version and the reason on any failure."""
        try:
            model = self._loader(directory)
            if self.single_thread:  # after the load: it may bring its own OpenMP (LightGBM)
                limit_threads()
            serving = self._adapter(model)
            if not isinstance(serving, ServingModel):
                raise SerendipError(
                    f"{type(serving).__name__} does not implement the serving contract "
                    "(serendip.serving.ServingModel)"
                )
            metadata = self._validate(serving)
        except Exception as exc:  # any failure of a candidate version is reported, not served
            reason = str(exc) or type(exc).__name__
            raise SerendipError(
                f"model version '{version}' at {directory} was not activated: {reason}"
            ) from exc
        metadata["live_clock_at_load"] = self.state.counts()[1]
        # privacy set since the fit holds for the new version too (before any request)
        self._apply_privacy(serving, self.state.private_flags())
        cache = SnapshotCache(self.cache_size)
        lists = self._lists_for(serving, directory)
        snap = Snapshot(serving, version, directory, time.time(), metadata, cache, lists)
        if self.fresh_slots:  # the first live catalog index (O(live catalog)) off requests
            fresh_index(snap, self.state)
        return snap

    def _after_load(self, snap: Snapshot, directory: Path) -> None:
        if self.freeze_gc:
            _freeze_heap()
        lists = snap.lists
        if lists is not None and lists.state == "absent" and self.build_in_background:
            self.build_lists(snap.serving, directory, lists)

    # -------------------------------------------------------------- variants
    def variant(self, version: str, directory: Path | str | None = None) -> Snapshot:
        """The snapshot serving `version`: the active one, a loaded variant, or the version
        loaded now (from `directory`, else its registered path in `store.models`) and
        validated like an activation, without changing the active version. It shares the
        live state, so events, catalog changes and follows reach it as they reach the active
        one. A version that failed to load raises `SerendipError` with the reason, without
        a second try per request (`forget_failures` or an explicit `directory` retries)."""
        version = str(version)
        snap = self._snapshot
        if snap is not None and snap.version == version:
            return snap
        got = self._variants.get(version)
        if got is not None:
            return got
        if directory is None and version in self._unloadable:
            raise SerendipError(self._unloadable[version])
        with self._load_lock:
            got = self._variants.get(version)  # loaded while this thread waited
            if got is not None:
                return got
            try:
                path = Path(directory) if directory is not None else self._registered(version)
                got = self._build(path, version)
            except SerendipError as exc:
                self._unloadable[version] = str(exc)
                raise
            self._unloadable.pop(version, None)
            self._variants[version] = got
            self._after_load(got, path)
        _log.info("model version %s loaded next to %s", version, self.active_version)
        return got

    def _registered(self, version: str) -> Path:
        if self.store is None:
            raise SerendipError(
                f"model version '{version}' is not loaded and this runtime has no store to find it"
            )
        registered = self.store.models.get(version)
        if registered is None:
            raise SerendipError(f"no model version '{version}' is registered")
        return Path(registered.path)

    @property
    def loaded_versions(self) -> tuple[str, ...]:
        """Every version serving now: the active one first, then the variants."""
        snap = self._snapshot
        head = () if snap is None else (snap.version,)
        return head + tuple(v for v in self._variants if v not in head)

    def pin(self, versions: Iterable[str]) -> None:
        """The versions the running experiments serve: kept loaded across swaps; loaded
        variants not among them (nor active) are dropped, and failures are forgotten."""
        keep = frozenset(str(v) for v in versions)
        with self._load_lock:
            self._pinned = keep
            for version in [v for v in self._variants if v not in keep]:
                dropped = self._variants.pop(version)
                if dropped.lists is not None:
                    dropped.lists.stop()
            self._unloadable.clear()

    def _lists_for(self, serving: ServingModel, directory: Path) -> ListsHolder | None:
        """The snapshot's precomputed lists: loaded from the artifact when saved with it."""
        if not (self.precompute and self.cache_size > 0 and serving.caches_candidates):
            return None
        holder = ListsHolder()
        lists = RankedLists.load(directory, fingerprint=fingerprint(directory))
        if lists is not None:
            holder.lists, holder.state = lists, "ready"
        return holder

    def adopt_saved_lists(self) -> bool:
        """A runtime that does not build lists (`build_in_background` False: a worker other
        than the leader) takes the active version's lists once another process has saved them
        into the artifact; True when it did now."""
        snap = self._snapshot
        holder = None if snap is None else snap.lists
        if snap is None or holder is None or holder.state != "absent":
            return False
        lists = RankedLists.load(snap.directory, fingerprint=fingerprint(snap.directory))
        if lists is None:
            return False
        holder.lists, holder.state = lists, "ready"
        _log.info("took the precomputed lists another process saved for %s", snap.version)
        return True

    def build_lists(self, serving: ServingModel, directory: Path, holder: ListsHolder) -> None:
        """Build the lists in a daemon thread (requests are served meanwhile, in full), then
        save them into the artifact so the next load finds them."""

        def run() -> None:
            try:
                lists = build_ranked_lists(
                    serving, fingerprint=fingerprint(directory), should_stop=lambda: holder.stopped
                )
                if lists is None:
                    holder.state = "absent"
                    return
                try:
                    lists.save(directory)
                except OSError as exc:  # a read-only artifact still serves from memory
                    _log.warning("could not save precomputed lists in %s: %s", directory, exc)
                holder.lists, holder.state = lists, "ready"
            except Exception:
                holder.state = "failed"
                _log.exception("building precomputed lists failed; serving without them")

        holder.state = "building"
        thread = threading.Thread(target=run, name="serendip-lists", daemon=True)
        _BUILDS[:] = [(t, h) for t, h in _BUILDS if t.is_alive()]  # keep no finished ones
        _BUILDS.append((thread, holder))
        thread.start()

    def _validate(self, serving: ServingModel) -> dict[str, object]:
        model = serving.model
        if not model.is_fitted:
            raise SerendipError("the model is not fitted")
        n_users, n_items = len(model.users_), len(model.items_)
        if n_items == 0:
            raise SerendipError("the model has an empty catalog")
        picks = sorted({0, n_users // 2, n_users - 1})[: self.smoke_users] if n_users else []
        users = [str(model.users_.id(u)) for u in picks] + [_UNKNOWN]
        k = min(5, n_items)
        for user, (items, sc) in zip(users, smoke_lists(serving, users, k), strict=True):
            got = items[items >= 0]
            if len(got) > k or np.any(got >= n_items) or len(np.unique(got)) != len(got):
                raise SerendipError(f"smoke recommendation for '{user}' is malformed: {items}")
            if not np.all(np.isfinite(sc[: len(got)])):
                raise SerendipError(f"smoke recommendation for '{user}' has non-finite scores")
        return {
            "model": model.name,
            "family": model.family,
            "n_users": n_users,
            "n_items": n_items,
            "supports_update": model.supports_update,
            "ann": model.ann_purposes() if isinstance(model, AnnRetrieval) else [],
        }

    # -------------------------------------------------------------- live state
    def on_events(self, events: Sequence[object]) -> None:
        """Record interactions (EventIn-like: user, item, event, timestamp); the users' next
        requests see them."""
        self.state.add_events(events)
        if self._refresher is not None:
            self._refresher.submit({str(field_of(e, "user")) for e in events})

    def _refresh_user(self, user: str) -> None:
        """A live user's next list, computed ahead (`serendip.serving.serve.refresh`)."""
        snap = self._snapshot
        if snap is not None and self.incremental and user not in self._not_personalized:
            refresh(snap, self.state, user, k=self.refresh_k, hidden=self._hidden)

    def on_items(self, items: Sequence[object]) -> None:
        """New or updated catalog items (ItemIn-like: item, category, author, created_at)."""
        self.state.upsert_items(items)

    def on_items_deleted(self, ids: Iterable[str]) -> None:
        """Items removed from the catalog: filtered from every response from now on."""
        self.state.delete_items(ids)

    def on_users(self, users: Sequence[object]) -> None:
        """Profile changes (UserIn-like: user, private). Privacy applies at once, without a
        retrain: a user who turns private is no longer cited nor used as social evidence for
        anyone (`ServingModel.set_private`), and every follower's list, which may cite them,
        is computed anew on its next request."""
        flags = {str(field_of(u, "user")): bool(field_of(u, "private")) for u in users}
        self.state.set_private(flags)
        self._hidden = frozenset(u for u, p in self.state.private_flags().items() if p)
        for snap in self._serving_snapshots():
            self._apply_privacy(snap.serving, flags)

    def reset_live_state(self) -> None:
        """Start the live state afresh (before a first load replays it from the store)."""
        self.state = OnlineState(
            history_size=self.state.history_size, half_life_s=self.state.half_life_s
        )

    def known_users(self) -> set[str]:
        """Users the live state or a loaded model version knows (to match an erasure's keyed
        subject against, `serendip.service.follower`)."""
        users = self.state.users()
        for snap in self._serving_snapshots():
            vocab = getattr(snap.serving.model, "users_", None)
            if vocab is not None:
                users.update(str(u) for u in vocab.ids)
        return users

    def _serving_snapshots(self) -> list[Snapshot]:
        snap = self._snapshot
        return ([] if snap is None else [snap]) + list(self._variants.values())

    def _apply_privacy(self, serving: ServingModel, flags: Mapping[str, bool]) -> None:
        if not flags:
            return
        changed = serving.set_private(flags)
        if changed:
            self.state.touch(serving.followers(changed))

    def on_follow(self, a: str, b: str) -> None:
        self.state.follow(a, b)
        if self._refresher is not None:
            self._refresher.submit([str(a)])

    def on_unfollow(self, a: str, b: str) -> None:
        self.state.unfollow(a, b)
        if self._refresher is not None:
            self._refresher.submit([str(a)])

    # -------------------------------------------------------------- consent
    def load_consents(self, store: Store) -> None:
        """Read the consent switches from the store (at load and at the server's start)."""
        with self._consent_lock:
            self._not_personalized = frozenset(store.consents.not_personalized())
            self.withheld_activity = frozenset(store.consents.withheld_activity())

    def on_consent(self, user: str, personalization: bool, activity_for_others: bool) -> None:
        """A user's consent changed (already stored): with personalization off their next
        list is the non-personalized one. `activity_for_others` is kept in
        `withheld_activity` for the sources that must leave such users out."""
        user = str(user)
        with self._consent_lock:
            off, withheld = set(self._not_personalized), set(self.withheld_activity)
            (off.discard if personalization else off.add)(user)
            (withheld.discard if activity_for_others else withheld.add)(user)
            self._not_personalized = frozenset(off)
            self.withheld_activity = frozenset(withheld)

    def personalized(self, user: str) -> bool:
        """False when the user turned personalization off."""
        return str(user) not in self._not_personalized

    # -------------------------------------------------------------- requests
    def recommend(
        self,
        user: str,
        k: int,
        *,
        explain: bool = False,
        categories: Iterable[str] | None = None,
        authors: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        context_item: str | None = None,
        snapshot: Snapshot | None = None,
    ) -> list[RecItem]:
        """Top-k for a known or unknown user, with live history, filters and explanations.

        categories / authors: only items in these categories / by these authors (None = any).
        exclude: item IDs never to return. context_item: the item the user is looking at now;
        it counts as the most recent history item and is never returned. snapshot: the version
        to serve from (a caller that reports the version reads `snapshot` once and passes it,
        so a concurrent swap cannot make the list and the reported version disagree).
        """
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        removed = tuple(str(x) for x in exclude)
        if context_item is not None:
            removed += (str(context_item),)
        request = Request(
            str(user),
            k,
            explain=explain,
            categories=None if categories is None else tuple(str(c) for c in categories),
            authors=None if authors is None else tuple(str(a) for a in authors),
            exclude=removed,
            context_item=None if context_item is None else str(context_item),
        )
        snap = snapshot or self._active()
        if request.user in self._not_personalized:
            return self._non_personalized(snap, request)
        return recommend(
            snap,
            self.state,
            request,
            fresh_slots=self.fresh_slots,
            hidden=self._hidden,
            incremental=self.incremental,
        )

    def _non_personalized(self, snap: Snapshot, req: Request) -> list[RecItem]:
        """Trending (the same list for everyone) with the request's filters; used for users
        who turned personalization off. Nothing of the user's own activity is read."""
        removed = set(req.exclude)
        filtered = req.categories is not None or req.authors is not None
        one_category = req.categories[0] if req.categories and len(req.categories) == 1 else None
        pool = req.k + len(removed)
        if filtered and not (one_category is not None and req.authors is None):
            pool = len(snap.model.items_) + len(self.state.counts()[0])  # filter all of it
        recs = trending(snap, self.state, max(pool, 1), one_category)
        if filtered:
            meta = self._metadata(snap, [r.item for r in recs])
            cats = None if req.categories is None else set(req.categories)
            auths = None if req.authors is None else set(req.authors)
            recs = [
                r
                for r, (cat, auth) in zip(recs, meta, strict=True)
                if (cats is None or cat in cats) and (auths is None or auth in auths)
            ]
        out = [r for r in recs if r.item not in removed][: req.k]
        if not req.explain:
            return out
        return [RecItem(r.item, r.score, _trending_reason(req.user, r)) for r in out]

    def _metadata(self, snap: Snapshot, items: Sequence[str]) -> list[tuple[str, str]]:
        """(category, author) of each item: live catalog updates first, then the model's."""
        model = snap.model
        updates = self.state.items()
        out = []
        for item in items:
            info = updates.get(item)
            if info is not None:
                out.append((str(info.category), str(info.author)))
                continue
            j = model.items_.get(item)
            if j < 0:
                out.append(("", ""))
            else:
                out.append((str(model.item_category_[j]), str(model.item_author_[j])))
        return out

    def similar(self, item: str, k: int, *, snapshot: Snapshot | None = None) -> list[RecItem]:
        """The k items most like `item` (deleted items filtered; over-fetched to keep k)."""
        return similar(snapshot or self._active(), self.state, item, k)

    def trending(
        self, k: int, category: str | None = None, *, snapshot: Snapshot | None = None
    ) -> list[RecItem]:
        """Most active items now: training popularity plus live event counts, time-decayed
        (`serendip.serving.serve.trending`)."""
        return trending(snapshot or self._active(), self.state, k, category)


def _trending_reason(user: str, rec: RecItem) -> dict[str, object]:
    """The explanation of a non-personalized item (`Explanation.to_dict()` shape)."""
    return {
        "user": user,
        "item": rec.item,
        "model": "trending",
        "score": float(rec.score),
        "text": "Popular now (personalization is off for you)",
        "evidence": [],
    }


#: background list builds of this process: stopped and joined at exit, since a daemon thread
#: frozen inside native code (LightGBM) at interpreter shutdown aborts the process
_BUILDS: list[tuple[threading.Thread, ListsHolder]] = []


@atexit.register
def _stop_builds() -> None:
    for _, holder in _BUILDS:
        holder.stop()
    for thread, _ in _BUILDS:
        thread.join(timeout=30.0)


def _freeze_heap() -> None:
    """Collect, then freeze every object alive now (the model, the app) into the GC's permanent
    generation. A full collection walks every tracked object -- tens of milliseconds with a
    platform-size model loaded -- and stalls every request in flight; frozen, the long-lived
    heap is never walked again and a collection only sees what requests allocate. Unfreezing
    first lets the collection free a swapped-out version's cycles."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()
