"""The app factory: `create_app(settings) -> FastAPI`.

The app owns one `Store` and one `ModelRuntime` (opened in the lifespan unless a caller passes
its own), one Prometheus registry, and an edge middleware that gives every request an ID,
bounds its body, times it per route, and turns an unexpected exception into a 500 carrying the
request ID (and a log line with the traceback), never a bare crash. A user's mistake never
reaches that path: validation gives 422 naming the field, a `SerendipError` its 4xx.

>>> app = create_app(Settings(db_url="sqlite:///demo.db"))  # doctest: +SKIP
>>> uvicorn.run(app)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serendip import __version__
from serendip.errors import CapacityError, ConfigError, DataError, NotFittedError, SerendipError
from serendip.service.bootstrap import BootstrapStatus, is_stand_in
from serendip.service.metrics import ServiceMetrics
from serendip.service.settings import Settings

if TYPE_CHECKING:  # imported where used: the store and the runtime are opened in the lifespan
    from serendip.service.notices import ChangeNotices
    from serendip.service.runtime import ModelRuntime
    from serendip.store import ModelVersion, Store

__all__ = ["create_app", "warm_runtime", "warm_start"]

log = logging.getLogger("serendip.service")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MAX_ERRORS = 20  # a 10,000-event batch with 10,000 bad rows answers with the first 20

DESCRIPTION = """
Serendip serves recommendations with reasons for a social content platform.

* **Events** (`/v1/events`): send what users do; an acknowledged event is durable and changes the
  user's next recommendations within a second.
* **Catalog and users** (`/v1/items`, `/v1/users`): new items are recommendable at once, deleted
  ones disappear from every response at once; follows and privacy take effect at once.
* **Recommendations** (`/v1/users/{user_id}/recommendations`, `/v1/items/{item_id}/similar`,
  `/v1/trending`): with `explain=true` each item says why.
* **Models** (`/v1/models`): list versions with metrics, activate one (atomic hot swap), roll back.

