"""The static world: users and their interests, communities, the follow graph, authors and items.

Everything here is drawn once, before any interaction, and is held in memory as NumPy arrays
(at the `platform` scale: 100K users, a few million edges, 1M items; well under 1 GiB).
Users and items are numbered in order of creation, so ID order is time order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serendip.data.synthetic._config import PlatformConfig
from serendip.data.synthetic._sampling import GroupedSampler, csr_from_groups

__all__ = ["World", "build_world"]

DAY = 86_400


@dataclass(frozen=True, slots=True, eq=False)
class World:
    """Dense-index arrays of one platform. Times are int64 epoch seconds.

    users: created (n_users,), theta (n_users, K) float64 rows summing to 1, community, activity
    (mean 1), fame, is_author, private, declared (list of topic-index tuples, aligned).
    graph: follower/followee int64 (n_edges,) sorted by (follower, followee), edge_created,
    follow_ptr (CSR of followees by follower, into the edge arrays), fans_ptr/fans (CSR of
    followers by followee).
    items: item_topic, item_author, item_quality, item_created (n_items,), sorted by creation.
    """

    config: PlatformConfig
    start: int
    end: int
    # users
    user_created: np.ndarray
    theta: np.ndarray
    community: np.ndarray
    activity: np.ndarray
    fame: np.ndarray
    is_author: np.ndarray
    private: np.ndarray
    declared: list[tuple[int, ...]]
    # graph
    follower: np.ndarray
    followee: np.ndarray
    edge_created: np.ndarray
    follow_ptr: np.ndarray
    fans_ptr: np.ndarray
    fans: np.ndarray
    # items
    item_topic: np.ndarray
    item_author: np.ndarray
    item_quality: np.ndarray
    item_created: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_created)

    @property
    def n_items(self) -> int:
        return len(self.item_topic)

    @property
    def n_topics(self) -> int:
        return int(self.theta.shape[1])


def _lognormal_mean1(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    """Log-normal draws with mean 1 (so sigma changes the spread, not the scale)."""
    return rng.lognormal(-0.5 * sigma * sigma, sigma, n)


def build_world(config: PlatformConfig, rng: np.random.Generator) -> World:
    """Draw users, interests, communities, the follow graph and the item catalogue."""
    cfg = config
    n, k = cfg.n_users, cfg.n_topics
    start = int(np.datetime64(cfg.start_date, "s").astype(np.int64))
    end = start + cfg.days * DAY

    # --- users, in creation order: most existed before the window, some join during it
    joined_late = rng.random(n) < cfg.new_user_share
    before = start - rng.integers(1, 730 * DAY, n)
    late_end = max(start + DAY, end - 7 * DAY)
    during = rng.integers(start, late_end, n)
    user_created = np.sort(np.where(joined_late, during, before)).astype(np.int64)

    # --- communities with topical profiles; a user's mixture is pulled towards their community's
    n_comm = cfg.n_communities
    comm_share = rng.dirichlet(np.full(n_comm, 2.0))
    community = rng.choice(n_comm, size=n, p=comm_share).astype(np.int64)
    profiles = rng.dirichlet(np.full(k, cfg.community_topic_concentration), size=n_comm)
    w = cfg.community_interest_weight
    mean = w * profiles[community] + (1.0 - w) / k
    theta = _dirichlet_rows(rng, cfg.interest_concentration * mean)

    activity = _lognormal_mean1(rng, cfg.activity_sigma, n)
    is_author = np.zeros(n, dtype=bool)
    is_author[rng.choice(n, size=cfg.n_authors, replace=False)] = True
    fame = _lognormal_mean1(rng, cfg.fame_sigma, n) * np.where(
        is_author, cfg.author_fame_boost, 1.0
    )
    private = rng.random(n) < cfg.private_share
    declared = _declared_interests(cfg, theta, rng)

    follower, followee, edge_created = _follow_graph(
        cfg, rng, community, fame, activity, user_created, start, end
    )
    follow_ptr = np.concatenate([[0], np.cumsum(np.bincount(follower, minlength=n))]).astype(
        np.int64
    )
    fans_ptr, fans_order = csr_from_groups(followee, n)
    fans = follower[fans_order]

    item_topic, item_author, item_quality, item_created = _items(
        cfg, rng, theta, is_author, user_created, start, end
    )
    return World(
        config=cfg,
        start=start,
        end=end,
        user_created=user_created,
        theta=theta,
        community=community,
        activity=activity,
        fame=fame,
        is_author=is_author,
        private=private,
        declared=declared,
        follower=follower,
        followee=followee,
        edge_created=edge_created,
        follow_ptr=follow_ptr,
        fans_ptr=fans_ptr,
        fans=fans,
        item_topic=item_topic,
        item_author=item_author,
        item_quality=item_quality,
        item_created=item_created,
    )


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of `alpha` (n, K), via normalised gammas."""
    g = rng.standard_gamma(alpha)
    g = np.maximum(g, 1e-12)
    return g / g.sum(axis=1, keepdims=True)


