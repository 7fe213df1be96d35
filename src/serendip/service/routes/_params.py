"""Path and query parameter types shared by the routers (bounded like the body schemas)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from serendip.service.schemas import MAX_ID_LENGTH, MAX_LIST_LENGTH, Id

__all__ = ["Id", "IdList", "ItemPath", "K", "UserPath"]

UserPath = Annotated[
    Id, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External user ID.")
]
ItemPath = Annotated[
    Id, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External item ID.")
]
K = Annotated[
    int, Query(ge=1, le=10_000, description="How many items (at most the server's max_k, 200).")
]
IdList = Annotated[list[Id] | None, Query(max_length=MAX_LIST_LENGTH)]
