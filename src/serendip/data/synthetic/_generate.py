"""`generate_platform`: draw a platform and write it as a `serendip-platform` directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from serendip.data.dataset import EVENT_TYPES
from serendip.data.synthetic._config import PlatformConfig, resolve_config
from serendip.data.synthetic._simulate import SimulationStats, simulate
from serendip.data.synthetic._text import TextMaker
from serendip.data.synthetic._topics import TOPICS
from serendip.data.synthetic._truth import ResponseModel
from serendip.data.synthetic._world import World, build_world
from serendip.errors import ConfigError

__all__ = ["FORMAT", "ProgressCallback", "generate_platform", "response_model"]

FORMAT = "serendip-platform"
FORMAT_VERSION = 1

#: progress(stage, done, total): called as each stage advances ("world", "items",
#: "interactions", "truth"); `total` is fixed per stage.
ProgressCallback = Callable[[str, int, int], None]


def response_model(config: PlatformConfig) -> ResponseModel:
    return ResponseModel(
        click_rate=config.click_rate,
        like_rate=config.like_rate,
        comment_rate=config.comment_rate,
        share_rate=config.share_rate,
        affinity_effect=config.affinity_effect,
        quality_effect=config.quality_effect,
    )


def _ids(prefix: str, n: int, width: int) -> pa.Array:
    width = max(width, len(str(max(n - 1, 0))))
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(n)], type=pa.string())


def _take(ids: pa.Array, index: np.ndarray) -> pa.Array:
    return ids.take(pa.array(np.asarray(index, dtype=np.int64)))


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def generate_platform(
    preset: str | PlatformConfig,
    *,
    seed: int,
    out: str | Path,
    progress: ProgressCallback | None = None,
    **overrides: Any,
) -> Path:
    """Generate a synthetic social platform into `out` and return `out`.

    `preset` is "tiny", "small", "platform" (see `PRESETS`) or a `PlatformConfig`; keyword
    `overrides` replace config fields (validated; a bad name or value raises `ConfigError`).
    The same preset, overrides and seed give byte-identical files. Writes
    interactions.parquet (user, item, timestamp int64 epoch s, event, value), items.parquet,
    users.parquet, social.parquet, truth/ and, last, manifest.json. The interactions are
    streamed day by day, so memory does not grow with the log.

    >>> generate_platform("tiny", seed=7, out="data/tiny")  # doctest: +SKIP
    PosixPath('data/tiny')
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    config = resolve_config(preset, overrides)
    preset_name = preset if isinstance(preset, str) else "custom"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a directory")
    (out / "truth").mkdir(parents=True, exist_ok=True)
    # The manifest marks a complete platform: remove a previous one before rewriting the files.
    (out / "manifest.json").unlink(missing_ok=True)
    report = progress or (lambda stage, done, total: None)

    streams = np.random.SeedSequence(int(seed)).spawn(4)
    world_rng, text_rng, sim_rng, _ = (np.random.default_rng(s) for s in streams)

    report("world", 0, 1)
    world = build_world(config, world_rng)
    topics = TOPICS[: config.n_topics]
    user_ids = _ids("u", world.n_users, 6)
    item_ids = _ids("i", world.n_items, 7)
    _write_users(world, user_ids, topics, out / "users.parquet")
    _write_social(world, user_ids, out / "social.parquet")
    report("world", 1, 1)

    _write_items(
        world, user_ids, item_ids, TextMaker(topics), text_rng, out / "items.parquet", report
    )

    response = response_model(config)
    stats = _write_interactions(
        world, response, user_ids, item_ids, sim_rng, out / "interactions.parquet", report
    )

    report("truth", 0, 1)
    _write_truth(world, user_ids, item_ids, topics, response, out / "truth")
    manifest = _manifest(preset_name, int(seed), config, world, stats, topics)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    report("truth", 1, 1)
    return out


def _join_topics(values: list[tuple[int, ...]], names: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    lengths = np.array([len(v) for v in values], dtype=np.int64)
    flat = np.fromiter((t for v in values for t in v), dtype=np.int64, count=int(lengths.sum()))
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pc.binary_join(pa.ListArray.from_arrays(offsets, names.take(pa.array(flat))), "|")


def _write_users(world: World, user_ids: pa.Array, topics: tuple[Any, ...], path: Path) -> None:
    names = pa.array([t.slug for t in topics], type=pa.string())
    table = pa.table(
        {
            "user": user_ids,
            "created_at": pa.array(world.user_created, type=pa.int64()),
            "interests": _join_topics(world.declared, names),
            "private": pa.array(world.private, type=pa.bool_()),
        }
    )
    _write(table, path)


def _write_social(world: World, user_ids: pa.Array, path: Path) -> None:
    table = pa.table(
        {
            "follower": _take(user_ids, world.follower),
            "followee": _take(user_ids, world.followee),
            "created_at": pa.array(world.edge_created, type=pa.int64()),
        }
    )
    _write(table, path)


_ITEM_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("tags", pa.string()),
        ("category", pa.string()),
        ("author", pa.string()),
        ("created_at", pa.int64()),
    ]
)


