"""Live quality and drift monitors on simulated traffic in a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from serendip.errors import ConfigError
from serendip.evaluation.audit import long_tail_items
from serendip.operations.config import MonitorConfig, load_monitor_config
from serendip.operations.drift import js_distance, popularity_bins, psi
from serendip.operations.monitors import MonitorReport, run_monitors
from serendip.operations.traffic import events_between
from serendip.store import Store
from tests.conftest import make_toy_platform
from tests.operations.traffic import (
    DAY,
    T,
    add_events,
    item_weights,
    platform_store,
    serve_lists,
)


def _v(report: MonitorReport, name: str) -> float:
    value = report.get(name).value
    assert value is not None, report.get(name)
    return value


DRIFT = ("item_popularity_psi", "item_js", "category_psi", "category_js")


def _traffic(store: Store, *, shifted: bool) -> Store:
    """A week of reference traffic, then a day of the same (or shifted) traffic."""
    ds = make_toy_platform()
    platform_store(store, ds)
    add_events(store, ds, item_weights(ds), T - 8 * DAY, T - DAY, 2800, seed=1, prefix="ref")
    add_events(store, ds, item_weights(ds, shifted=shifted), T - DAY, T, 400, seed=2, prefix="cur")
    return store


def test_unchanged_traffic_keeps_the_drift_monitors_quiet(store: Store) -> None:
    report = run_monitors(_traffic(store, shifted=False), end=T)
    for name in (*DRIFT, "event_rate_ratio", "event_type_psi"):
        r = report.get(name)
        assert r.value is not None and not r.out_of_bounds, r
    assert _v(report, "category_psi") < 0.1  # "stable" on the PSI scale
    assert not [r for r in report.out_of_bounds if r.kind == "drift"]


def test_traffic_moving_to_other_categories_and_items_fires_the_drift_monitors(
    store: Store,
) -> None:
    report = run_monitors(_traffic(store, shifted=True), end=T)
    fired = {r.name for r in report.out_of_bounds}
    assert set(DRIFT) <= fired
    assert _v(report, "category_psi") > 0.25  # a major shift
    assert report.get("event_rate_ratio").out_of_bounds is False  # as many events as before


def test_a_traffic_drop_fires_the_event_rate_monitor(sqlite_store: Store) -> None:
    ds = make_toy_platform()
    platform_store(sqlite_store, ds)
    add_events(sqlite_store, ds, item_weights(ds), T - 8 * DAY, T - DAY, 2800, seed=1, prefix="r")
    add_events(sqlite_store, ds, item_weights(ds), T - DAY, T, 100, seed=2, prefix="c")
    r = run_monitors(sqlite_store, end=T).get("event_rate_ratio")
    assert r.value == pytest.approx(0.25)
    assert r.out_of_bounds


def test_quality_monitors_read_the_served_lists_and_their_outcomes(store: Store) -> None:
    ds = make_toy_platform()
    platform_store(store, ds)
    w = item_weights(ds)
    add_events(store, ds, w, T - 8 * DAY, T - DAY, 2800, seed=1, prefix="ref")
    clicked = serve_lists(store, ds, w, T - DAY, T - 3600, 200, seed=3, empty_rate=0.1)
    report = run_monitors(store, end=T)
    ctr = report.get("click_through")
    # each clicked list counts; a click may also fall in another list of the same user
    assert ctr.n == 200 and clicked / 200 <= _v(report, "click_through") <= clicked / 200 + 0.03
    empty = report.get("empty_list_rate")
    assert 0.05 < _v(report, "empty_list_rate") < 0.2 and empty.out_of_bounds  # max 0.05 by default
    assert report.get("cold_start_share").value == 0.0  # every toy user has history
    assert 0.0 < _v(report, "catalog_coverage") <= 1.0
    assert 0.0 < _v(report, "exposure_gini") < 1.0
    assert _v(report, "novelty") > 0.0
    oon = report.get("oon_exposure_share").value
    assert oon is not None and 0.5 < oon < 1.0  # random lists: most authors not followed
    assert report.get("oon_engagement_share").value is not None
    # long-tail exposure: the audit's head (80% of the reference window's events), recomputed
    ref = events_between(store, report.reference_start, report.window_start)
    counts = ref.groupby("item").size()
    head = set(counts.index[~long_tail_items(counts.to_numpy(dtype=float))].astype(str))
    shown = [i for e in store.exposures.between(report.window_start, T) for i in e.items]
    assert 0.0 < len(head) < len(counts)
    assert _v(report, "long_tail_exposure_share") == pytest.approx(
        sum(i not in head for i in shown) / len(shown)
    )


def test_too_few_served_lists_give_no_value_and_nothing_out_of_bounds(
    sqlite_store: Store,
) -> None:
    report = run_monitors(sqlite_store, end=T)
    assert report.get("click_through").value is None
    assert "too few served lists" in report.get("click_through").note
    assert report.out_of_bounds == []


def test_thresholds_come_from_the_toml_file_over_the_defaults(tmp_path: Path) -> None:
    f = tmp_path / "monitors.toml"
    f.write_text("window_hours = 6\n[thresholds.click_through]\nmin = 0.5\n")
    cfg = load_monitor_config(f)
    assert cfg.window_hours == 6
    assert cfg.bound("click_through").min == 0.5
    assert cfg.bound("empty_list_rate") == MonitorConfig().bound("empty_list_rate")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[thresholds.clik_through]\nmin = 1\n", "unknown monitor(s) clik_through"),
        ("windw_hours = 3\n", "unknown setting 'windw_hours'"),
        ("[thresholds.category_psi]\nmin = 2\nmax = 1\n", "min 2.0 is above max 1.0"),
        ("window_hours = \n", "not valid TOML"),
    ],
)
def test_a_bad_monitors_file_is_one_error_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    f = tmp_path / "monitors.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match="monitors file") as info:
        load_monitor_config(f)
    assert message in str(info.value)


def test_psi_and_js_distance() -> None:
    same = {"a": 10, "b": 30}
    assert psi(same, {"a": 1, "b": 3}) == pytest.approx(0.0)
    assert js_distance(same, same) == pytest.approx(0.0)
    assert js_distance({"a": 1}, {"b": 1}) == pytest.approx(1.0)
    bins = popularity_bins({"x": 50, "y": 30, "z": 20}, 2)
    assert bins == {"x": 0, "y": 1, "z": 1}
