"""Linear autoencoders in closed form: EASE (item x item, capped catalog size) and User-EASE
(user x user, capped user count)."""

from serendip.models.linear._ease import EASE, EASEConfig
from serendip.models.linear._user_ease import UserEASE, UserEASEConfig

__all__ = ["EASE", "EASEConfig", "UserEASE", "UserEASEConfig"]