def _write_items(
    world: World,
    user_ids: pa.Array,
    item_ids: pa.Array,
    text: TextMaker,
    rng: np.random.Generator,
    path: Path,
    report: ProgressCallback,
) -> None:
    n = world.n_items
    step = world.config.item_chunk
    chunks = range(0, n, step)
    report("items", 0, len(chunks))
    with pq.ParquetWriter(path, _ITEM_SCHEMA, compression="zstd") as writer:
        for j, lo in enumerate(chunks):
            hi = min(lo + step, n)
            topic = world.item_topic[lo:hi]
            table = pa.table(
                {
                    "item": item_ids[lo:hi],
                    "title": text.titles(topic, rng),
                    "text": text.texts(topic, rng),
                    "tags": text.tags(topic, rng),
                    "category": text.categories_of(topic),
                    "author": _take(user_ids, world.item_author[lo:hi]),
                    "created_at": pa.array(world.item_created[lo:hi], type=pa.int64()),
                },
                schema=_ITEM_SCHEMA,
            )
            writer.write_table(table)
            report("items", j + 1, len(chunks))


_INTERACTION_SCHEMA = pa.schema(
    [
        ("user", pa.string()),
        ("item", pa.string()),
        ("timestamp", pa.int64()),
        ("event", pa.string()),
        ("value", pa.float32()),
    ]
)


def _write_interactions(
    world: World,
    response: ResponseModel,
    user_ids: pa.Array,
    item_ids: pa.Array,
    rng: np.random.Generator,
    path: Path,
    report: ProgressCallback,
) -> SimulationStats:
    total_days = world.config.days - world.config.warmup_days
    report("interactions", 0, total_days)
    days, stats = simulate(
        world, response, rng, on_day=lambda done, total: report("interactions", done, total)
    )
    events = pa.array(list(EVENT_TYPES), type=pa.string())
    limit = world.config.row_group_rows
    buffer: list[Any] = []
    buffered = 0

    def flush(writer: pq.ParquetWriter) -> None:
        nonlocal buffer, buffered
        if not buffered:
            return
        u, i, t, e = (
            np.concatenate([getattr(b, f) for b in buffer])
            for f in ("user", "item", "timestamp", "event")
        )
        table = pa.table(
            {
                "user": _take(user_ids, u),
                "item": _take(item_ids, i),
                "timestamp": pa.array(t, type=pa.int64()),
                "event": _take(events, e),
                "value": pa.nulls(len(u), type=pa.float32()),
            },
            schema=_INTERACTION_SCHEMA,
        )
        writer.write_table(table, row_group_size=limit)
        buffer, buffered = [], 0

    with pq.ParquetWriter(path, _INTERACTION_SCHEMA, compression="zstd") as writer:
        for rows in days:
            buffer.append(rows)
            buffered += len(rows.user)
            if buffered >= limit:
                flush(writer)
        flush(writer)
    return stats


def _write_truth(
    world: World,
    user_ids: pa.Array,
    item_ids: pa.Array,
    topics: tuple[Any, ...],
    response: ResponseModel,
    root: Path,
) -> None:
    users: dict[str, Any] = {
        "user": user_ids,
        "community": pa.array(world.community, type=pa.int32()),
        "activity": pa.array(world.activity, type=pa.float64()),
        "fame": pa.array(world.fame, type=pa.float64()),
        "is_author": pa.array(world.is_author, type=pa.bool_()),
    }
    for k, t in enumerate(topics):
        users[f"theta:{t.slug}"] = pa.array(world.theta[:, k], type=pa.float64())
    _write(pa.table(users), root / "users.parquet")
    slugs = pa.array([t.slug for t in topics], type=pa.string())
    items = pa.table(
        {
            "item": item_ids,
            "topic": _take(slugs, world.item_topic),
            "quality": pa.array(world.item_quality, type=pa.float64()),
            "author": _take(user_ids, world.item_author),
        }
    )
    _write(items, root / "items.parquet")
    meta = {
        "response": response.model_dump(),
        "topics": [
            {"slug": t.slug, "category": t.category, "words": list(t.words), "tags": list(t.tags)}
            for t in topics
        ],
        "explanation": (
            "affinity = n_topics * theta[user, topic(item)]; "
            "z = affinity_effect * log(affinity + 0.05) + quality_effect * log(quality); "
            "P(click|view) = sigmoid(logit(click_rate) + z/2); P(like|view) = sigmoid(logit(like_rate) + z); "
            "P(comment|like) = sigmoid(logit(comment_rate) + z/2); P(share|like) = sigmoid(logit(share_rate) + z/2)"
        ),
    }
    (root / "response.json").write_text(json.dumps(meta, indent=2) + "\n")


def _manifest(
    preset: str,
    seed: int,
    config: PlatformConfig,
    world: World,
    stats: SimulationStats,
    topics: tuple[Any, ...],
) -> dict[str, Any]:
    from serendip import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator": f"serendip {__version__}",
        "preset": preset,
        "seed": seed,
        "window": {"start": world.start, "end": world.end, "days": config.days},
        "counts": {
            "users": world.n_users,
            "items": world.n_items,
            "interactions": stats.rows,
            "social_edges": len(world.follower),
            "authors": int(world.is_author.sum()),
            "communities": config.n_communities,
            "topics": len(topics),
            "exposures": stats.exposures,
            "events": dict(stats.events),
            "exposures_by_source": dict(stats.source_exposures),
        },
        "in_network_share": round(stats.in_network_share, 6),
        "in_network_definition": (
            "share of interaction rows whose item's author is a followee of the user, or that a "
            "followee liked or shared strictly earlier"
        ),
        "files": {
            "interactions": "interactions.parquet",
            "items": "items.parquet",
            "users": "users.parquet",
            "social": "social.parquet",
            "truth": "truth/",
        },
        "config": config.model_dump(mode="json"),
    }
