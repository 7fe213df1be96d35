"""Behaviour of the content family beyond the shared contract: same-topic recommendations,
cosines that match a hand computation, items nobody has touched yet, users known only by their
declared interests or a context, explanations built from shared words, and the offline
sentence-embedding model."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.models import Recommender
from serendip.models.content import (
    FeatureContent,
    SentenceContent,
    TfidfContent,
    Word2VecContent,
    bundled_model_path,
    interest_matrix,
    static_model_dir,
    tag_token,
    tokenize,
)
from tests.conftest import make_toy_platform

N_TOPICS = 4


@cache
def _toy() -> Dataset:
    return make_toy_platform(seed=11)


def _topic_of_items(ds: Dataset) -> np.ndarray:
    return np.array([int(c[3:]) for c in ds.item_meta.category])


def _topic_of_users(ds: Dataset) -> np.ndarray:
    return np.array([int(x[0][3:]) for x in ds.user_meta.interests])


def _users_frame(ds: Dataset) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": ds.users.ids,
            "created_at": ds.user_meta.created_at,
            "interests": ["|".join(t) for t in ds.user_meta.interests],
        }
    )


def _with_extra(
    ds: Dataset, items: pd.DataFrame | None = None, users: pd.DataFrame | None = None
) -> Dataset:
    """The toy platform plus extra catalogue rows and/or users (no interactions of their own)."""
    items_frame = ds.items_frame()
    users_frame = _users_frame(ds)
    if items is not None:
        items_frame = pd.concat([items_frame, items], ignore_index=True)
    if users is not None:
        users_frame = pd.concat([users_frame, users], ignore_index=True)
    return Dataset.from_frames(
        ds.interactions_frame(), items_frame, users_frame, ds.social_frame(), name="toy+"
    )


# ----------------------------------------------------------------------------- text helpers
def test_tokens_and_tag_tokens_fold_case_and_punctuation() -> None:
    assert tokenize("Hip-Hop, the BEST of 1995!") == ["hip", "hop", "the", "best", "of", "1995"]
    assert tag_token("Hip Hop") == tag_token("hip-hop") == "hip_hop"


def test_interest_matrix_matches_tags_categories_and_words() -> None:
    items = pd.DataFrame(
        {
            "item": ["a", "b", "c", "d"],
            "title": ["Jazz night", "", "", ""],
            "tags": ["", "Hip Hop|live", "", ""],
            "category": ["", "", "hip-hop", "sports"],
        }
    )
    users = pd.DataFrame({"user": ["u", "v"], "interests": ["hip hop|jazz", ""]})
    ds = Dataset.from_frames(pd.DataFrame({"user": ["v"], "item": ["d"]}), items, users)
    m = interest_matrix(ds.item_meta, ds.user_meta, np.array([True, True])).toarray()
    np.testing.assert_allclose(m[0], [1 / 3, 1 / 3, 1 / 3, 0.0], rtol=1e-6)
    assert not m[1].any()


# ----------------------------------------------------------------------------- TF-IDF
def test_tfidf_similarity_is_the_cosine_of_tfidf_vectors() -> None:
    items = pd.DataFrame(
        {
            "item": ["x", "y", "z"],
            "text": ["apple banana", "apple banana cherry", "dog cat"],
        }
    )
    inter = pd.DataFrame({"user": ["u", "u", "v"], "item": ["x", "z", "y"]})
    ds = Dataset.from_frames(inter, items)
    model = TfidfContent(title_weight=0.0, tag_weight=0.0, min_df=1, sublinear_tf=False).fit(ds)
    # Hand computation, smooth idf = ln((1 + n) / (1 + df)) + 1 with n = 3 documents.
    idf_ab = np.log(4 / 3) + 1
    idf_c = np.log(4 / 2) + 1
    x = np.array([idf_ab, idf_ab, 0.0])
    y = np.array([idf_ab, idf_ab, idf_c])
    expected = x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
    sims = model._similar(0)
    assert sims[1] == pytest.approx(expected, rel=1e-5)
    assert sims[2] == pytest.approx(0.0, abs=1e-7)
    assert model.similar_items("x", 2).item_ids(0)[0] == "y"


def test_tfidf_recommends_items_of_the_users_topic() -> None:
    ds = _toy()
    model = TfidfContent().fit(ds)
    users = list(ds.users.ids[:30])
    recs = model.recommend(users, 5)
    item_topic, user_topic = _topic_of_items(ds), _topic_of_users(ds)
    on_topic = [
        np.mean(item_topic[recs.items[r][recs.items[r] >= 0]] == user_topic[ds.users.index(u)])
        for r, u in enumerate(users)
    ]
    assert np.mean(on_topic) >= 0.8  # random would be ~0.25


@pytest.mark.parametrize("cls", [TfidfContent, Word2VecContent, FeatureContent])
def test_a_brand_new_item_is_recommended_to_a_matching_user(cls: type[Recommender]) -> None:
    ds = _toy()
    user = int(np.flatnonzero(_topic_of_users(ds) == 2)[0])
    hist = ds.seen()[user].indices
    # A new post written the way this user's favourite items are: their most frequent words
    # and tags, in their topic. Nobody has interacted with it.
    words = Counter(w for j in hist for w in ds.item_meta.text[j].split())
    tags = Counter(t for j in hist for t in ds.item_meta.tags[j])
    top = [w for w, _ in words.most_common(8)]
    new_item = pd.DataFrame(
        {
            "item": ["brand-new"],
            "title": ["title " + " ".join(top[:2])],
            "text": [" ".join(top)],
            "tags": ["|".join(t for t, _ in tags.most_common(2))],
            "category": ["cat2"],
            "author": ["u001"],
            "created_at": [float(np.nanmax(ds.item_meta.created_at))],
        }
    )
    data = _with_extra(ds, items=new_item)
    assert data.item_counts()[data.items.index("brand-new")] == 0
    model = cls(dict(cls.quick_params)).fit(data)
    recs = model.recommend([data.users.id(user)], 5)
    assert "brand-new" in recs.item_ids(0)
    # ... and to the users of other topics it is not.
    others = [data.users.id(int(u)) for u in np.flatnonzero(_topic_of_users(ds) == 0)[:5]]
    assert all("brand-new" not in model.recommend([o], 5).item_ids(0) for o in others)


def test_a_user_without_history_gets_recommendations_from_declared_interests() -> None:
    ds = _toy()
    newcomer = pd.DataFrame({"user": ["newbie"], "created_at": [0.0], "interests": ["cat3"]})
    data = _with_extra(ds, users=newcomer)
    model = TfidfContent().fit(data)
    recs = model.recommend(["newbie"], 5)
    topics = _topic_of_items(data)[recs.items[0]]
    assert (topics == 3).all()
    exp = model.explain("newbie", recs.item_ids(0)[0])
    assert any(e.kind == "feature" and e.id == "interest=cat3" for e in exp.evidence)
    assert "interests" in exp.text
    assert not any(e.kind == "item" for e in exp.evidence)  # no history to cite


def test_an_unknown_user_is_profiled_from_the_context_items() -> None:
    ds = _toy()
    model = TfidfContent().fit(ds)
    topic = _topic_of_items(ds)
    context = list(ds.items.ids[np.flatnonzero(topic == 1)[:4]])
    recs = model.recommend(["stranger"], 5, context={"stranger": context})
    assert (topic[recs.items[0]] == 1).all()
    assert not set(recs.item_ids(0)) & set(context)


def test_explanation_cites_history_items_and_words_both_sides_share() -> None:
    ds = _toy()
    model = TfidfContent().fit(ds)
    u = str(ds.users.ids[5])
    item = model.recommend([u], 1).item_ids(0)[0]
    exp = model.explain(u, item)
    uidx, iidx = ds.users.index(u), ds.items.index(item)
    hist = set(ds.items.lookup(ds.seen()[uidx].indices))
    cited = [e for e in exp.evidence if e.kind == "item"]
    assert cited and all(e.id in hist for e in cited)
    assert exp.text.startswith("Because you engaged with")
    # The top cited item is the history item most cosine-similar to the recommendation
    # (weighted by the interaction's weight): recompute it directly.
    sims = model._similar(iidx)
    w = model.weights_[uidx]
    best = w.indices[np.argmax(w.data * sims[w.indices])]
    assert cited[0].id == ds.items.id(int(best))
    words = [e.id for e in exp.evidence if e.kind == "word"]

    def doc(i: int) -> set[str]:  # what TF-IDF reads: title, text, tags and the category
        return set(tokenize(f"{ds.item_meta.document(i)} {ds.item_meta.category[i]}"))

    hist_docs = set().union(*(doc(int(j)) for j in ds.seen()[uidx].indices))
    item_doc = doc(iidx)
    assert words and all(w.lstrip("#") in item_doc & hist_docs for w in words)


def test_update_moves_the_profile_towards_the_new_events() -> None:
    ds = _toy()
    model = TfidfContent().fit(ds)
    user_topic = _topic_of_users(ds)
    u = int(np.flatnonzero(user_topic == 0)[0])
    uid = ds.users.id(u)
    topic = _topic_of_items(ds)
    other = [ds.items.id(int(i)) for i in np.flatnonzero(topic == 3)[:12]]
    before = (topic[model.recommend([uid], 5).items[0]] == 3).mean()
    model.update(pd.DataFrame({"user": uid, "item": other, "event": "share"}))
    after = (topic[model.recommend([uid], 5).items[0]] == 3).mean()
    assert after > before


def test_bad_event_weights_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown event types"):
        TfidfContent(event_weights={"clap": 1.0})


# ----------------------------------------------------------------------------- features
def test_feature_explanations_name_shared_features() -> None:
    ds = _toy()
    model = FeatureContent().fit(ds)
    u = str(ds.users.ids[3])
    item = model.recommend([u], 1).item_ids(0)[0]
    exp = model.explain(u, item)
    cat = ds.item_meta.category[ds.items.index(item)]
    assert any(e.kind == "word" and e.id == f"category={cat}" for e in exp.evidence)


def test_feature_numbers_are_standardised_log_length_and_age() -> None:
    ds = _toy()
    model = FeatureContent(
        length_weight=1.0, age_weight=1.0, category_weight=0.0, tag_weight=0.0, author_weight=0.0
    ).fit(ds)
    assert list(model.term_names_[-2:]) == ["text length", "item age"]
    meta = ds.item_meta
    length = np.log1p([len(tokenize(f"{meta.title[i]} {meta.text[i]}")) for i in range(len(meta))])
    age = np.log1p((np.nanmax(ds.interactions.timestamp) - meta.created_at) / 86_400)
    z = np.column_stack([(x - x.mean()) / x.std() for x in (length, age)])
    expected = z / np.linalg.norm(z, axis=1, keepdims=True)
    got = sp.csr_matrix(model.vectors_).toarray()[:, -2:]
    np.testing.assert_allclose(got, expected, atol=1e-5)


# ----------------------------------------------------------------------------- word2vec
def test_word2vec_is_deterministic_and_groups_topics() -> None:
    ds = _toy()
    a = Word2VecContent().fit(ds)
    b = Word2VecContent().fit(ds)
    np.testing.assert_array_equal(a.vectors_, b.vectors_)
    topic = _topic_of_items(ds)
    sims = a.vectors_ @ a.vectors_.T
    same = sims[topic[:, None] == topic[None, :]].mean()
    diff = sims[topic[:, None] != topic[None, :]].mean()
    assert same > diff + 0.1


# ----------------------------------------------------------------------------- sentence embeddings
def test_bundled_sentence_model_is_on_disk() -> None:
    path = bundled_model_path()
    assert (path / "modules.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_sbert_loads_offline_and_embeds_by_meaning(tmp_path: Path) -> None:
    items = pd.DataFrame(
        {
            "item": ["py1", "py2", "cake", "empty"],
            "title": [
                "Python programming tutorial",
                "Learn to code in Python",
                "Chocolate cake recipe",
                "",
            ],
            "tags": ["coding", "software", "baking", ""],
        }
    )
    inter = pd.DataFrame({"user": ["u", "v"], "item": ["py1", "cake"]})
    ds = Dataset.from_frames(inter, items)
    model = SentenceContent().fit(ds)
    v = np.asarray(model.vectors_)
    assert v.shape == (4, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-5)
    assert not v[3].any()  # an item without text has no embedding (and never a NaN)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert model.recommend(["u"], 1).item_ids(0) == ["py2"]
    # The embeddings live in the artifact: a loaded model needs no encoder.
    model.save(tmp_path / "sbert")
    loaded = Recommender.load(tmp_path / "sbert")
    np.testing.assert_array_equal(loaded.vectors_, v)  # type: ignore[attr-defined]


def test_sbert_rejects_a_path_that_is_not_a_model(tmp_path: Path) -> None:
    ds = Dataset.from_frames(pd.DataFrame({"user": ["u"], "item": ["i"]}))
    with pytest.raises(ConfigError, match="not a sentence-transformers model"):
        SentenceContent(model_path=str(tmp_path)).fit(ds)


@pytest.mark.slow
def test_sbert_static_encoder_distills_once_and_embeds_by_meaning(tmp_path: Path) -> None:
    # The static table is distilled from the bundled transformer (offline) and cached; the
    # second model reads the cache instead of distilling again.
    items = pd.DataFrame(
        {
            "item": ["py1", "py2", "cake", "empty"],
            "title": [
                "Python programming tutorial",
                "Learn to code in Python",
                "Chocolate cake",
                "",
            ],
            "tags": ["coding", "software", "baking", ""],
        }
    )
    ds = Dataset.from_frames(pd.DataFrame({"user": ["u", "v"], "item": ["py1", "cake"]}), items)
    cache = tmp_path / "cache"
    model = SentenceContent(encoder="static", static_dims=64, static_cache_dir=str(cache)).fit(ds)
    v = np.asarray(model.vectors_)
    assert v.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-5)
    assert not v[3].any()
    assert v[0] @ v[1] > v[0] @ v[2]
    assert model.recommend(["u"], 1).item_ids(0) == ["py2"]
    table = static_model_dir(bundled_model_path(), 64, str(cache))
    assert (table / "config.json").is_file()
    again = SentenceContent(encoder="static", static_dims=64, static_cache_dir=str(cache)).fit(ds)
    np.testing.assert_allclose(np.asarray(again.vectors_), v, atol=1e-6)
