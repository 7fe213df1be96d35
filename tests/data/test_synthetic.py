"""The synthetic social platform: format, integrity, the behaviours it promises, determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from serendip.data.dataset import Dataset
from serendip.data.synthetic import (
    PRESETS,
    PlatformConfig,
    generate_platform,
    load_truth,
    resolve_config,
    response_probability,
)
from serendip.errors import ConfigError, DataError

SEED = 7
FILES = (
    "interactions.parquet",
    "items.parquet",
    "users.parquet",
    "social.parquet",
    "manifest.json",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_platform("tiny", seed=SEED, out=tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def frames(tiny: Path) -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_parquet(tiny / f"{name}.parquet")
        for name in ("interactions", "items", "users", "social")
    }


@pytest.fixture(scope="module")
def ds(frames: dict[str, pd.DataFrame]) -> Dataset:
    return Dataset.from_frames(
        frames["interactions"], frames["items"], frames["users"], frames["social"], name="tiny"
    )


def in_network_mask(frames: dict[str, pd.DataFrame]) -> np.ndarray:
    """Per interaction row: the item's author is a followee of the user, or a followee liked or
    shared the item strictly earlier. Computed from the files alone, independently of the generator."""
    inter, items, social = frames["interactions"], frames["items"], frames["social"]
    rows = inter.reset_index(drop=True).assign(row=lambda f: np.arange(len(f)))
    rows = rows.merge(items[["item", "author"]], on="item", how="left")
    follows = social[["follower", "followee"]].assign(follows=True)
    by_author = rows.merge(
        follows, left_on=["user", "author"], right_on=["follower", "followee"], how="left"
    )
    author_hit = by_author.sort_values("row")["follows"].fillna(False).to_numpy(dtype=bool)
    engaged = inter[inter["event"].isin(["like", "share"])]
    first = engaged.groupby(["user", "item"])["timestamp"].min().reset_index()
    seen_by_followee = social.merge(first, left_on="followee", right_on="user")
    earliest = seen_by_followee.groupby(["follower", "item"])["timestamp"].min().reset_index()
    earliest.columns = pd.Index(["user", "item", "followee_time"])
    social_hit = rows.merge(earliest, on=["user", "item"], how="left").sort_values("row")
    social_hit_mask = (social_hit["followee_time"] < social_hit["timestamp"]).to_numpy()
    return author_hit | social_hit_mask


# ----------------------------------------------------------------------------- format
def test_directory_layout_and_manifest(tiny: Path, frames: dict[str, pd.DataFrame]) -> None:
    for name in FILES:
        assert (tiny / name).is_file(), name
    for name in ("users.parquet", "items.parquet", "response.json"):
        assert (tiny / "truth" / name).is_file(), name
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["format"] == "serendip-platform"
    assert manifest["preset"] == "tiny" and manifest["seed"] == SEED
    counts = manifest["counts"]
    assert counts["interactions"] == len(frames["interactions"])
    assert counts["items"] == len(frames["items"]) and counts["users"] == len(frames["users"])
    assert counts["social_edges"] == len(frames["social"])
    assert sum(counts["events"].values()) == counts["interactions"]
    assert PlatformConfig.model_validate(manifest["config"]) == PRESETS["tiny"]


def test_column_types(tiny: Path) -> None:
    schema = pq.read_schema(tiny / "interactions.parquet")
    assert schema.names == ["user", "item", "timestamp", "event", "value"]
    assert str(schema.field("timestamp").type) == "int64"
    assert pq.read_schema(tiny / "items.parquet").names == [
        "item",
        "title",
        "text",
        "tags",
        "category",
        "author",
        "created_at",
    ]
    assert str(pq.read_schema(tiny / "items.parquet").field("created_at").type) == "int64"
    assert pq.read_schema(tiny / "users.parquet").names[:3] == ["user", "created_at", "interests"]
    assert pq.read_schema(tiny / "social.parquet").names == ["follower", "followee", "created_at"]


def test_ids_are_padded_strings(frames: dict[str, pd.DataFrame]) -> None:
    assert frames["users"]["user"].str.fullmatch(r"u\d{6}").all()
    assert frames["items"]["item"].str.fullmatch(r"i\d{7}").all()
    assert frames["users"]["user"].iloc[123] == "u000123"


def test_counts_near_targets(ds: Dataset) -> None:
    cfg = PRESETS["tiny"]
    assert ds.n_users == cfg.n_users
    assert ds.n_items == cfg.n_items  # no interaction names an item the catalogue lacks
    assert abs(ds.n_interactions - cfg.n_interactions) <= 0.05 * cfg.n_interactions


def test_references_are_valid(frames: dict[str, pd.DataFrame], ds: Dataset) -> None:
    users = set(frames["users"]["user"])
    assert set(frames["interactions"]["user"]) <= users
    assert set(frames["interactions"]["item"]) <= set(frames["items"]["item"])
    assert set(frames["items"]["author"]) <= users
    social = frames["social"]
    assert (social["follower"] != social["followee"]).all()
    assert not social.duplicated(["follower", "followee"]).any()
    assert set(social["follower"]) | set(social["followee"]) <= users
    assert (ds.item_author_index() >= 0).all()
    # Nobody interacts with their own post.
    merged = frames["interactions"].merge(frames["items"][["item", "author"]], on="item")
    assert (merged["user"] != merged["author"]).all()


def test_metadata_is_filled(ds: Dataset, frames: dict[str, pd.DataFrame]) -> None:
    meta = ds.item_meta
    assert all(meta.title) and all(meta.text) and all(len(t) >= 1 for t in meta.tags)
    assert all(len(t) <= 5 for t in meta.tags) and all(len(set(t)) == len(t) for t in meta.tags)
    assert len(set(meta.category)) >= 8
    sentences = [s for s in meta.text[0].split(". ") if s]
    assert 2 <= len(sentences) <= 4 and meta.text[0].endswith(".")
    declared = [i for i in ds.user_meta.interests if i]
    assert 0.5 * ds.n_users < len(declared) < ds.n_users
    assert ds.user_meta.private.any() and not ds.user_meta.private.all()


# ----------------------------------------------------------------------------- behaviour
def test_in_network_share_matches_config(tiny: Path, frames: dict[str, pd.DataFrame]) -> None:
    measured = in_network_mask(frames).mean()
    assert abs(measured - PRESETS["tiny"].in_network_share) <= 0.05
    # The generator's own accounting is the same measurement.
    reported = json.loads((tiny / "manifest.json").read_text())["in_network_share"]
    assert abs(measured - reported) <= 0.01


def test_in_network_share_override(tmp_path: Path) -> None:
    out = generate_platform("tiny", seed=3, out=tmp_path, in_network_share=0.3)
    frames = {n: pd.read_parquet(out / f"{n}.parquet") for n in ("interactions", "items", "social")}
    assert abs(in_network_mask(frames).mean() - 0.3) <= 0.05
    assert json.loads((out / "manifest.json").read_text())["config"]["in_network_share"] == 0.3


def test_funnel(frames: dict[str, pd.DataFrame]) -> None:
    inter = frames["interactions"]
    counts = inter["event"].value_counts()
    assert counts["view"] > counts["click"] > counts["like"] > counts["share"] > 0
    assert counts["like"] > counts["comment"] > 0
    # Every click/like/comment/share follows a view of the same item by the same user.
    views = inter[inter["event"] == "view"][["user", "item", "timestamp"]]
    assert not views.duplicated(["user", "item"]).any()
    later = inter[inter["event"] != "view"].merge(
        views, on=["user", "item"], suffixes=("", "_view")
    )
    assert len(later) == (inter["event"] != "view").sum()
    assert (later["timestamp"] > later["timestamp_view"]).all()
    # Comments and shares come from users who liked the item.
    likes = set(zip(*inter[inter["event"] == "like"][["user", "item"]].to_numpy().T, strict=True))
    follow_ups = inter[inter["event"].isin(["comment", "share"])]
    assert all(pair in likes for pair in zip(follow_ups["user"], follow_ups["item"], strict=True))


def test_activity_is_heavy_tailed(ds: Dataset) -> None:
    counts = np.sort(ds.user_counts())[::-1]
    assert counts[: ds.n_users // 10].sum() > 0.4 * counts.sum()


def test_popularity_has_a_long_tail(ds: Dataset) -> None:
    counts = np.sort(ds.item_counts())
    share = np.cumsum(counts) / counts.sum()
    gini = 1 - 2 * share.mean() + 1 / len(counts)
    assert gini > 0.4  # uniform exposure would give about 0.2 at this density
    assert counts[-1] > 5 * np.median(counts)
    assert counts[-len(counts) // 10 :].sum() > 0.25 * counts.sum()


def test_timestamps_are_consistent(frames: dict[str, pd.DataFrame]) -> None:
    inter = frames["interactions"].merge(frames["items"][["item", "created_at"]], on="item")
    assert (inter["timestamp"] > inter["created_at"]).all()
    users = frames["interactions"].merge(frames["users"][["user", "created_at"]], on="user")
    assert (users["timestamp"] > users["created_at"]).all()
    start = int(pd.Timestamp(PRESETS["tiny"].start_date, tz="UTC").timestamp())
    assert frames["items"]["created_at"].min() >= start
    # Freshness: interactions favour items created shortly before, far more than picking
    # uniformly among the items that existed then would (whose mean age is the baseline).
    t = inter["timestamp"].to_numpy()
    age = t - inter["created_at"].to_numpy()
    created = np.sort(frames["items"]["created_at"].to_numpy())
    existing = np.searchsorted(created, t)
    baseline_age = t - np.concatenate([[0], np.cumsum(created)])[existing] / existing
    assert np.median(age) < 0.4 * np.median(baseline_age)
    assert np.median(age) < 10 * 86_400
    span = (frames["items"]["created_at"].max() - frames["items"]["created_at"].min()) / 86_400
    assert span > 0.9 * PRESETS["tiny"].days


def test_reciprocity_is_higher_within_communities(
    tiny: Path, frames: dict[str, pd.DataFrame]
) -> None:
    truth = pd.read_parquet(tiny / "truth" / "users.parquet")[["user", "community"]]
    social = frames["social"]
    pairs = set(zip(social["follower"], social["followee"], strict=True))
    back = np.array([(b, a) in pairs for a, b in pairs])
    comm = dict(zip(truth["user"], truth["community"], strict=True))
    same = np.array([comm[a] == comm[b] for a, b in pairs])
    assert same.mean() > 0.6  # most follows stay inside the community
    assert back[same].mean() > 2 * back[~same].mean()


def test_out_of_network_interactions_follow_interests(
    tiny: Path, frames: dict[str, pd.DataFrame]
) -> None:
    truth = load_truth(tiny)
    inter = frames["interactions"]
    oon = inter[~in_network_mask(frames) & (inter["event"] == "view")]
    uidx, iidx = (
        truth.users.indices(oon["user"].to_numpy()),
        truth.items.indices(oon["item"].to_numpy()),
    )
    top3 = np.argsort(-truth.user_topics, axis=1)[:, :3]
    hit = (top3[uidx] == truth.item_topic[iidx][:, None]).any(axis=1)
    chance = 3 / len(truth.topics)
    assert hit.mean() > 2.5 * chance


def test_declared_interests_are_a_noisy_subset(tiny: Path, ds: Dataset) -> None:
    truth = load_truth(tiny)
    top3 = np.argsort(-truth.user_topics, axis=1)[:, :3]
    names = np.asarray(truth.topics)
    inside, total, exact = 0, 0, 0
    for u, declared in enumerate(ds.user_meta.interests):
        if not declared:
            continue
        true_top = set(names[top3[u]])
        inside += sum(d in true_top for d in declared)
        total += len(declared)
        exact += set(declared) == true_top
    assert inside / total > 0.8
    assert exact < sum(1 for d in ds.user_meta.interests if d)  # noisy: not just the top 3


def test_text_carries_topic_signal(tiny: Path, ds: Dataset) -> None:
    """TF-IDF of title + text + tags: nearest topic centroid (fitted on half) finds the topic."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    topic = load_truth(tiny).item_topic
    x = TfidfVectorizer(sublinear_tf=True).fit_transform(ds.item_meta.documents())
    half = len(topic) // 2
    centroids = np.vstack(
        [np.asarray(x[:half][topic[:half] == k].mean(axis=0)) for k in range(topic.max() + 1)]
    )
    predicted = np.asarray(x[half:] @ centroids.T).argmax(axis=1)
    assert (predicted == topic[half:]).mean() > 0.8