With API keys configured, send `Authorization: Bearer <key>`; scopes: `read` (recommendations),
`write` (events, catalog, users), `admin` (models, and everything else).
"""


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _BodyTooLarge(Exception):
    pass


class EdgeMiddleware:
    """Request ID, body-size limit, per-route latency and errors, and the last-resort 500."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        on_write: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        #: called after a write request succeeded (POST, PUT, PATCH or DELETE answered < 400)
        self.on_write = on_write

    async def _buffered(self, receive: Receive) -> Receive:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        ]

        async def receive_again() -> Message:
            return replay.pop() if replay else await receive()

        return receive_again

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        state = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            length = headers.get(b"content-length")
            if length is not None:
                if not length.isdigit() or int(length) > self.max_body:
                    raise _BodyTooLarge
                await self.app(scope, receive, send_wrapper)
            else:
                # Chunked body of unknown size: read it (up to the limit) before the app sees it,
                # so the limit holds without trusting the client.
                await self.app(scope, await self._buffered(receive), send_wrapper)
        except _BodyTooLarge:
            if not state["started"]:
                msg = f"request body is larger than the limit of {self.max_body} bytes"
                await _send_json(
                    send_wrapper,
                    413,
                    {"detail": [{"loc": ["body"], "msg": msg, "type": "too_large"}]},
                )
        except Exception:
            log.exception(
                "internal error in %s %s [request %s]",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
            if not state["started"]:
                await _send_json(
                    send_wrapper,
                    500,
                    {"detail": "internal server error", "request_id": request_id},
                )
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            method, status = scope.get("method", ""), int(state["status"])
            self.metrics.observe_request(method, label, status, time.perf_counter() - start)
            if self.on_write is not None and status < 400 and method in _WRITES:
                self.on_write()


async def _send_json(send: Send, status: int, body: dict[str, object]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _error_status(exc: SerendipError) -> int:
    if isinstance(exc, LookupError):  # the store's NotFoundError
        return 404
    if isinstance(exc, NotFittedError):
        return 503
    if isinstance(exc, CapacityError):
        return 413
    if isinstance(exc, (DataError, ConfigError)):
        return 422
    return 400


async def _serendip_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SerendipError)
    code = _error_status(exc)
    field = getattr(exc, "field", None)
    loc = ["body", field] if field else ["body"]
    kind = type(exc).__name__
    log.info("%s on %s: %s", kind, request.url.path, exc)
    return JSONResponse(
        {"detail": [{"loc": loc, "msg": str(exc), "type": kind}]},
        status_code=code,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    detail = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in errors[:_MAX_ERRORS]
    ]
    body: dict[str, object] = {"detail": detail}
    if len(errors) > _MAX_ERRORS:
        body["more_errors"] = len(errors) - _MAX_ERRORS
    return JSONResponse(body, status_code=422)


class _Holder:
    """Store and runtime the lifespan opened (and must close) or the caller passed."""

    def __init__(self, store: Store | None, runtime: ModelRuntime | None) -> None:
        self.store = store
        self.runtime = runtime
        self.owns_store = store is None


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    runtime: ModelRuntime | None = None,
) -> FastAPI:
    """A Serendip API app. Without `store`/`runtime`, the lifespan opens the store at
    `settings.db_url`, loads the active model version, and on a first start (empty store,
    `settings.bootstrap`) fills the store with a synthetic platform and fits the default model in
    a background thread; `/readyz` answers 503 until a model is active."""
    settings = settings or Settings()
    metrics = ServiceMetrics()
    holder = _Holder(store, runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run on AnyIO's thread pool (40 threads by default). Under one GIL, 40
        # CPU-bound requests at once each take 40x longer and all miss their deadline together;
        # a few threads serve them in arrival order instead, each at full speed.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        _open(app, settings, holder)
        from serendip.service.watcher import start_watcher

        start_watcher(app)  # versions activated by other processes; the monitor gauges
        from serendip.service.follower import start_follower

        app.state.notices = _open_notices(settings)
        start_follower(app, settings.follow_store_s)  # other servers' events and changes
        retention = None
        if settings.retention_days is not None and settings.leads:
            from serendip.service.privacy import app_privacy, start_retention

            retention = start_retention(app_privacy(app))  # the daily purge
        try:
            yield
        finally:
            app.state.shutting_down.set()
            if retention is not None:
                retention.stop()
            if app.state.notices is not None:
                app.state.notices.close()
            if holder.owns_store and app.state.store is not None:
                app.state.store.close()

    app = FastAPI(
        title="Serendip",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={422: {"description": "A field is malformed; `detail` names it."}},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.store = store
    app.state.runtime = runtime
    app.state.not_ready_reason = "starting"
    app.state.bootstrap = BootstrapStatus()
    app.state.swap_lock = threading.Lock()
    app.state.shutting_down = threading.Event()
    app.state.follower = None
    app.state.notices = None

    app.add_exception_handler(SerendipError, _serendip_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    def announce_write() -> None:  # other servers' followers look at the store at once
        notices: ChangeNotices | None = app.state.notices
        if notices is not None:
            notices.changed()

    app.add_middleware(
        EdgeMiddleware,
        metrics=metrics,
        max_body_bytes=settings.limits.max_body_bytes,
        on_write=announce_write,
    )

    from serendip.service.routes import ROUTERS

    for router in ROUTERS:
        app.include_router(router)
    return app


#: Replay events from this long before the active version was registered: an event stamped just
#: before a retrain's export may have arrived after it.
_WARM_MARGIN_S = 3_600.0
#: ... but no further back than this: the live state is a bridge to the next retrain, and a
#: restart must stay well under a minute however long ago the model was fitted.
_WARM_WINDOW_S = 3 * 86_400.0
_WARM_MAX_EVENTS = 1_000_000


def warm_start(store: Store, runtime: ModelRuntime, active: ModelVersion) -> None:
    """Before a server's first load of `active`: the live state since shortly before its fit
    (`warm_runtime`), then the stored consents (withheld users counted for nobody else, their
    older history fed into their own; `apply_consents_at_start`)."""
    from serendip.service.privacy import apply_consents_at_start

    since = max(active.created_at - _WARM_MARGIN_S, time.time() - _WARM_WINDOW_S)
    warm_runtime(store, runtime, since=since)
    apply_consents_at_start(runtime, store, replayed_since=since)


def warm_runtime(store: Store, runtime: ModelRuntime, *, since: float) -> None:
    """Rebuild the runtime's live state after a restart from the store: every deleted item
    (so none comes back), the catalog upserts and follow-graph changes since `since` (new items
    keep their category/author; follows and unfollows made after the fit stay in force), and
    the events since then (so seen items stay excluded and trending stays current) -- what the
    previous process knew in memory."""
    from serendip.store import EventIn

    deleted = store.catalog.deleted_since(0.0)
    if deleted:
        runtime.on_items_deleted(deleted)
    items = store.catalog.updated_since(since)
    if items:
        runtime.on_items(items)
    profiles = store.users.updated_since(since)
    if profiles:
        runtime.on_users(profiles)  # privacy set since the fit holds after a restart
    changes = store.social.changes_since(since)
    for kind, follower, followee, _ in changes:
        (runtime.on_follow if kind == "follow" else runtime.on_unfollow)(follower, followee)
    events = store.events.since(since, limit=_WARM_MAX_EVENTS)
    for start in range(0, len(events), 10_000):
        chunk = events[start : start + 10_000]
        runtime.on_events(
            [EventIn(e.event_id, e.user, e.item, e.event, e.timestamp, e.value) for e in chunk]
        )
    if deleted or items or profiles or changes or events:
        log.info(
            "live state warmed: %d deleted items, %d item upserts, %d profiles, "
            "%d follow changes, %d recent events",
            len(deleted),
            len(items),
            len(profiles),
            len(changes),
            len(events),
        )


def _open_notices(settings: Settings) -> ChangeNotices | None:
    """Redis change notices when `settings.redis_url` is set (`serendip.service.notices`)."""
    if settings.redis_url is None:
        return None
    from serendip.service.notices import ChangeNotices, channel_for

    return ChangeNotices(settings.redis_url, channel_for(settings.db_url))


def _open(app: FastAPI, settings: Settings, holder: _Holder) -> None:
    """Open the store and runtime, load the active version, or start the first-start bootstrap."""
    if holder.store is None:
        from serendip.store import Store

        holder.store = Store.open(settings.db_url)
    if holder.runtime is None:
        from serendip.service.runtime import ModelRuntime

        holder.runtime = ModelRuntime(
            holder.store,
            precompute=settings.precompute_lists,
            # other workers adopt the lists the leader saves (`adopt_saved_lists`)
            build_in_background=settings.leads,
            fresh_slots=settings.fresh_slots,
            refresh_live=settings.refresh_live,
            refresh_share=settings.refresh_share,
        )
    app.state.store = holder.store
    app.state.runtime = holder.runtime
    store, runtime = holder.store, holder.runtime
    metrics: ServiceMetrics = app.state.metrics

    if runtime.active_version is not None:
        app.state.not_ready_reason = None
        metrics.set_model_version(runtime.active_version)
        return
    active = store.models.active()
    if active is not None:
        app.state.not_ready_reason = f"loading model version {active.version}"

        def load() -> str | None:
            # Live state first (deletions, recent events): independent of the model, and events
            # acknowledged while the model loads then land after the replay, not before it.
            warm_start(store, runtime, active)
            try:
                runtime.load(Path(active.path), active.version)
            except SerendipError as exc:
                app.state.not_ready_reason = f"active model {active.version} failed to load: {exc}"
                log.error("%s", app.state.not_ready_reason)
                return None
            log.info("serving model %s (%s)", active.version, active.name)
            if settings.bootstrap and settings.leads and is_stand_in(active, settings):
                _resume_upgrade(app, settings, active)
            return str(active.version)

        _in_background(app, "load", load)
        return
    if not settings.bootstrap:
        app.state.not_ready_reason = (
            "no model is active; activate one with POST /v1/models/{v}/activate"
        )
        return
    if not settings.leads:
        app.state.not_ready_reason = "first start: worker 0 is preparing the first model"
        return
    if store.models.list():
        app.state.not_ready_reason = "no model version is active; activate one"
        return
    from serendip.service.bootstrap import run_bootstrap

    app.state.not_ready_reason = "first start: preparing data and fitting the default model"
    _in_background(
        app,
        "bootstrap",
        lambda: run_bootstrap(
            store,
            runtime,
            settings,
            should_stop=app.state.shutting_down.is_set,
            status=app.state.bootstrap,
        ),
    )


def _resume_upgrade(app: FastAPI, settings: Settings, active: ModelVersion) -> None:
    """The active version is a first start's fast model whose default model never finished its
    fit (the process stopped): fit the default model now, in the background, and swap it in."""
    from serendip.service.bootstrap import resume_upgrade

    _in_background(
        app,
        "upgrade",
        lambda: resume_upgrade(
            app.state.store,
            app.state.runtime,
            settings,
            active,
            should_stop=app.state.shutting_down.is_set,
            status=app.state.bootstrap,
        ),
    )


def _in_background(app: FastAPI, what: str, work: Callable[[], str | None]) -> None:
    """Run `work` (returns the version now serving, or None) in a thread, so the server answers
    `/healthz` (and ingests events) while a model loads or the first start fits one."""
    metrics: ServiceMetrics = app.state.metrics

    def run() -> None:
        try:
            version = work()
        except Exception as exc:
            log.exception("%s failed", what)
            app.state.not_ready_reason = f"{what} failed: {exc}"
            return
        if version is not None:
            metrics.set_model_version(version)
            app.state.not_ready_reason = None

    thread = threading.Thread(target=run, name=f"serendip-{what}", daemon=True)
    app.state.background = thread
    thread.start()