def _declared_interests(
    cfg: PlatformConfig, theta: np.ndarray, rng: np.random.Generator
) -> list[tuple[int, ...]]:
    """A noisy subset of each user's top-3 topics, sometimes with a topic they don't care about."""
    n, k = int(theta.shape[0]), int(theta.shape[1])
    top = np.argsort(-theta, axis=1)[:, : min(3, k)]
    keep = rng.random(top.shape) < cfg.declared_keep
    keep[:, 0] |= ~keep.any(axis=1)  # a declaring user names at least their main topic
    declares = rng.random(n) < cfg.declared_share
    noise = rng.random(n) < cfg.declared_noise
    noise_topic = rng.integers(0, k, n)
    out: list[tuple[int, ...]] = []
    # One short Python step per user (not per interaction): building ragged tuples.
    for u in range(n):
        if not declares[u]:
            out.append(())
            continue
        topics = [int(t) for t, kept in zip(top[u], keep[u], strict=True) if kept]
        if noise[u] and int(noise_topic[u]) not in topics:
            topics.append(int(noise_topic[u]))
        out.append(tuple(topics))
    return out


def _follow_graph(
    cfg: PlatformConfig,
    rng: np.random.Generator,
    community: np.ndarray,
    fame: np.ndarray,
    activity: np.ndarray,
    user_created: np.ndarray,
    start: int,
    end: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed follows: log-normal out-degrees (higher for active users, who curate bigger
    feeds), targets by fame, mostly within the community, reciprocated far more often within a
    community than across. Unique, no self-follows."""
    n = len(community)
    sigma = cfg.follows_sigma
    keen = np.sqrt(activity) / np.sqrt(activity).mean()
    raw = rng.lognormal(np.log(cfg.mean_follows) - 0.5 * sigma * sigma, sigma, n) * keen
    outdeg = np.rint(raw).astype(np.int64)
    outdeg[rng.random(n) < cfg.no_follow_share] = 0
    outdeg = np.clip(outdeg, 0, n - 1)
    src = np.repeat(np.arange(n, dtype=np.int64), outdeg)
    dst = np.empty(len(src), dtype=np.int64)

    inside = rng.random(len(src)) < cfg.follow_in_community
    comm_ptr, comm_members = csr_from_groups(community, cfg.n_communities)
    by_comm = GroupedSampler.build(comm_ptr, fame[comm_members])
    pos = by_comm.sample(community[src[inside]], rng)
    dst[inside] = comm_members[pos]
    everyone = GroupedSampler.build(np.array([0, n]), fame)
    dst[~inside] = everyone.sample(np.zeros(int((~inside).sum()), dtype=np.int64), rng)

    keep = src != dst
    src, dst = _unique_pairs(src[keep], dst[keep], n)
    same = community[src] == community[dst]
    p_back = np.where(same, cfg.reciprocity_in_community, cfg.reciprocity_across)
    back = rng.random(len(src)) < p_back
    src, dst = _unique_pairs(np.concatenate([src, dst[back]]), np.concatenate([dst, src[back]]), n)

    # A follow starts after both users exist: before the window for old pairs, within a day or
    # so of the later user's arrival otherwise.
    both = np.maximum(user_created[src], user_created[dst])
    old = both < start
    created = np.where(
        old,
        both + (rng.random(len(src)) * (start - both)).astype(np.int64),
        both + rng.exponential(0.5 * DAY, len(src)).astype(np.int64),
    )
    created = np.minimum(created, end - 1)
    return src, dst, created.astype(np.int64)


def _unique_pairs(src: np.ndarray, dst: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (src, dst) pairs sorted by (src, dst). A sort, not `np.unique`, which hashes
    and is several times slower on millions of int64 keys."""
    key = np.sort(src * n + dst)
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    return key // n, key % n


def _items(
    cfg: PlatformConfig,
    rng: np.random.Generator,
    theta: np.ndarray,
    is_author: np.ndarray,
    user_created: np.ndarray,
    start: int,
    end: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items: author by productivity (scaled by time on the platform), topic from the author's
    sharpened mixture, creation time uniform over the author's part of the window, quality =
    author skill x item luck. Returned sorted by creation time."""
    n_items = cfg.n_items
    authors = np.flatnonzero(is_author)
    first = np.maximum(user_created[authors], start)
    span = np.maximum(end - first, DAY)
    productivity = (
        _lognormal_mean1(rng, cfg.productivity_sigma, len(authors)) * span / (end - start)
    )
    pick = GroupedSampler.build(np.array([0, len(authors)]), productivity)
    a_pos = pick.sample(np.zeros(n_items, dtype=np.int64), rng)
    item_author = authors[a_pos]

    focus = theta[authors] ** cfg.author_focus
    focus /= focus.sum(axis=1, keepdims=True)
    k = theta.shape[1]
    topic_sampler = GroupedSampler.build(np.arange(len(authors) + 1) * k, focus.ravel())
    item_topic = topic_sampler.sample(a_pos, rng) - a_pos * k

    created = first[a_pos] + (rng.random(n_items) * (end - 1 - first[a_pos])).astype(np.int64)
    skill = _lognormal_mean1(rng, cfg.author_skill_sigma, len(authors))
    quality = skill[a_pos] * _lognormal_mean1(rng, cfg.quality_sigma, n_items)

    order = np.argsort(created, kind="stable")
    return (
        item_topic[order].astype(np.int64),
        item_author[order].astype(np.int64),
        quality[order],
        created[order].astype(np.int64),
    )
