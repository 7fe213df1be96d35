"""Service settings, read once at the edge (the `serve` command, or a test) and passed down.

Every field can be set from the environment with the `SERENDIP_` prefix, e.g.
`SERENDIP_DB_URL=postgresql+psycopg://...`, `SERENDIP_PORT=9000`, or the API keys as JSON:
`SERENDIP_API_KEYS='[{"name": "web", "key": "s3cret", "scopes": ["read", "write"]}]'`.
The library below `service/` never reads the environment.

>>> Settings(port=9000, api_keys=[{"name": "ops", "key": "k", "scopes": ["admin"]}]).port
9000
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serendip.errors import ConfigError

__all__ = ["SCOPES", "ApiKey", "Limits", "Scope", "Settings", "is_loopback"]

Scope = Literal["read", "write", "admin"]
#: read: recommendations, similar items, trending, metrics; write: events, catalog, users and the
#: social graph; admin: model versions (and, implicitly, everything else).
SCOPES: tuple[str, ...] = ("read", "write", "admin")


class ApiKey(BaseModel):
    """One API key and what it may do. `admin` implies `read` and `write`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        default="key", min_length=1, max_length=64, description="Who holds the key (logs)."
    )
    key: SecretStr = Field(description="The secret, sent as `Authorization: Bearer <key>`.")
    scopes: frozenset[Scope] = Field(description="Any of read, write, admin.")

    @field_validator("key")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 1:
            raise ValueError("an API key must not be empty")
        return v

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class Limits(BaseModel):
    """Bounds on every input, so that no request can ask for unbounded work or memory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_k: int = Field(default=200, ge=1, le=10_000, description="Largest k a request may ask for.")
    max_batch: int = Field(
        default=10_000, ge=1, le=100_000, description="Most events/items per batch."
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest request body; larger gets 413."
    )
    max_string_length: int = Field(
        default=256, ge=8, le=4096, description="Longest ID, tag, category or author name."
    )
    max_text_length: int = Field(default=20_000, ge=16, description="Longest title or item text.")
    max_list_length: int = Field(
        default=1_000, ge=1, description="Most entries in a list field (tags, interests, exclude)."
    )


class Settings(BaseSettings):
    """How one Serendip server runs: where its data lives, who may call it, its limits."""

    model_config = SettingsConfigDict(
        env_prefix="SERENDIP_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    db_url: str = Field(
        default="sqlite:///./serendip-data/serendip.db",
        description="Store URL: sqlite:///path.db or postgresql+psycopg://user@host/db.",
    )
    artifacts_dir: Path = Field(
        default=Path("./serendip-data/artifacts"),
        description="Where fitted model versions are kept.",
    )
    host: str = Field(default="127.0.0.1", description="Interface to bind.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to bind (0: any free port).")
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description="API keys; none configured = unauthenticated, localhost only.",
    )
    limits: Limits = Field(default_factory=lambda: Limits())
    bootstrap: bool = Field(
        default=True, description="On first start with an empty store, load a synthetic platform."
    )
    bootstrap_preset: str = Field(
        default="small",
        description="Synthetic preset for the first start: tiny, small or platform.",
    )
    bootstrap_seed: int = Field(default=42, ge=0, description="Seed of the synthetic platform.")
    default_model: str | None = Field(
        default=None,
        description="Model fitted at first start; default: `pipeline` when available, else item-knn.",
    )
    bootstrap_fast_model: str | None = Field(
        default="item-knn",
        description=(
            "Model fitted and served first on a first start (item-knn: about 15 s on the "
            "`small` preset, personal recommendations with reasons), replaced by the default "
            "model when its fit ends (the pipeline: minutes). None: serve nothing until the "
            "default model is fitted."
        ),
    )
    default_model_params: dict[str, object] = Field(
        default_factory=dict,
        description=(
            "Hyperparameters of the model fitted at first start or retrain (JSON), e.g. a "
            "lighter pipeline for a large platform."
        ),
    )
    train_window_days: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Fit the default model on the last this many days of events only (None: all). A "
            "feed's signal is recent; on a large platform it bounds the fit's time and memory."
        ),
    )
    precompute_lists: bool = Field(
        default=True,
        description=(
            "Serve the pipeline from per-user ranked candidates computed in batch at fit time "
            "(saved with the model; built in the background after loading a model without them)."
        ),
    )
    precompute_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description=(
            "Processes that precompute the lists at fit time (each loads the saved model, "
            "memory-mapped). 0: one per CPU core, at most 4, from 20,000 users on; 1 below."
        ),
    )
    refresh_live: bool = Field(
        default=True,
        description=(
            "Update an active user's precomputed candidates in a background thread as their "
            "events arrive (a user with several events pending is updated once), so their next "
            "request is a cache hit: the same CPU, off the request path. Off: updated at the "
            "user's next request, which then pays it (benchmarks/results/serve_live_small.md). "
            "Each server process keeps its own lists, so each one updates."
        ),
    )
    refresh_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "Most of one core the live updates (`refresh_live`) may take in each server "
            "process: under a burst of events the rest is left to ingestion and requests, "
            "and users not yet updated are served by their next request."
        ),
    )
    fresh_slots: int = Field(
        default=2,
        ge=0,
        le=50,
        description=(
            "Most slots of a recommendation list that items added since the model's fit may "
            "take (new from an author the user follows, new in the user's main category)."
        ),
    )
    threads: int = Field(
        default=4,
        ge=1,
        le=256,
        description=(
            "Worker threads for request handlers. Recommending is CPU-bound under one GIL, so "
            "a few threads keep each request fast; many only share the CPU among more requests."
        ),
    )
    follow_store_s: float = Field(
        default=1.0,
        ge=0,
        description=(
            "Seconds between two looks at the store for what other server processes on it "
            "wrote (events, catalog, profiles, follows), applied to this one's live state; "
            "0: this is the only server (docs/deployment.md)."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis for change notices between servers on one store (redis://host:6379/0): a "
            "write on one wakes the others' followers at once instead of at their next look "
            "(None, or Redis away: they poll every `follow_store_s`; docs/deployment.md)."
        ),
    )
    workers: int = Field(
        default=1,
        ge=0,
        le=64,
        description=(
            "Server processes on this host and port (`serendip serve --workers`; 0: one per "
            "core). They share the listening socket, the store and the memory-mapped model; "
            "each follows the others' writes (`follow_store_s`). Worker 0 leads: it makes the "
            "first start, builds precomputed lists a version lacks and runs the retention purge."
        ),
    )
    worker_index: int = Field(
        default=0,
        ge=0,
        description="This process's index under `serve --workers` (set by the supervisor).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # ---- operations
    log_exposures: bool = Field(
        default=True,
        description=(
            "Store every served recommendation list as an exposure (user, items, positions, "
            "model version, experiment variant): what A/B analysis and the live monitors read."
        ),
    )
    monitors_file: Path | None = Field(
        default=None,
        description="TOML file of monitor thresholds (None: the built-in thresholds).",
    )
    study_dir: Path | None = Field(
        default=None,
        description="A `serendip study` output directory: the dashboard's leaderboard reads it.",
    )
    # ---- privacy
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Key of the HMAC that replaces external user IDs at ingestion, so the store never "
            "holds the platform's raw IDs (None: IDs are stored as given)."
        ),
    )
    retention_days: float | None = Field(
        default=None,
        gt=0,
        description="Purge events older than this many days on schedule (None: keep all).",
    )

    @property
    def authenticated(self) -> bool:
        return bool(self.api_keys)

    @property
    def leads(self) -> bool:
        """This process makes the first start, builds missing precomputed lists and purges on
        schedule (the only one, or worker 0 under `serve --workers`)."""
        return self.worker_index == 0

    def check_bind(self) -> None:
        """Refuse to expose an unauthenticated server beyond this machine."""
        if not self.authenticated and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to bind to {self.host} without API keys: an unauthenticated server "
                "may only listen on localhost (set SERENDIP_API_KEYS or use --host 127.0.0.1)"
            )


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
