"""Dataset analysis: hand-computed statistics, the in-network measure against a brute-force
reference, data-quality findings, JSON safety, the HTML report, and the real datasets."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from serendip.data.analysis import DatasetAnalysis, QualityIssue, analyze_dataset, write_report
from serendip.data.analysis._pairs import PairIndex
from serendip.data.analysis._report import _render as render_html
from serendip.data.analysis._social import in_network_stats
from serendip.data.analysis._stats import gini, log_histogram
from serendip.data.dataset import Dataset, Interactions
from serendip.errors import ConfigError
from tests.conftest import make_toy_platform, shared_data

NOW = 1_800_000_000.0  # 2027-01-15: "the future" starts here in these tests
MON = 1_704_067_200.0  # 2024-01-01 00:00:00 UTC, a Monday
DAY = 86_400.0


def problems(a: DatasetAnalysis) -> dict[str, QualityIssue]:
    return {q.problem: q for q in a.quality}


def find(a: DatasetAnalysis, fragment: str) -> QualityIssue | None:
    hits = [q for q in a.quality if fragment in q.problem]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


# --------------------------------------------------------------------------- a hand-made dataset
@pytest.fixture(scope="module")
def small() -> Dataset:
    """4 users (d inactive), 4 items (w never touched); a-x has a view and a like, b-x an exact
    duplicate view. Item popularity x=4, y=1, z=1; user activity a=3, b=2, c=1, d=0."""
    inter = pd.DataFrame(
        {
            "user": ["a", "a", "a", "b", "b", "c"],
            "item": ["x", "x", "y", "x", "x", "z"],
            "timestamp": [
                MON + 10.5 * 3600,
                MON + 11 * 3600,
                MON + DAY,
                MON + 8 * DAY,
                MON + 8 * DAY,
                MON + 9 * DAY,
            ],
            "event": ["view", "like", "view", "view", "view", "share"],
        }
    )
    items = pd.DataFrame(
        {
            "item": ["x", "y", "z", "w"],
            "title": ["X", "Y", "", ""],
            "text": ["one two three", "", "", ""],
            "tags": ["t1|t2", "t1", "", ""],
            "category": ["c1", "c1", "c2", ""],
            "created_at": [MON - DAY, MON - DAY, MON - DAY, np.nan],
        }
    )
    users = pd.DataFrame({"user": ["a", "b", "c", "d"], "interests": ["c1", "", "c1|c2", ""]})
    return Dataset.from_frames(inter, items, users, name="small")


@pytest.fixture(scope="module")
def small_analysis(small: Dataset) -> DatasetAnalysis:
    return analyze_dataset(small, now=NOW)


def test_counts_and_density(small_analysis: DatasetAnalysis) -> None:
    c = small_analysis.counts
    assert (c.n_users, c.n_items, c.n_interactions) == (4, 4, 6)
    assert (c.n_users_with_interactions, c.n_items_with_interactions) == (3, 3)
    assert c.n_unique_pairs == 4  # (a,x), (a,y), (b,x), (c,z)
    assert c.density == pytest.approx(4 / 16)
    assert c.sparsity == pytest.approx(12 / 16)
    assert c.density_active == pytest.approx(4 / 9)
    assert c.n_social_edges == 0


def test_activity_long_tail_and_gini(small_analysis: DatasetAnalysis) -> None:
    act = small_analysis.activity
    assert (
        act.user_activity.count == 3
        and act.user_activity.max == 3
        and act.user_activity.median == 2
    )
    assert act.item_popularity.mean == pytest.approx(2.0)
    # Gini of [1, 2, 3] = 2 * (1 + 4 + 9) / (3 * 6) - 4 / 3 = 2 / 9
    assert act.gini_user_activity == pytest.approx(2 / 9)
    # with the inactive user's 0: [0, 1, 2, 3] -> 2 * (0 + 2 + 6 + 12) / (4 * 6) - 5 / 4 = 5 / 12
    assert act.gini_user_activity_all == pytest.approx(5 / 12)
    assert act.top20_items_share == pytest.approx(4 / 6)  # the top 1 of 3 items holds 4 of 6
    assert act.items_share_for_80pct == pytest.approx(2 / 3)  # 4/6 < 0.8 <= 5/6
    assert act.popularity_curve_x[0] == 0.0 and act.popularity_curve_y[-1] == pytest.approx(1.0)
    assert list(act.popularity_curve_y) == sorted(act.popularity_curve_y)


def test_cold_start(small_analysis: DatasetAnalysis) -> None:
    cold = small_analysis.cold_start
    assert [(c.threshold, c.count) for c in cold.users] == [(1, 1), (5, 4), (10, 4)]
    assert [(c.threshold, c.count) for c in cold.items] == [(1, 1), (5, 4), (10, 4)]
    assert cold.users[0].share == pytest.approx(0.25)
    assert (cold.users_without_interactions, cold.items_never_interacted) == (1, 1)


def test_event_funnel(small_analysis: DatasetAnalysis) -> None:
    ev = small_analysis.events
    assert ev.counts == {"view": 4, "like": 1, "share": 1}
    assert ev.users == {"view": 2, "like": 1, "share": 1}
    assert ev.pairs == {"view": 3, "like": 1, "share": 1}
    conv = {(c.source, c.target): c for c in ev.conversions}
    assert set(conv) == {("view", "like"), ("like", "share"), ("view", "share")}
    assert conv["view", "like"].count_ratio == pytest.approx(1 / 4)
    assert conv["view", "like"].pair_rate == pytest.approx(1 / 3)  # (a,x) of (a,x), (a,y), (b,x)
    assert conv["view", "share"].pair_rate == 0.0  # c shared z without viewing it


def test_temporal_patterns(small_analysis: DatasetAnalysis) -> None:
    t = small_analysis.temporal
    assert t is not None
    assert t.first == "2024-01-01T10:30:00Z" and t.last == "2024-01-10T00:00:00Z"
    assert t.span_days == pytest.approx(9 - 10.5 / 24)
    assert t.by_hour[10] == 1 and t.by_hour[11] == 1 and t.by_hour[0] == 4
    assert t.by_weekday == (2, 3, 1, 0, 0, 0, 0)  # Jan 1 (Mon) x2, Jan 2 + Jan 9 x2 (Tue), Jan 10
    g = t.growth
    assert g is not None and g.period == "week"
    assert g.starts == ("2024-01-01", "2024-01-08")
    assert g.interactions == (3, 3)
    assert g.new_users == (1, 2) and g.new_items == (2, 1)
    assert g.items_created == (0, 0)  # created 2023-12-31, before the first week
    assert t.item_age_days is not None and t.item_age_days.min == pytest.approx(1 + 10.5 / 24)
    assert t.share_before_item_creation == 0.0


def test_metadata_completeness(small_analysis: DatasetAnalysis) -> None:
    m = small_analysis.metadata
    assert m.item_field_counts == {
        "title": 2,
        "text": 1,
        "tags": 2,
        "category": 3,
        "author": 0,
        "created_at": 3,
        "any": 3,
    }
    assert m.item_fields["title"] == pytest.approx(0.5)
    assert m.text_words is not None and m.text_words.mean == 3
    assert (m.n_distinct_tags, m.n_distinct_categories, m.n_distinct_authors) == (2, 2, 0)
    assert m.top_tags[0] == ("t1", 2) and m.top_categories[0] == ("c1", 2)
    assert m.users_with_interests == 2 and m.n_distinct_interests == 2
    assert m.authors_known_users is None


def test_quality_findings_on_the_small_dataset(small_analysis: DatasetAnalysis) -> None:
    dup = find(small_analysis, "duplicate interactions")
    assert dup is not None and dup.count == 1 and dup.severity == "warning"
    assert dup.example is not None and "user 'b'" in dup.example and "item 'x'" in dup.example
    assert find(small_analysis, "repeated (user, item) pairs").count == 2  # type: ignore[union-attr]
    assert find(small_analysis, "users without interactions").count == 1  # type: ignore[union-attr]
    assert find(small_analysis, "never interacted").count == 1  # type: ignore[union-attr]
    no_meta = find(small_analysis, "items without any metadata")
    assert no_meta is not None and no_meta.count == 1 and no_meta.example == "item 'w'"
    assert (
        find(small_analysis, "future") is None and find(small_analysis, "before the item") is None
    )
    severities = [q.severity for q in small_analysis.quality]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)


def test_sections_absent_without_social_or_values(small_analysis: DatasetAnalysis) -> None:
    assert small_analysis.social is None and small_analysis.in_network is None
    assert small_analysis.values is None
    assert set(small_analysis.absent) == {"social", "in_network", "values"}
    assert "social graph" in small_analysis.absent["social"]


# --------------------------------------------------------------------------- helpers
def test_gini_extremes() -> None:
    assert gini(np.full(10, 3.0)) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 5.0])) == pytest.approx(3 / 4)  # (n - 1) / n
    assert gini(np.zeros(3)) is None and gini(np.array([])) is None


def test_log_histogram_counts_every_value() -> None:
    x = np.random.default_rng(0).zipf(1.8, 5000).astype(float)
    h = log_histogram(x)
    assert h is not None and h.log_scale
    assert sum(h.counts) == len(x)
    assert h.edges[0] == x.min() and h.edges[-1] == x.max()
    assert all(a < b for a, b in zip(h.edges, h.edges[1:], strict=False))


# --------------------------------------------------------------------------- values
def test_ratings_are_a_discrete_histogram() -> None:
    inter = pd.DataFrame(
        {"user": list("aabbc"), "item": list("xyxyz"), "value": [5, 4, 5, 1, 5], "event": "rating"}
    )
    v = analyze_dataset(Dataset.from_frames(inter)).values
    assert v is not None and v.discrete
    assert v.levels == (1.0, 4.0, 5.0) and v.level_counts == (1, 1, 3)
    assert v.by_event == {"rating": 5} and v.share_with_value == 1.0


def test_heavy_tailed_values_get_a_log_histogram() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    inter = pd.DataFrame(
        {
            "user": rng.integers(0, 50, n),
            "item": rng.integers(0, 400, n),
            "value": rng.pareto(1.0, n) * 100 + 1,
        }
    )
    v = analyze_dataset(Dataset.from_frames(inter)).values
    assert v is not None and not v.discrete and v.histogram is not None and v.histogram.log_scale
    assert sum(v.histogram.counts) == n


# --------------------------------------------------------------------------- social
def test_social_graph_statistics() -> None:
    # a<->b reciprocal, a->c, c->c self-follow; d, e isolated; b<->f... no: f->b one-way
    social = pd.DataFrame(
        {"follower": ["a", "b", "a", "c", "f"], "followee": ["b", "a", "c", "c", "b"]}
    )
    users = pd.DataFrame({"user": list("abcdef")})
    inter = pd.DataFrame({"user": ["a"], "item": ["x"]})
    a = analyze_dataset(Dataset.from_frames(inter, users=users, social=social))
    s = a.social
    assert s is not None
    assert (s.n_nodes, s.n_edges, s.n_users_in_graph) == (6, 5, 4)
    assert s.reciprocity == pytest.approx(2 / 4)  # a->b and b->a, of 4 non-self edges
    assert s.n_self_follows == 1
    assert (s.n_components, s.largest_component_size) == (1, 4)
    assert (
        s.largest_component_share == 1.0
        and s.largest_component_share_of_all_users == pytest.approx(4 / 6)
    )
    assert (s.max_in_degree, s.max_out_degree) == (2, 2)  # b: a, f; a: b, c
    assert s.users_without_followees == 2 and s.isolated_users == 2  # d, e
    assert s.users_without_followers == 3  # d, e, f
    assert find(a, "self-follows") is not None and find(a, "isolated users").count == 2  # type: ignore[union-attr]


def test_in_network_by_hand() -> None:
    """u1 follows u2. Item i1 is by u2, i2 by u3. Rows of u1: i1 (author followed), i2 after
    u2 had it (followee before), i3 before u2 had it (not in-network), i4 at the same second as
    u2 (not strictly before)."""
    inter = pd.DataFrame(
        {
            "user": ["u2", "u2", "u2", "u1", "u1", "u1", "u1", "u3"],
            "item": ["i2", "i3", "i4", "i1", "i2", "i3", "i4", "i2"],
            "timestamp": [100, 20, 70, 50, 200, 10, 70, 300],
        }
    )
    items = pd.DataFrame({"item": ["i1", "i2", "i3", "i4"], "author": ["u2", "u3", "", ""]})
    social = pd.DataFrame({"follower": ["u1"], "followee": ["u2"]})
    inn = analyze_dataset(Dataset.from_frames(inter, items, social=social)).in_network
    assert inn is not None
    assert inn.method == "exact" and inn.n_evaluated == 8 and inn.timing == "strictly before"
    assert inn.share_author_followed == pytest.approx(1 / 8)
    assert inn.share_followee_interacted == pytest.approx(1 / 8)
    assert inn.share_in_network == pytest.approx(2 / 8)
    assert inn.share_with_known_author == pytest.approx(4 / 8)  # the rows on i1 and i2
    assert inn.share_by_users_with_followees == pytest.approx(4 / 8)

    untimed = analyze_dataset(
        Dataset.from_frames(inter.drop(columns="timestamp"), items, social=social)
    )
    assert untimed.in_network is not None and untimed.in_network.timing == "at any time"
    assert untimed.in_network.share_followee_interacted == pytest.approx(3 / 8)  # i2, i3, i4
    assert untimed.temporal is None and "timestamp" in untimed.absent["temporal"]


def _in_network_reference(ds: Dataset) -> tuple[float, float, float]:
    """Brute force: (author followed, followee interacted strictly before, either)."""
    it = ds.interactions
    follows: dict[int, set[int]] = {}
    for f, g in zip(ds.social.follower.tolist(), ds.social.followee.tolist(), strict=True):
        if f != g:
            follows.setdefault(f, set()).add(g)
    first: dict[tuple[int, int], float] = {}
    for u, i, t in zip(it.user.tolist(), it.item.tolist(), it.timestamp.tolist(), strict=True):
        first[u, i] = min(first.get((u, i), math.inf), t)
    author = ds.item_author_index()
    a_hits = f_hits = either = 0
    for u, i, t in zip(it.user.tolist(), it.item.tolist(), it.timestamp.tolist(), strict=True):
        fol = follows.get(u, set())
        by_author = int(author[i]) in fol
        by_followee = any(first.get((f, i), math.inf) < t for f in fol)
        a_hits += by_author
        f_hits += by_followee
        either += by_author or by_followee
    n = len(it)
    return a_hits / n, f_hits / n, either / n


def test_in_network_matches_brute_force_on_the_toy_platform(toy_platform: Dataset) -> None:
    inn = analyze_dataset(toy_platform).in_network
    assert inn is not None and inn.method == "exact"
    ref = _in_network_reference(toy_platform)
    assert (
        inn.share_author_followed,
        inn.share_followee_interacted,
        inn.share_in_network,
    ) == pytest.approx(ref)
    assert 0 < ref[1] < 1  # the toy platform exercises both outcomes


def test_in_network_sample_is_seeded_and_close_to_exact() -> None:
    ds = make_toy_platform(seed=4, n_users=120, n_items=200)
    pairs = PairIndex.build(ds)
    exact = in_network_stats(ds, pairs)
    sampled = in_network_stats(ds, pairs, sample_size=800, seed=7, exact_budget=0)
    again = in_network_stats(ds, pairs, sample_size=800, seed=7, exact_budget=0)
    assert sampled.method == "sample" and sampled.n_evaluated == 800 and sampled.sample_seed == 7
    assert "sample of 800" in sampled.note
    assert sampled == again
    assert (
        exact.share_followee_interacted is not None
        and sampled.share_followee_interacted is not None
    )
    assert abs(sampled.share_followee_interacted - exact.share_followee_interacted) < 0.06
    assert sampled.share_author_followed == exact.share_author_followed  # always exact


def test_in_network_sample_size_must_be_positive(toy_platform: Dataset) -> None:
    with pytest.raises(ConfigError, match="in_network_sample must be at least 1"):
        analyze_dataset(toy_platform, in_network_sample=0)


# --------------------------------------------------------------------------- data quality
def test_quality_finds_bad_timestamps_bots_and_early_interactions() -> None:
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{int(rng.integers(0, 50))}", MON + int(rng.integers(0, 1000)) * 60)
        for u in range(40)
        for _ in range(4)
    ]
    rows += [("bot", f"i{k % 50}", MON + k) for k in range(400)]
    rows += [("u1", "i1", 0.0), ("u2", "i2", NOW + DAY), ("u3", "i_new", MON)]
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    items = pd.DataFrame(
        {
            "item": ["i_new", *[f"i{k}" for k in range(50)]],
            "title": "t",
            "created_at": [MON + DAY, *[MON - DAY] * 50],
        }
    )
    users = pd.DataFrame(
        {
            "user": ["bot", *[f"u{k}" for k in range(40)]],
            "created_at": [MON + 10 * DAY] + [MON - DAY] * 40,
        }
    )
    a = analyze_dataset(Dataset.from_frames(inter, items, users), now=NOW)
    zero = find(a, "at or before 0")
    assert (
        zero is not None
        and zero.severity == "error"
        and zero.count == 1
        and "user 'u1'" in (zero.example or "")
    )
    future = find(a, "in the future")
    assert future is not None and future.count == 1 and "user 'u2'" in (future.example or "")
    early = find(a, "before the item was created")
    assert early is not None and early.count == 1 and "i_new" in (early.example or "")
    bots = find(a, "likely bots")
    assert (
        bots is not None
        and bots.count == 1
        and (bots.example or "").startswith("user 'bot' with 400")
    )
    account = find(a, "precedes their account creation")
    assert account is not None and account.count == 1 and "user 'bot'" in (account.example or "")
    assert a.quality[0].severity == "error"
    t = a.temporal
    assert t is not None and t.first == "2024-01-01T00:00:00Z"  # the 0 and future rows stay out
    assert t.growth is not None and t.growth.period == "week" and len(t.growth.starts) == 1


@pytest.mark.parametrize("whole_seconds", [True, False])
def test_exact_duplicates_are_counted_with_either_sort(
    toy_platform: Dataset, whole_seconds: bool
) -> None:
    """Whole-second times take the packed-key sort, fractional ones the lexsort fallback."""
    it = toy_platform.interactions
    if whole_seconds:
        it = Interactions.build(it.user, it.item, np.floor(it.timestamp), it.event, it.value)
    # Copies of 7 rows (one of them twice), plus near-misses: same pair and time, other
    # event; same pair and event, one second later.
    copies = it.take(np.array([0, 5, 5, 17, 100, 200, 300, 400]))
    other_event = it.take(np.array([1, 2]))
    other_event = Interactions.build(
        other_event.user, other_event.item, other_event.timestamp, (other_event.event + 1) % 5
    )
    later = it.take(np.array([3]))
    later = Interactions.build(later.user, later.item, later.timestamp + 1, later.event)
    ds = toy_platform.with_interactions(it.concat(copies).concat(other_event).concat(later))
    dup = find(analyze_dataset(ds), "duplicate interactions")
    assert dup is not None and dup.count == 8


def test_extra_issues_are_listed_with_the_findings(small: Dataset) -> None:
    extra = QualityIssue(
        "error",
        "interactions.csv: unparsable timestamp; rows dropped while loading",
        3,
        "lines 4, 9",
    )
    a = analyze_dataset(small, extra_issues=[extra])
    assert a.quality[0] == extra


def test_interactions_only_dataset_has_no_metadata_note() -> None:
    a = analyze_dataset(Dataset.from_frames(pd.DataFrame({"user": ["a", "b"], "item": ["x", "x"]})))
    note = find(a, "no item has metadata")
    assert note is not None and note.severity == "info" and note.count == 1
    assert a.metadata.item_fields["any"] == 0.0


# --------------------------------------------------------------------------- edge cases, JSON
def _assert_plain_json(obj: Any, path: str = "$") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str), path
            _assert_plain_json(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            _assert_plain_json(v, f"{path}[{k}]")
    else:
        assert obj is None or type(obj) in (str, int, float, bool), f"{path}: {type(obj)}"
        assert not (isinstance(obj, float) and not math.isfinite(obj)), path


def test_to_dict_is_plain_json_without_nan(
    toy_platform: Dataset, small_analysis: DatasetAnalysis
) -> None:
    for analysis in (analyze_dataset(toy_platform), small_analysis):
        d = analysis.to_dict()
        _assert_plain_json(d)
        assert json.loads(json.dumps(d, allow_nan=False)) == d
        assert {f.name for f in dataclasses.fields(DatasetAnalysis)} == set(d)


def test_empty_dataset_does_not_crash() -> None:
    ds = Dataset.from_frames(
        pd.DataFrame({"user": pd.Series([], dtype=str), "item": pd.Series([], dtype=str)})
    )
    a = analyze_dataset(ds)
    assert a.counts.n_interactions == 0 and a.counts.density is None
    assert a.activity.gini_item_popularity is None and a.activity.user_activity.count == 0
    assert a.temporal is None and a.values is None and a.in_network is None
    assert find(a, "no interactions") is not None
    _assert_plain_json(a.to_dict())
    html = render_html(a, {})
    assert "Not available for this dataset: no interaction has a timestamp" in html


def test_progress_reports_every_step(small: Dataset) -> None:
    calls: list[tuple[str, int, int]] = []
    a = analyze_dataset(small, progress=lambda s, i, n: calls.append((s, i, n)))
    assert [i for _, i, _ in calls] == list(range(len(calls)))
    assert calls[-1][0] == "done" and calls[-1][1] == calls[-1][2]
    assert set(a.timings_s) == {s for s, _, _ in calls[:-1]}


# --------------------------------------------------------------------------- the report
def test_write_report_is_standalone_html_with_plots(tmp_path: Path) -> None:
    ds = make_toy_platform(seed=2)
    ds = Dataset.from_frames(
        ds.interactions_frame(), ds.items_frame(), None, ds.social_frame(), name="toy <b>&</b>"
    )
    a = analyze_dataset(ds)
    path = write_report(a, tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    html = path.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "out" / "analysis.json").read_text()) == json.loads(
        json.dumps(a.to_dict())
    )
    pngs = sorted(p.name for p in (tmp_path / "out" / "plots").glob("*.png"))
    assert {"activity.png", "long_tail.png", "growth.png", "degrees.png", "time_of_day.png"} <= set(
        pngs
    )
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == len(pngs)
    assert all(base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n" for u in uris)
    assert "toy &lt;b&gt;&amp;&lt;/b&gt;" in html and "<b>&</b>" not in html
    for section in (
        "summary",
        "activity",
        "cold",
        "events",
        "temporal",
        "metadata",
        "social",
        "in-network",
        "quality",
    ):
        assert f'<section id="{section}">' in html
    assert "Not available for this dataset: no interaction carries a value" in html
    assert f"{a.counts.n_interactions:,}" in html


def test_report_says_which_sections_are_absent(small_analysis: DatasetAnalysis) -> None:
    html = render_html(small_analysis, {})  # the page without plots: no matplotlib needed
    assert "Not available for this dataset: the dataset has no social graph" in html
    assert "Not available for this dataset: needs a social graph" in html
    assert "duplicate interactions" in html and 'class="badge warning"' in html
    assert "<img" not in html


# --------------------------------------------------------------------------- real data
def _load(name: str) -> Dataset:
    from serendip.data.loaders import load_source

    return load_source(shared_data(name))


@pytest.mark.realdata
def test_movielens_100k_numbers() -> None:
    a = analyze_dataset(_load("ml-100k"))
    c = a.counts
    assert (c.n_users, c.n_items, c.n_interactions, c.n_unique_pairs) == (
        943,
        1682,
        100_000,
        100_000,
    )
    assert c.density is not None and round(c.density, 6) == 0.063047
    assert (
        a.values is not None and a.values.discrete and a.values.levels == (1.0, 2.0, 3.0, 4.0, 5.0)
    )
    assert a.values.level_counts == (6110, 11370, 27145, 34174, 21201)
    assert a.activity.user_activity.min == 20 and a.activity.user_activity.max == 737
    assert a.activity.item_popularity.max == 583  # Star Wars (1977)
    assert a.temporal is not None and a.temporal.first == "1997-09-20T03:05:10Z"
    assert a.temporal.last == "1998-04-22T23:10:38Z"
    assert a.social is None and "social" in a.absent


@pytest.mark.realdata
def test_lastfm_numbers() -> None:
    a = analyze_dataset(_load("lastfm-2k"))
    assert (a.counts.n_users, a.counts.n_interactions) == (1892, 92_834)
    s = a.social
    assert s is not None
    assert s.n_edges == 25_434 and s.reciprocity == 1.0 and s.n_self_follows == 0
    assert s.in_degree.mean == pytest.approx(25_434 / 1892)
    assert a.temporal is None and "timestamp" in a.absent["temporal"]
    inn = a.in_network
    assert inn is not None and inn.method == "exact" and inn.timing == "at any time"
    assert inn.share_with_known_author == 0.0 and inn.share_author_followed == 0.0
    assert inn.share_in_network is not None and 0.3 < inn.share_in_network < 0.6
    assert a.values is not None and not a.values.discrete and a.values.distribution.max == 352_698
