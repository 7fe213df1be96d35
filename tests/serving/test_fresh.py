"""The live catalog step on zoo models: a content model keeps a per-item interest matrix under
the name the pipeline uses for users' declared interests, and a live item in a user's most read
category once crashed its requests; through the zoo adapter it is served."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from serendip.data.dataset import Dataset
from serendip.models.content import TfidfContent
from serendip.service.runtime import ModelRuntime
from tests.conftest import make_toy_platform


@pytest.fixture(scope="module")
def toy() -> Dataset:
    return make_toy_platform()


def _top_category(ds: Dataset, user: str) -> str:
    u = ds.users.index(user)
    cats = ds.item_meta.category[ds.interactions.item[ds.interactions.user == u]]
    return str(Counter(str(c) for c in cats).most_common(1)[0][0])


def test_a_live_item_reaches_a_content_models_reader_of_its_category(
    toy: Dataset, tmp_path: Path
) -> None:
    directory = TfidfContent().fit(toy).save(tmp_path / "tfidf")
    rt = ModelRuntime(build_in_background=False, freeze_gc=False)
    rt.load(directory, "1")
    user = str(toy.users.ids[0])
    category = _top_category(toy, user)
    rt.on_items([{"item": "fresh-1", "category": category, "author": "", "created_at": 1.0}])
    recs = rt.recommend(user, 10, explain=True)
    assert len(recs) == 10
    fresh = [r for r in recs if r.item == "fresh-1"]
    assert fresh and fresh[0].explanation is not None
    assert fresh[0].explanation["text"] == f"New in {category}, which you often read"