def test_response_probability_is_the_generating_model(
    tiny: Path, frames: dict[str, pd.DataFrame]
) -> None:
    truth = load_truth(tiny)
    inter = frames["interactions"]
    views = inter[inter["event"] == "view"]
    liked = set(zip(*inter[inter["event"] == "like"][["user", "item"]].to_numpy().T, strict=True))
    p = response_probability(truth, views["user"].to_numpy(), views["item"].to_numpy())
    assert p.shape == (len(views),) and ((p > 0) & (p < 1)).all()
    y = np.array([pair in liked for pair in zip(views["user"], views["item"], strict=True)])
    assert abs(p.mean() - y.mean()) < 0.15 * y.mean()  # calibrated on what was shown
    low, high = p <= np.quantile(p, 0.25), p >= np.quantile(p, 0.75)
    assert y[high].mean() > 2 * y[low].mean()  # and it ranks
    share = response_probability(
        truth, views["user"].to_numpy()[:50], views["item"].to_numpy()[:50], "share"
    )
    assert (share < p[:50]).all()
    assert (response_probability(truth, ["u000000"], ["i0000000"], "view") == 1).all()


def test_response_probability_rejects_unknown_ids(tiny: Path) -> None:
    truth = load_truth(tiny / "truth")
    with pytest.raises(DataError, match="unknown user 'nobody'"):
        response_probability(truth, ["nobody"], ["i0000000"])
    with pytest.raises(DataError, match="unknown item"):
        response_probability(truth, ["u000000"], ["i9999999"])
    with pytest.raises(DataError, match="equal length"):
        response_probability(truth, ["u000000", "u000001"], ["i0000000"])
    with pytest.raises(DataError, match="missing"):
        load_truth(tiny / "nowhere")


