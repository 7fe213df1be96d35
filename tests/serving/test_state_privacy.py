"""The live state under consent and erasure: a withheld user's share of the live counts leaves
exactly; an erased user leaves nothing behind."""

from __future__ import annotations

import pytest

from serendip.serving.state import OnlineState

T = 1_700_000_000.0


def _ev(user: str, item: str, t: float = T) -> dict[str, object]:
    return {"user": user, "item": item, "event": "like", "timestamp": t}


def test_withholding_takes_exactly_the_users_share_out_of_the_counts() -> None:
    state, alone = OnlineState(half_life_s=3600.0), OnlineState(half_life_s=3600.0)
    for s in (state, alone):
        s.add_events([_ev("b", "i1", T), _ev("b", "i2", T + 600)])
    state.add_events([_ev("w", "i1", T + 60), _ev("w", "i3", T + 120), _ev("w", "i3", T + 900)])
    alone.add_events([_ev("x", "i9", T + 900)])  # the same clock, no share of w's
    state.withhold(["w"])
    got, want = state.counts()[0], alone.counts()[0]
    assert set(got) == {"i1", "i2"}
    for item in got:
        assert got[item] == pytest.approx(want[item], rel=1e-12)
    state.add_events([_ev("w", "i4", T + 1000)])  # later events: their history only
    assert "i4" not in state.counts()[0] and state.history("w")[-1][0] == "i4"
    assert state.withheld() == frozenset({"w"})
    state.withhold(["w"], False)
    state.add_events([_ev("w", "i5", T + 1100)])
    assert "i5" in state.counts()[0] and "i4" not in state.counts()[0]


def test_forgetting_a_user_leaves_nothing_behind() -> None:
    state = OnlineState()
    state.add_events([_ev("gone", "i1"), _ev("gone", "i2"), _ev("b", "i2")])
    state.follow("gone", "b")
    state.follow("b", "gone")
    state.unfollow("c", "gone")
    stamp_b = state.user_version("b")
    dropped = state.forget_user("gone")
    assert dropped == {"live_events": 2, "live_counted_items": 2, "live_edges": 3}
    assert state.history("gone") == [] and set(state.counts()[0]) == {"i2"}
    assert state.followees("gone") == (set(), set())
    assert state.followees("b") == (set(), set()) and state.followees("c") == (set(), set())
    assert state.user_version("b") > stamp_b  # b's lists are made anew
    assert state.user_version("gone") > 0  # never served from precomputed lists again
    assert state.private_flags() == {"gone": True}  # models loaded later never cite them


def test_shares_survive_a_rescale_of_the_counts() -> None:
    state = OnlineState(half_life_s=1.0)
    state.add_events([_ev("w", "i1", T), _ev("b", "i2", T)])
    state.add_events([_ev("b", "i3", T + 100)])  # 2**100: the counts are rescaled
    state.withhold(["w"])
    assert "i1" not in state.counts()[0]
