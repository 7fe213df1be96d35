"""Linear item-item models: EASE (closed form, dense, capped catalog size)."""

from serendip.models.linear._ease import EASE, EASEConfig

__all__ = ["EASE", "EASEConfig"]
