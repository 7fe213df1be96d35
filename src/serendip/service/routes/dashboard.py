"""The dashboard at `/`: server-rendered pages (Jinja2, a little plain JavaScript) for the people
who run Serendip.

Pages: the data overview (`/`), the leaderboard, the user explorer, experiments, monitors and
model versions (under `/dashboard/`). What each shows is gathered by `serendip.service.dashboard`;
this module only reads the request, renders and sets the headers.

Access: on a server without API keys (which only binds to localhost) the pages are open. With
keys, the pages show people's activity, so they need an admin key: `/dashboard/login` takes it
and sets an HttpOnly, SameSite=Strict cookie holding an HMAC of the key (never the key itself:
a stolen cookie opens the pages, not the API). Admin actions (activate, roll back) are calls
from the page's script to the admin API (`POST /v1/models/...`) with the key as
`Authorization: Bearer`, kept in the tab's sessionStorage -- the dashboard adds no write path.

Every page carries a Content-Security-Policy allowing only its own nonce'd inline style and
script and requests to this server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from serendip.service import dashboard
from serendip.service.auth import authenticate
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import ApiKey, Settings
from serendip.store import MAX_ID_LENGTH, Store

__all__ = ["PAGES", "router", "session_token"]

router = APIRouter(tags=["dashboard"], include_in_schema=False)

#: (path, title) of every page, in the navigation's order.
PAGES: tuple[tuple[str, str], ...] = (
    ("/", "Overview"),
    ("/dashboard/leaderboard", "Leaderboard"),
    ("/dashboard/explorer", "User explorer"),
    ("/dashboard/experiments", "Experiments"),
    ("/dashboard/monitors", "Monitors"),
    ("/dashboard/models", "Model versions"),
)
COOKIE = "serendip_dashboard"
_SESSION_S = 8 * 3600
_SESSION_SALT = b"serendip dashboard session v1"


@cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("serendip.service", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def session_token(key: ApiKey) -> str:
    """The dashboard cookie for `key`: an HMAC of a fixed label under the key's secret."""
    secret = key.key.get_secret_value().encode()
    return hmac.new(secret, _SESSION_SALT, hashlib.sha256).hexdigest()


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _viewer(request: Request) -> str | None:
    """Who looks at the dashboard: "anonymous" on a server without keys, the name of the admin
    key whose session cookie the request carries, else None (not signed in)."""
    settings = _settings(request)
    if not settings.api_keys:
        return "anonymous"
    token = request.cookies.get(COOKIE, "")
    found = None
    for key in settings.api_keys:  # every key, in constant time
        if "admin" in key.scopes and hmac.compare_digest(session_token(key), token):
            found = key.name
    return found


def _store(request: Request) -> Store:
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(503, detail="the store is not open yet; see /readyz")
    return store


def _runtime(request: Request) -> ModelRuntime | None:
    runtime: ModelRuntime | None = getattr(request.app.state, "runtime", None)
    return runtime


def _not_ready(request: Request) -> str | None:
    reason: str | None = getattr(request.app.state, "not_ready_reason", None)
    return reason


def study_dir(settings: Settings) -> Path | None:
    """The study directory the leaderboard reads (`settings.study_dir`, from --study or
    SERENDIP_STUDY_DIR), or None."""
    return settings.study_dir


def _render(
    request: Request, template: str, *, status: int = 200, viewer: str | None, **context: object
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    settings = _settings(request)
    html = (
        _env()
        .get_template(f"dashboard/{template}")
        .render(
            nonce=nonce,
            pages=PAGES,
            path=request.url.path,
            viewer=viewer,
            keyed=settings.authenticated,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/dashboard/login?next={quote(target, safe='')}", status_code=303)


def _safe_next(target: str) -> str:
    """A redirect target on this server only (a path, never `//host` or a scheme)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


# --------------------------------------------------------------------------- pages
@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> Response:
    """Counts, event types, activity per day and the latest events."""
    viewer = _viewer(request)
    if viewer is None:
        return _login_redirect(request)
    view = dashboard.overview(_store(request), _runtime(request), _not_ready(request))
    return _render(request, "overview.html", viewer=viewer, title="Overview", view=view)


@router.get("/dashboard/leaderboard", response_class=HTMLResponse)
def leaderboard_page(request: Request) -> Response:
    """The study's leaderboard (a configured study directory) or the model versions' metrics."""
    viewer = _viewer(request)
    if viewer is None:
        return _login_redirect(request)
    view = dashboard.leaderboard(_store(request), study_dir(_settings(request)))
    return _render(request, "leaderboard.html", viewer=viewer, title="Leaderboard", view=view)


_Version = Annotated[
    str | None,
    Query(max_length=MAX_ID_LENGTH, description="A registered model version ('' = active)."),
]


@router.get("/dashboard/explorer", response_class=HTMLResponse)
def explorer_page(
    request: Request,
    user: Annotated[str | None, Query(max_length=MAX_ID_LENGTH)] = None,
    a: _Version = None,
    b: _Version = None,
    k: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    """Pick a user: profile, history, followees, and the top-k with reasons and sources from one
    model version, or two side by side (`a`, `b`; `a` empty: the active model)."""
    viewer = _viewer(request)
    if viewer is None:
        return _login_redirect(request)
    store, runtime = _store(request), _runtime(request)
    choices = dashboard.version_choices(store, runtime)
    a, b = (a or None), (b or None)
    errors = [
        f"No model version '{v}' is registered; pick one of the list."
        for v in (a, b)
        if v is not None and store.models.get(v) is None
    ]
    user = (user or "").strip() or None
    view = None
    if user is not None and not errors:
        versions: list[str | None] = [a]
        if b is not None and b != a:
            versions.append(b)
        view = dashboard.user_view(store, runtime, user, versions, k=k)
    return _render(
        request,
        "explorer.html",
        status=422 if errors else 200,
        viewer=viewer,
        title="User explorer" if user is None else f"User {user}",
        view=view,
        errors=errors,
        user=user or "",
        a=a or "",
        b=b or "",
        k=k,
        choices=choices,
        suggestions=dashboard.sample_users(store),
    )


@router.get("/dashboard/experiments", response_class=HTMLResponse)
def experiments_page(request: Request) -> Response:
    """Every experiment with its live statistics."""
    viewer = _viewer(request)
    if viewer is None:
        return _login_redirect(request)
    view = dashboard.experiments_view(_store(request))
    return _render(request, "experiments.html", viewer=viewer, title="Experiments", view=view)


@router.get("/dashboard/monitors", response_class=HTMLResponse)
def monitors_page(request: Request) -> Response:
    """Live quality and drift monitors against their bounds."""
    viewer = _viewer(request)
    if viewer is None:
        return _login_redirect(request)
    settings = _settings(request)
    view = dashboard.monitors_view(_store(request), settings.monitors_file)
    return _render(request, "monitors.html", viewer=viewer, title="Monitors", view=view)


@router.get("/dashboard/models", response_class=HTMLResponse)
def models_page(request: Request) -> Response:
    """Model versions with activate and roll back (admin API, key entered in the page)."""
    viewer = _viewer(request)
    if viewer is None:
        return _login_redirect(request)
    view = dashboard.models_view(
        _store(request),
        _runtime(request),
        authenticated=_settings(request).authenticated,
        not_ready=_not_ready(request),
    )
    return _render(request, "models.html", viewer=viewer, title="Model versions", view=view)


# --------------------------------------------------------------------------- sign-in
@router.get("/dashboard/login", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str, Query(max_length=2048)] = "/") -> Response:
    """The sign-in form (an admin API key)."""
    if not _settings(request).api_keys:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_form(request, 200, _safe_next(next), None)


def _login_form(request: Request, status: int, target: str, error: str | None) -> HTMLResponse:
    return _render(
        request, "login.html", status=status, viewer=None, title="Sign in", next=target, error=error
    )


@router.post("/dashboard/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the key (admin scope) and set the session cookie; the form again with the reason
    (401 unknown key, 403 no admin scope) otherwise."""
    settings = _settings(request)
    body = (await request.body())[:8192].decode("utf-8", "replace")
    form = parse_qs(body)
    secret = (form.get("key") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    if not settings.api_keys:
        return RedirectResponse(target, status_code=303)
    try:
        principal = authenticate(settings, secret)
    except HTTPException as exc:
        return _login_form(request, exc.status_code, target, str(exc.detail))
    if "admin" not in principal.scopes:
        msg = f"API key '{principal.name}' lacks the 'admin' scope the dashboard needs"
        return _login_form(request, 403, target, msg)
    given = secret.encode()
    key = None
    for candidate in settings.api_keys:  # the key `authenticate` matched, in constant time
        if hmac.compare_digest(candidate.key.get_secret_value().encode(), given):
            key = candidate
    assert key is not None
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session_token(key),
        max_age=_SESSION_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/dashboard/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
