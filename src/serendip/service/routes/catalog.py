"""Catalog: upsert and delete items. A new item is recommendable at once (content and author
sources); a deleted item disappears from every response at once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from serendip.service.auth import require
from serendip.service.deps import RuntimeDep, SettingsDep, StoreDep, enforce_limits, notify
from serendip.service.routes._params import ItemPath
from serendip.service.runtime import ModelRuntime
from serendip.service.schemas import (
    ItemBatchCreate,
    ItemCreate,
    ItemDeletePublic,
    ItemsDelete,
    UpsertPublic,
)
from serendip.store import ItemIn, Store

router = APIRouter(prefix="/v1", tags=["catalog"])


def _item_in(item: ItemCreate) -> ItemIn:
    return ItemIn(
        item=item.item,
        title=item.title,
        text=item.text,
        tags=tuple(item.tags),
        category=item.category or "",
        author=item.author or "",
        created_at=item.created_at,
    )


@router.post(
    "/items",
    response_model=UpsertPublic,
    summary="Insert or replace items",
    dependencies=[Depends(require("write"))],
)
def upsert_items(
    body: ItemBatchCreate,
    store: StoreDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
) -> UpsertPublic:
    """Insert or replace up to 10,000 items (a deleted item sent again comes back)."""
    enforce_limits(body, settings)
    rows = [_item_in(i) for i in body.items]
    n = store.catalog.upsert(rows)
    notify("items", lambda: runtime.on_items(rows))
    return UpsertPublic(upserted=int(n))


@router.get(
    "/items/{item_id}",
    response_model=ItemCreate,
    summary="Read an item",
    dependencies=[Depends(require("read"))],
    responses={404: {"description": "No such item (or deleted)."}},
)
def get_item(item_id: ItemPath, store: StoreDep) -> ItemCreate:
    item = store.catalog.get(item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no item '{item_id}'")
    return ItemCreate.model_construct(
        item=item.item,
        title=item.title,
        text=item.text,
        tags=list(item.tags),
        category=item.category or None,
        author=item.author or None,
        created_at=item.created_at,
    )


def _delete(ids: list[str], store: Store, runtime: ModelRuntime) -> ItemDeletePublic:
    store.catalog.delete(ids)
    notify("deleted items", lambda: runtime.on_items_deleted(ids))
    return ItemDeletePublic(deleted=ids)


@router.delete(
    "/items/{item_id}",
    response_model=ItemDeletePublic,
    summary="Delete an item",
    dependencies=[Depends(require("write"))],
)
def delete_item(item_id: ItemPath, store: StoreDep, runtime: RuntimeDep) -> ItemDeletePublic:
    """Hide the item everywhere at once. Deleting an unknown or deleted item is a no-op."""
    return _delete([item_id], store, runtime)


@router.post(
    "/items/delete",
    response_model=ItemDeletePublic,
    summary="Delete many items",
    dependencies=[Depends(require("write"))],
)
def delete_items(
    body: ItemsDelete,
    store: StoreDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
) -> ItemDeletePublic:
    """Hide up to 10,000 items everywhere at once."""
    enforce_limits(body, settings)
    return _delete(list(dict.fromkeys(body.items)), store, runtime)
