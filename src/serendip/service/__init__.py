"""The HTTP service: `create_app(settings)` builds the FastAPI app, `serendip serve` runs it.

Imports are lazy so `import serendip.service.runtime` (used offline too) does not pull FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serendip.service.app import create_app
    from serendip.service.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from serendip.service.app import create_app

        return create_app
    if name == "Settings":
        from serendip.service.settings import Settings

        return Settings
    raise AttributeError(name)
