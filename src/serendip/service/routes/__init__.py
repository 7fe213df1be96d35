"""One router per area; `create_app` includes `ROUTERS` in this order."""

from __future__ import annotations

from fastapi import APIRouter

from serendip.service.routes import (
    catalog,
    dashboard,
    events,
    experiments,
    health,
    models,
    monitors,
    recommendations,
    users,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    recommendations.router,
    events.router,
    catalog.router,
    users.router,
    models.router,
    monitors.router,
    experiments.router,
    health.router,
    dashboard.router,
)
