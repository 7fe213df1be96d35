"""API keys with scopes. Each route depends on `require(scope)`.

A key is sent as `Authorization: Bearer <key>` (or `X-API-Key: <key>`). Without configured keys
the server is unauthenticated and `serve` binds it to localhost only (see `Settings.check_bind`).
A missing or unknown key gets 401, a key without the scope 403, each with the reason.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from serendip.service.settings import ApiKey, Scope, Settings

__all__ = ["Principal", "authenticate", "require"]

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key.")


class Principal:
    """Who is calling: a key's name, or `anonymous` on an unauthenticated server."""

    __slots__ = ("name", "scopes")

    def __init__(self, name: str, scopes: frozenset[str]) -> None:
        self.name = name
        self.scopes = scopes


def _match(keys: list[ApiKey], secret: str) -> ApiKey | None:
    found = None
    given = secret.encode()
    for key in keys:  # compare against every key, in constant time, so timing tells nothing
        if hmac.compare_digest(key.key.get_secret_value().encode(), given):
            found = key
    return found


def authenticate(settings: Settings, secret: str | None) -> Principal:
    """The caller for `secret`, or HTTP 401 naming what is wrong."""
    if not settings.api_keys:
        return Principal("anonymous", frozenset({"read", "write", "admin"}))
    if not secret:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = _match(settings.api_keys, secret)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scopes = set(key.scopes)
    if "admin" in scopes:
        scopes |= {"read", "write"}
    return Principal(key.name, frozenset(scopes))


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency that admits callers holding `scope` (admin holds all)."""

    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header: str | None = Depends(_header),
    ) -> Principal:
        settings: Settings = request.app.state.settings
        secret = bearer.credentials if bearer is not None else header
        principal = authenticate(settings, secret)
        if scope not in principal.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"API key '{principal.name}' lacks the '{scope}' scope this route needs",
            )
        request.state.principal = principal.name
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency
