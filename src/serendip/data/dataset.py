"""The data model: interactions, items, users and the social graph of one platform.

Everything is columnar NumPy inside frozen dataclasses. External string IDs live only in the two
`Vocabulary` objects; every array holds dense int32 indices into them. Filtering a `Dataset`
(by time, users or items) keeps both vocabularies, so a train and a test split share one index
space and a model fitted on one can be scored on the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from serendip.data.vocabulary import Vocabulary
from serendip.errors import DataError

__all__ = [
    "EVENT_CODES",
    "EVENT_TYPES",
    "Dataset",
    "Interactions",
    "ItemTable",
    "MatrixConfig",
    "SocialGraph",
    "UserTable",
]

#: Event types in funnel order. The code of an event is its position here.
EVENT_TYPES: tuple[str, ...] = ("view", "click", "like", "comment", "share", "rating")
EVENT_CODES: dict[str, int] = {name: code for code, name in enumerate(EVENT_TYPES)}

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "like": 4.0,
    "comment": 5.0,
    "share": 6.0,
    "rating": 1.0,
}

_SECONDS_PER_DAY = 86_400.0


class MatrixConfig(BaseModel):
    """How interactions become the weights of the user x item matrix.

    weight = event_weights[event] * transform(value) * 0.5 ** (age_days / half_life_days)

    - `value_transform`: what an interaction's optional value does ("none" ignores it, "linear"
      multiplies by it, "log1p" by log(1 + value), as for listen counts). Missing values count 1.
    - `half_life_days`: exponential time decay relative to `reference_time` (default: the newest
      timestamp of the data); interactions without a timestamp are not decayed.
    - `aggregate`: how repeated (user, item) pairs combine.
    - `binary`: every observed pair weighs 1 (after aggregation), as in the accuracy protocols.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    value_transform: Literal["none", "linear", "log1p"] = "none"
    half_life_days: float | None = Field(default=None, gt=0)
    reference_time: float | None = None
    aggregate: Literal["sum", "max"] = "sum"
    binary: bool = False

    @field_validator("event_weights")
    @classmethod
    def _known_events(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types {sorted(unknown)}; valid: {list(EVENT_TYPES)}")
        if any(w < 0 or not math.isfinite(w) for w in v.values()):
            raise ValueError("event weights must be finite and non-negative")
        return {**DEFAULT_EVENT_WEIGHTS, **v}


@dataclass(frozen=True, slots=True, eq=False)
class Interactions:
    """Columnar interaction log; all arrays have the same length.

    user, item: int32 dense indices; timestamp: float64 epoch seconds (NaN = unknown);
    event: int8 code into `EVENT_TYPES`; value: float32 (NaN = none; a rating, a listen count).
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    event: np.ndarray
    value: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("item", "timestamp", "event", "value"):
            if len(getattr(self, name)) != n:
                raise DataError(
                    f"interaction column '{name}' has {len(getattr(self, name))} rows, expected {n}"
                )

    @classmethod
    def build(
        cls,
        user: Iterable[int] | np.ndarray,
        item: Iterable[int] | np.ndarray,
        timestamp: Iterable[float] | np.ndarray | None = None,
        event: Iterable[int] | np.ndarray | None = None,
        value: Iterable[float] | np.ndarray | None = None,
    ) -> Interactions:
        u = np.asarray(user, dtype=np.int32)
        n = len(u)
        return cls(
            user=u,
            item=np.asarray(item, dtype=np.int32),
            timestamp=np.full(n, np.nan)
            if timestamp is None
            else np.asarray(timestamp, dtype=np.float64),
            event=np.zeros(n, dtype=np.int8) if event is None else np.asarray(event, dtype=np.int8),
            value=np.full(n, np.nan, dtype=np.float32)
            if value is None
            else np.asarray(value, dtype=np.float32),
        )

    def __len__(self) -> int:
        return len(self.user)

    def take(self, index: np.ndarray) -> Interactions:
        """Rows by boolean mask or integer positions."""
        return Interactions(
            self.user[index],
            self.item[index],
            self.timestamp[index],
            self.event[index],
            self.value[index],
        )

    @property
    def has_timestamps(self) -> bool:
        return bool(len(self)) and not bool(np.isnan(self.timestamp).all())

    def concat(self, other: Interactions) -> Interactions:
        return Interactions(
            *(
                np.concatenate([getattr(self, f), getattr(other, f)])
                for f in ("user", "item", "timestamp", "event", "value")
            )
        )


def _empty_object(n: int, fill: Any = "") -> np.ndarray:
    arr = np.empty(n, dtype=object)
    arr[:] = [fill] * n if not isinstance(fill, tuple) else [()] * n
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class ItemTable:
    """Item metadata aligned with the item vocabulary (row i = item index i).

    Text columns are object arrays of str ("" when absent); `tags` holds tuples of str;
    `author` holds the author's external user ID ("" when unknown); `created_at` float64 epoch
    seconds (NaN = unknown).
    """

    title: np.ndarray
    text: np.ndarray
    tags: np.ndarray
    category: np.ndarray
    author: np.ndarray
    created_at: np.ndarray

    @classmethod
    def empty(cls, n: int) -> ItemTable:
        return cls(
            title=_empty_object(n),
            text=_empty_object(n),
            tags=_empty_object(n, ()),
            category=_empty_object(n),
            author=_empty_object(n),
            created_at=np.full(n, np.nan),
        )

    def __len__(self) -> int:
        return len(self.title)

    def take(self, index: np.ndarray) -> ItemTable:
        return ItemTable(*(getattr(self, f)[index] for f in ItemTable.__slots__))  # type: ignore[attr-defined]

    def pad(self, n: int) -> ItemTable:
        """Extend with empty rows up to n (for items seen only in interactions)."""
        extra = n - len(self)
        if extra <= 0:
            return self
        e = ItemTable.empty(extra)
        return ItemTable(
            *(np.concatenate([getattr(self, f), getattr(e, f)]) for f in ItemTable.__slots__)  # type: ignore[attr-defined]
        )

    def document(self, i: int) -> str:
        """Title, text and tags of item i as one string (the input of text models)."""
        return " ".join(x for x in (self.title[i], self.text[i], " ".join(self.tags[i])) if x)

    def documents(self) -> list[str]:
        return [self.document(i) for i in range(len(self))]


@dataclass(frozen=True, slots=True, eq=False)
class UserTable:
    """User metadata aligned with the user vocabulary (row u = user index u).

    created_at: float64 epoch seconds (NaN = unknown); interests: tuples of declared interests
    (topics, tags or categories); private: bool, the user's activity is hidden from others
    (explanations must not name them); attributes: extra columns (age, gender, ...), aligned.
    """

    created_at: np.ndarray
    interests: np.ndarray
    private: np.ndarray
    attributes: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def empty(cls, n: int) -> UserTable:
        return cls(np.full(n, np.nan), _empty_object(n, ()), np.zeros(n, dtype=bool), {})

    def __len__(self) -> int:
        return len(self.created_at)

    def pad(self, n: int) -> UserTable:
        extra = n - len(self)
        if extra <= 0:
            return self
        e = UserTable.empty(extra)
        attrs = {}
        for k, v in self.attributes.items():
            fill = np.full(extra, np.nan) if v.dtype.kind == "f" else _empty_object(extra, "")
            attrs[k] = np.concatenate([v.astype(object) if fill.dtype == object else v, fill])
        return UserTable(
            np.concatenate([self.created_at, e.created_at]),
            np.concatenate([self.interests, e.interests]),
            np.concatenate([self.private, e.private]),
            attrs,
        )


@dataclass(frozen=True, slots=True, eq=False)
class SocialGraph:
    """Directed follow edges follower -> followee, as int32 user indices (unique pairs).

    Undirected friendships are stored as two directed edges. `created_at` (float64 epoch
    seconds, NaN = unknown) says when the follow started, where known.
    """

    follower: np.ndarray
    followee: np.ndarray
    created_at: np.ndarray

    @classmethod
    def empty(cls) -> SocialGraph:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))

    @classmethod
    def build(
        cls,
        follower: Iterable[int] | np.ndarray,
        followee: Iterable[int] | np.ndarray,
        created_at: Iterable[float] | np.ndarray | None = None,
    ) -> SocialGraph:
        f = np.asarray(follower, dtype=np.int32)
        g = np.asarray(followee, dtype=np.int32)
        c = (
            np.full(len(f), np.nan)
            if created_at is None
            else np.asarray(created_at, dtype=np.float64)
        )
        return cls(f, g, c)

    def __len__(self) -> int:
        return len(self.follower)

    def adjacency(self, n_users: int) -> sp.csr_matrix:
        """Sparse n_users x n_users matrix, A[follower, followee] = 1."""
        data = np.ones(len(self), dtype=np.float32)
        a = sp.csr_matrix((data, (self.follower, self.followee)), shape=(n_users, n_users))
        a.sum_duplicates()
        a.data[:] = 1.0
        return a


@dataclass(frozen=True, eq=False)
class Dataset:
    """One platform's data, immutable. String IDs at the edges, dense indices inside.

    >>> ds = Dataset.from_frames(pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"]}))
    >>> ds.n_users, ds.n_items, ds.n_interactions
    (2, 2, 3)
    >>> ds.matrix().toarray().tolist()
    [[1.0, 1.0], [1.0, 0.0]]
    """

    users: Vocabulary
    items: Vocabulary
    interactions: Interactions
    item_meta: ItemTable
    user_meta: UserTable
    social: SocialGraph = field(default_factory=SocialGraph.empty)
    name: str = "dataset"
    #: Free-form extra tables a loader keeps (e.g. Last.fm tag assignments), as DataFrames.
    extras: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.item_meta) != len(self.items):
            raise DataError(
                f"item metadata has {len(self.item_meta)} rows for {len(self.items)} items"
            )
        if len(self.user_meta) != len(self.users):
            raise DataError(
                f"user metadata has {len(self.user_meta)} rows for {len(self.users)} users"
            )

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_frames(
        cls,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        social: pd.DataFrame | None = None,
        *,
        name: str = "dataset",
        extras: Mapping[str, pd.DataFrame] | None = None,
    ) -> Dataset:
        """Build from already-validated frames with external string IDs.

        interactions: columns user, item and optionally timestamp (epoch seconds or datetime),
        event (names in `EVENT_TYPES`), value. items: item and optionally title, text, tags
        (sequence or "a|b" string), category, author, created_at. users: user and optionally
        created_at, interests, private, other attribute columns. social: follower, followee,
        optionally created_at.

        The user vocabulary is the users frame when given, else every user named by the
        interactions and the social graph; the item vocabulary is the items frame followed by
        any further item the interactions name. Loaders validate; this only assembles.
        """
        inter_users = interactions["user"].astype(str).to_numpy()
        inter_items = interactions["item"].astype(str).to_numpy()
        if users is not None:
            user_vocab = Vocabulary.from_unique(users["user"].astype(str).to_numpy())
        else:
            parts = [inter_users]
            if social is not None and len(social):
                parts += [
                    social["follower"].astype(str).to_numpy(),
                    social["followee"].astype(str).to_numpy(),
                ]
            user_vocab = Vocabulary.from_unique(pd.unique(np.concatenate(parts)) if parts else [])
        if items is not None:
            item_vocab = Vocabulary.from_unique(items["item"].astype(str).to_numpy()).extend(
                pd.unique(inter_items)
            )
        else:
            item_vocab = Vocabulary.from_unique(pd.unique(inter_items))

        uidx = user_vocab.indices(inter_users)
        iidx = item_vocab.indices(inter_items)
        if (uidx < 0).any():
            bad = inter_users[np.argmax(uidx < 0)]
            raise DataError(f"interaction names user '{bad}' that the users table does not list")
        n = len(interactions)
        ts = (
            _to_epoch(interactions["timestamp"])
            if "timestamp" in interactions
            else np.full(n, np.nan)
        )
        if "event" in interactions:
            ev_names = interactions["event"].fillna("view").astype(str).str.lower()
            codes = ev_names.map(EVENT_CODES)
            if codes.isna().any():
                bad = ev_names[codes.isna()].iloc[0]
                raise DataError(f"unknown event type '{bad}'; valid: {', '.join(EVENT_TYPES)}")
            ev = codes.to_numpy(dtype=np.int8)
        else:
            ev = np.zeros(n, dtype=np.int8)
        val = (
            pd.to_numeric(interactions["value"], errors="coerce").to_numpy(dtype=np.float32)
            if "value" in interactions
            else np.full(n, np.nan, dtype=np.float32)
        )
        inter = Interactions.build(uidx, iidx, ts, ev, val)

        item_meta = _item_table(items, item_vocab)
        user_meta = _user_table(users, user_vocab)
        if social is not None and len(social):
            f = user_vocab.indices(social["follower"].astype(str).to_numpy())
            g = user_vocab.indices(social["followee"].astype(str).to_numpy())
            if (f < 0).any() or (g < 0).any():
                raise DataError("social edge names a user that the users table does not list")
            created = _to_epoch(social["created_at"]) if "created_at" in social else None
            graph = SocialGraph.build(f, g, created)
        else:
            graph = SocialGraph.empty()
        return cls(
            user_vocab, item_vocab, inter, item_meta, user_meta, graph, name, dict(extras or {})
        )

    # ----------------------------------------------------------------- sizes
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    @property
    def has_social(self) -> bool:
        return len(self.social) > 0

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {self.n_users} users, {self.n_items} items, "
            f"{self.n_interactions} interactions, {len(self.social)} social edges)"
        )

    # ----------------------------------------------------------------- matrices
    def matrix(self, config: MatrixConfig | None = None) -> sp.csr_matrix:
        """Sparse n_users x n_items float32 CSR of interaction weights (see `MatrixConfig`).

        Cached per config, since every model of a study asks for the same one.
        """
        config = config or MatrixConfig(binary=True)
        key = ("matrix", config.model_dump_json())
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        it = self.interactions
        weights = np.array([config.event_weights[e] for e in EVENT_TYPES], dtype=np.float64)[
            it.event
        ]
        if config.value_transform != "none":
            v = np.nan_to_num(it.value.astype(np.float64), nan=1.0)
            if (v < 0).any():
                raise DataError("interaction values must be non-negative to be used as weights")
            weights = weights * (v if config.value_transform == "linear" else np.log1p(v))
        if config.half_life_days is not None and it.has_timestamps:
            ref = (
                config.reference_time
                if config.reference_time is not None
                else float(np.nanmax(it.timestamp))
            )
            age_days = np.nan_to_num((ref - it.timestamp) / _SECONDS_PER_DAY, nan=0.0).clip(min=0.0)
            weights = weights * np.exp2(-age_days / config.half_life_days)
        shape = (self.n_users, self.n_items)
        if config.binary:
            m = sp.csr_matrix((np.ones(len(it), np.float32), (it.user, it.item)), shape=shape)
            m.sum_duplicates()
            m.data[:] = 1.0
        elif config.aggregate == "sum":
            m = sp.csr_matrix((weights.astype(np.float32), (it.user, it.item)), shape=shape)
            m.sum_duplicates()
        else:
            coo = sp.coo_matrix((weights.astype(np.float32), (it.user, it.item)), shape=shape)
            m = _max_duplicates(coo)
        if not config.binary:
            m.eliminate_zeros()
        m.sort_indices()
        self._cache[key] = m
        return m

    def seen(self) -> sp.csr_matrix:
        """Binary CSR of every (user, item) pair in the interactions."""
        return self.matrix(MatrixConfig(binary=True))

    def user_counts(self) -> np.ndarray:
        """Interactions per user (int64, length n_users)."""
        return np.bincount(self.interactions.user, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Interactions per item (int64, length n_items)."""
        return np.bincount(self.interactions.item, minlength=self.n_items)

    def pair_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The interactions grouped by (user, item) pair, oldest first within a pair (unknown
        times last): (order: positions into the interactions; keys: each pair's
        user * n_items + item, ascending; start: each pair's first position in `order`).
        Cached: a pipeline fit aggregates the same log by pair five times, with other event
        weights (a 20M-row sort each at the platform preset)."""
        key = "pair_groups"
        if key not in self._cache:
            it = self.interactions
            pair = it.user.astype(np.int64) * self.n_items + it.item.astype(np.int64)
            order = np.lexsort((it.timestamp, pair))
            keys, start = np.unique(pair[order], return_index=True)
            self._cache[key] = (order, keys, start)
        out: tuple[np.ndarray, np.ndarray, np.ndarray] = self._cache[key]
        return out

    def item_published_at(self) -> np.ndarray:
        """When each item could first be shown (float64 epoch seconds, NaN = unknown): its
        metadata's `created_at`, or its first interaction in this dataset where that came
        earlier. People do interact before a declared date (MovieLens release dates after
        their first ratings, clocks that disagree), and an item someone already interacted
        with is out: hiding it as unpublished would hide what the log shows exists. Cached."""
        key = "published_at"
        if key not in self._cache:
            created = np.asarray(self.item_meta.created_at, np.float64).copy()
            it = self.interactions
            t = np.asarray(it.timestamp, np.float64)
            known = np.isfinite(t)
            first = np.full(self.n_items, np.inf)
            np.minimum.at(first, it.item[known], t[known])
            earlier = created > first  # NaN (unknown) stays unknown
            created[earlier] = first[earlier]
            self._cache[key] = created
        out: np.ndarray = self._cache[key]
        return out

    def item_author_index(self) -> np.ndarray:
        """Author of each item as a user index (int64, -1 where unknown or not a user)."""
        key = "author_index"
        if key not in self._cache:
            authors = self.item_meta.author
            idx = self.users.indices(authors)
            idx[authors == ""] = -1
            self._cache[key] = idx
        return self._cache[key]

    # ----------------------------------------------------------------- filtering
    def with_interactions(self, interactions: Interactions, name: str | None = None) -> Dataset:
        """Same vocabularies, metadata and graph; other interactions."""
        return replace(self, interactions=interactions, name=name or self.name, _cache={})

    def filter_interactions(self, mask: np.ndarray, name: str | None = None) -> Dataset:
        return self.with_interactions(self.interactions.take(np.asarray(mask)), name)

    def between(self, start: float | None = None, end: float | None = None) -> Dataset:
        """Interactions with start <= timestamp < end (epoch seconds); unknown times are dropped."""
        ts = self.interactions.timestamp
        mask = ~np.isnan(ts)
        if start is not None:
            mask &= ts >= start
        if end is not None:
            mask &= ts < end
        return self.filter_interactions(mask)

    def restrict(
        self,
        users: Iterable[str] | np.ndarray | None = None,
        items: Iterable[str] | np.ndarray | None = None,
        *,
        by_index: bool = False,
    ) -> Dataset:
        """Interactions of the given users and/or items only (IDs, or indices if `by_index`)."""
        mask = np.ones(self.n_interactions, dtype=bool)
        if users is not None:
            u = np.asarray(list(users) if not isinstance(users, np.ndarray) else users)
            uidx = u.astype(np.int64) if by_index else self.users.indices(u)
            keep = np.zeros(self.n_users, dtype=bool)
            keep[uidx[uidx >= 0]] = True
            mask &= keep[self.interactions.user]
        if items is not None:
            i = np.asarray(list(items) if not isinstance(items, np.ndarray) else items)
            iidx = i.astype(np.int64) if by_index else self.items.indices(i)
            keep = np.zeros(self.n_items, dtype=bool)
            keep[iidx[iidx >= 0]] = True
            mask &= keep[self.interactions.item]
        return self.filter_interactions(mask)

    # ----------------------------------------------------------------- export
    def interactions_frame(self) -> pd.DataFrame:
        """Interactions with external IDs: user, item, timestamp, event, value."""
        it = self.interactions
        return pd.DataFrame(
            {
                "user": self.users.lookup(it.user),
                "item": self.items.lookup(it.item),
                "timestamp": it.timestamp,
                "event": np.asarray(EVENT_TYPES, dtype=object)[it.event],
                "value": it.value,
            }
        )

    def items_frame(self) -> pd.DataFrame:
        m = self.item_meta
        return pd.DataFrame(
            {
                "item": self.items.ids,
                "title": m.title,
                "text": m.text,
                "tags": ["|".join(t) for t in m.tags],
                "category": m.category,
                "author": m.author,
                "created_at": m.created_at,
            }
        )

    def social_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "follower": self.users.lookup(self.social.follower),
                "followee": self.users.lookup(self.social.followee),
                "created_at": self.social.created_at,
            }
        )


# --------------------------------------------------------------------- helpers
def _to_epoch(col: pd.Series) -> np.ndarray:
    """Epoch seconds (float64, NaN for missing) from numbers, numeric strings or datetimes."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return _datetimes_to_epoch(col)
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().sum() == col.notna().sum():
        return num.to_numpy(dtype=np.float64)
    return _datetimes_to_epoch(pd.to_datetime(col, errors="coerce", utc=True, format="mixed"))


def _datetimes_to_epoch(col: pd.Series) -> np.ndarray:
    """Epoch seconds of a datetime column, whatever its resolution (pandas 3 may use us or s)."""
    if getattr(col.dt, "tz", None) is None:
        col = col.dt.tz_localize("UTC")
    seconds = (col - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.to_numpy(dtype=np.float64, na_value=np.nan)


def _as_tags(v: Any) -> tuple[str, ...]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ()
    if isinstance(v, str):
        return tuple(t.strip() for t in v.split("|") if t.strip())
    return tuple(str(t) for t in v)


def _text_column(frame: pd.DataFrame, name: str, order: np.ndarray, n: int) -> np.ndarray:
    out = _empty_object(n)
    if name in frame:
        out[order] = frame[name].fillna("").astype(str).to_numpy(dtype=object)
    return out


def _item_table(items: pd.DataFrame | None, vocab: Vocabulary) -> ItemTable:
    n = len(vocab)
    if items is None:
        return ItemTable.empty(n)
    order = vocab.indices(items["item"].astype(str).to_numpy())
    tags = _empty_object(n, ())
    if "tags" in items:
        vals = [_as_tags(v) for v in items["tags"].tolist()]
        for pos, t in zip(order, vals, strict=True):
            tags[pos] = t
    created = np.full(n, np.nan)
    if "created_at" in items:
        created[order] = _to_epoch(items["created_at"])
    return ItemTable(
        title=_text_column(items, "title", order, n),
        text=_text_column(items, "text", order, n),
        tags=tags,
        category=_text_column(items, "category", order, n),
        author=_text_column(items, "author", order, n),
        created_at=created,
    )


def _user_table(users: pd.DataFrame | None, vocab: Vocabulary) -> UserTable:
    n = len(vocab)
    if users is None:
        return UserTable.empty(n)
    created = _to_epoch(users["created_at"]) if "created_at" in users else np.full(n, np.nan)
    interests = _empty_object(n, ())
    if "interests" in users:
        for pos, v in enumerate(users["interests"].tolist()):
            interests[pos] = _as_tags(v)
    private = (
        users["private"].fillna(False).astype(str).str.lower().isin(["1", "true", "yes"]).to_numpy()
        if "private" in users
        else np.zeros(n, dtype=bool)
    )
    skip = {"user", "created_at", "interests", "private"}
    attrs = {c: users[c].to_numpy() for c in users.columns if c not in skip}
    return UserTable(created, interests, private, attrs)


def _max_duplicates(coo: sp.coo_matrix) -> sp.csr_matrix:
    df = pd.DataFrame({"r": coo.row, "c": coo.col, "v": coo.data})
    g = df.groupby(["r", "c"], sort=True)["v"].max()
    r = g.index.get_level_values(0).to_numpy()
    c = g.index.get_level_values(1).to_numpy()
    return sp.csr_matrix((g.to_numpy(dtype=np.float32), (r, c)), shape=coo.shape)
