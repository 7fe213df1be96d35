"""The runtime serving several versions at once (experiment variants) and the personalization
consent switch. Toy platform, the session's fitted item-kNN and popularity artifacts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from serendip.errors import SerendipError
from serendip.service.runtime import ModelRuntime, RecItem
from serendip.store import EventIn, Store


def _ids(recs: list[RecItem]) -> list[str]:
    return [r.item for r in recs]


@pytest.fixture
def runtime(model_dirs: dict[str, Path]) -> ModelRuntime:
    rt = ModelRuntime(freeze_gc=False)
    rt.load(model_dirs["item-knn"], "knn")
    return rt


def test_a_variant_serves_next_to_the_active_version(
    runtime: ModelRuntime, model_dirs: dict[str, Path]
) -> None:
    pop = runtime.variant("pop", model_dirs["popularity"])
    assert runtime.active_version == "knn"
    assert runtime.loaded_versions == ("knn", "pop")
    assert runtime.variant("pop") is pop  # loaded once
    assert runtime.variant("knn") is runtime.snapshot
    user = "u001"
    knn_list = _ids(runtime.recommend(user, 5))
    pop_list = _ids(runtime.recommend(user, 5, snapshot=pop))
    assert knn_list != pop_list
    # live state is shared: an event reaches every loaded version at once
    runtime.on_events([EventIn("e1", user, pop_list[0], "like", 1_700_900_000.0)])
    assert pop_list[0] not in _ids(runtime.recommend(user, 5, snapshot=pop))
    runtime.on_items_deleted([knn_list[0]])
    assert knn_list[0] not in _ids(runtime.recommend(user, 5, snapshot=pop))
    assert knn_list[0] not in _ids(runtime.recommend(user, 5))


def test_an_unloadable_variant_fails_with_its_reason_once(
    runtime: ModelRuntime, tmp_path: Path
) -> None:
    with pytest.raises(SerendipError, match="no store"):
        runtime.variant("nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(SerendipError, match=r"'bad'.*was not activated"):
        runtime.variant("bad", broken)
    with pytest.raises(SerendipError, match="'bad'"):  # remembered, not reloaded per request
        runtime.variant("bad")
    assert runtime.active_version == "knn" and runtime.loaded_versions == ("knn",)


def test_a_variant_is_found_by_its_registered_path(
    sqlite_store: Store, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "pop"
    shutil.copytree(model_dirs["popularity"], copy)
    sqlite_store.models.register("popularity", str(copy), {}, version="pop")
    rt = ModelRuntime(sqlite_store, freeze_gc=False)
    rt.load(model_dirs["item-knn"], "knn")
    assert rt.variant("pop").directory == copy
    with pytest.raises(SerendipError, match="no model version 'ghost'"):
        rt.variant("ghost")


def test_pinned_versions_survive_a_swap_and_unpinned_ones_are_dropped(
    runtime: ModelRuntime, model_dirs: dict[str, Path]
) -> None:
    runtime.pin(["knn", "pop"])
    runtime.variant("pop", model_dirs["popularity"])
    old = runtime.snapshot
    runtime.load(model_dirs["popularity"], "pop")  # pop becomes active; knn is still pinned
    assert runtime.active_version == "pop"
    assert runtime.variant("knn") is old
    runtime.pin([])
    assert runtime.loaded_versions == ("pop",)


def test_personalization_off_serves_the_non_personalized_list(runtime: ModelRuntime) -> None:
    user = "u001"
    personal = _ids(runtime.recommend(user, 5))
    trending = _ids(runtime.trending(5))
    assert personal != trending
    runtime.on_consent(user, personalization=False, activity_for_others=True)
    assert not runtime.personalized(user)
    recs = runtime.recommend(user, 5, explain=True)
    assert _ids(recs) == trending
    assert all(
        r.explanation and "personalization is off" in str(r.explanation["text"]) for r in recs
    )
    # the request's filters still hold
    assert _ids(runtime.recommend(user, 4, exclude=[trending[0]])) == trending[1:5]
    cat = str(runtime.snapshot.model.item_category_[0]) if runtime.snapshot else ""
    in_cat = runtime.recommend(user, 5, categories=[cat, "no-such-category"])
    assert in_cat and _ids(in_cat) == _ids(runtime.trending(5, category=cat))
    runtime.on_consent(user, personalization=True, activity_for_others=False)
    assert _ids(runtime.recommend(user, 5)) == personal
    assert runtime.withheld_activity == frozenset({user})


def test_consents_are_read_from_the_store_at_load(
    sqlite_store: Store, model_dirs: dict[str, Path]
) -> None:
    sqlite_store.consents.update("u001", personalization=False)
    sqlite_store.consents.update("u002", activity_for_others=False)
    rt = ModelRuntime(sqlite_store, freeze_gc=False)
    rt.load(model_dirs["item-knn"], "knn")
    assert not rt.personalized("u001") and rt.personalized("u002")
    assert rt.withheld_activity == frozenset({"u002"})
    assert _ids(rt.recommend("u001", 5)) == _ids(rt.trending(5))