# ----------------------------------------------------------------------------- determinism
def _digest(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes(tiny: Path, tmp_path: Path) -> None:
    again = generate_platform("tiny", seed=SEED, out=tmp_path / "again")
    assert _digest(again) == _digest(tiny)


def test_different_seed_gives_different_data(tiny: Path, tmp_path: Path) -> None:
    other = generate_platform("tiny", seed=SEED + 1, out=tmp_path / "other")
    a = pd.read_parquet(tiny / "interactions.parquet")
    b = pd.read_parquet(other / "interactions.parquet")
    assert not a.equals(b)
    assert (tiny / "social.parquet").read_bytes() != (other / "social.parquet").read_bytes()


# ----------------------------------------------------------------------------- config and API
def test_presets() -> None:
    assert set(PRESETS) == {"tiny", "small", "platform"}
    assert PRESETS["platform"].n_users == 100_000 and PRESETS["platform"].n_items == 1_000_000
    assert PRESETS["platform"].n_interactions == 20_000_000
    assert PRESETS["small"].n_users == 5_000 and PRESETS["small"].n_items == 20_000
    assert all(cfg.in_network_share == 0.6 for cfg in PRESETS.values())


def test_overrides_are_validated() -> None:
    assert resolve_config("tiny", {"in_network_share": 0.4}).in_network_share == 0.4
    assert (
        resolve_config("tiny", {"like_rate": "0.05"}).like_rate == 0.05
    )  # strings from the CLI convert
    with pytest.raises(
        ConfigError, match=r"unknown setting 'in_network'.*valid: .*in_network_share"
    ):
        resolve_config("tiny", {"in_network": 0.4})
    with pytest.raises(ConfigError, match="in_network_share"):
        resolve_config("tiny", {"in_network_share": 1.5})
    with pytest.raises(ConfigError, match="unknown preset 'huge'; valid: tiny, small, platform"):
        resolve_config("huge")
    with pytest.raises(ConfigError, match="warmup_days"):
        resolve_config("tiny", {"days": 20, "warmup_days": 19})
    with pytest.raises(Exception, match="frozen"):
        PRESETS["tiny"].n_users = 5  # type: ignore[misc]


def test_generate_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        generate_platform("tiny", seed=1, out=tmp_path, colour="blue")
    with pytest.raises(ConfigError, match="seed"):
        generate_platform("tiny", seed=-1, out=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        generate_platform("tiny", seed=1, out=tmp_path / "file")


def test_progress_and_streaming(tmp_path: Path) -> None:
    """A custom config, a small row group: the log is written in several row groups, and the
    progress callback sees every stage through to its total."""
    calls: list[tuple[str, int, int]] = []
    cfg = PRESETS["tiny"].model_copy(
        update={"n_users": 120, "n_items": 400, "n_interactions": 4_000, "days": 30}
    )
    out = generate_platform(
        cfg,
        seed=1,
        out=tmp_path,
        progress=lambda *a: calls.append(a),
        row_group_rows=1_000,
        item_chunk=1_000,
    )
    assert pq.ParquetFile(out / "interactions.parquet").num_row_groups >= 3
    assert json.loads((out / "manifest.json").read_text())["preset"] == "custom"
    final = {stage: (done, total) for stage, done, total in calls}
    assert set(final) == {"world", "items", "interactions", "truth"}
    assert all(done == total for done, total in final.values())
    assert final["interactions"][1] == 30 - cfg.warmup_days
    assert re.fullmatch(r"\d+", str(len(pd.read_parquet(out / "interactions.parquet"))))
