"""What each dashboard page shows, gathered from the store and the runtime.

One function per page (`overview`, `leaderboard`, `user_view`, `experiments_view`,
`monitors_view`, `models_view`), each returning plain frozen dataclasses the templates render;
`serendip.service.routes.dashboard` is the thin HTTP edge over them. Parts built by other
packages (experiment analysis, monitors) are imported inside the page functions: where one is
missing or fails, its page shows a panel saying so instead of failing.
"""

from __future__ import annotations

from serendip.service.dashboard.views import (
    ExperimentsView,
    Leaderboard,
    ModelsView,
    MonitorsView,
    Overview,
    UserView,
    experiments_view,
    leaderboard,
    models_view,
    monitors_view,
    overview,
    sample_users,
    user_view,
    version_choices,
)

__all__ = [
    "ExperimentsView",
    "Leaderboard",
    "ModelsView",
    "MonitorsView",
    "Overview",
    "UserView",
    "experiments_view",
    "leaderboard",
    "models_view",
    "monitors_view",
    "overview",
    "sample_users",
    "user_view",
    "version_choices",
]
