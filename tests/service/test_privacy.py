"""Privacy set through the API holds at once in every serving path, and after a restart."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from serendip.data.dataset import Dataset
from serendip.service.runtime import ModelRuntime
from serendip.store import UserIn
from tests.conftest import make_toy_platform
from tests.service.conftest import ready_lists


@cache
def _ds() -> Dataset:
    return make_toy_platform()


def _runtime(pipe: Path, **kwargs: object) -> ModelRuntime:
    rt = ModelRuntime(**kwargs)  # type: ignore[arg-type]
    rt.load(pipe, "v1")
    if rt.snapshot is not None and rt.snapshot.lists is not None:
        ready_lists(rt)
    return rt


def _cited(rt: ModelRuntime, users: list[str]) -> dict[str, int]:
    """Users named in the evidence of the served explanations, with how often."""
    out: dict[str, int] = {}
    for user in users:
        for rec in rt.recommend(user, 10, explain=True):
            for ev in (rec.explanation or {}).get("evidence", []):
                if ev.get("kind") in ("followee", "user", "author"):
                    out[str(ev["id"])] = out.get(str(ev["id"]), 0) + 1
    return out


def _named(rt: ModelRuntime, users: list[str], who: str) -> bool:
    """Whether any explanation served to someone else cites or names `who`."""
    pattern = re.compile(rf"\b{re.escape(who)}\b")
    for user in users:
        if user == who:
            continue
        for rec in rt.recommend(user, 10, explain=True):
            exp = rec.explanation or {}
            ids = [str(ev.get("id")) for ev in exp.get("evidence", [])]
            if who in ids or pattern.search(str(exp.get("text", ""))):
                return True
    return False


def test_a_user_who_turns_private_disappears_from_every_path_at_once(pipe: Path) -> None:
    users = [str(u) for u in _ds().users.ids[:60]]
    paths = [_runtime(pipe), _runtime(pipe, precompute=False), _runtime(pipe, cache_size=0)]
    cited = _cited(paths[0], users)  # also fills the caches
    assert cited, "the toy platform yields social explanations"
    who = max(cited, key=lambda u: cited[u])
    for rt in paths:
        _cited(rt, users)  # every cache warm with lists that cite `who`
        assert _named(rt, users, who)
        rt.on_users([UserIn(who, private=True)])
        assert not _named(rt, users, who), "a private user is still named"
    back = paths[0]
    back.on_users([UserIn(who, private=False)])
    assert _named(back, users, who), "public again: may be named again"


def test_privacy_set_before_a_load_holds_for_the_loaded_version(pipe: Path) -> None:
    users = [str(u) for u in _ds().users.ids[:60]]
    cited = _cited(_runtime(pipe, precompute=False), users)
    who = max(cited, key=lambda u: cited[u])
    rt = ModelRuntime()  # a restart: the live state is replayed before the model loads
    rt.on_users([UserIn(who, private=True)])
    rt.load(pipe, "v1")
    assert not _named(rt, users, who)
