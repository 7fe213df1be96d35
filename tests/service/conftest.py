"""Fixtures of the API tests: a fresh store per test (SQLite, and PostgreSQL in an isolated
schema under the `postgres` marker), a tiny fake runtime for the plumbing tests, and a client
factory. Tests that check real behaviour (real time, hot swap) use the real `ModelRuntime`."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serendip.errors import ConfigError, SerendipError
from serendip.service.app import create_app
from serendip.service.settings import Settings
from serendip.store import Store
from serendip.store.scratch import create_scratch_schema, drop_scratch_schema


def postgres_url() -> str:
    """URL of a fresh PostgreSQL schema (created here; drop it with
    `serendip.store.scratch.drop_scratch_schema`), or skip.

    Uses the server and the skip rule of the store's contract tests (tests/store/conftest.py)."""
    from tests.store.conftest import POSTGRES_URL, _pg_reason_cached

    reason = _pg_reason_cached()
    if reason:
        pytest.skip(reason)
    return create_scratch_schema(POSTGRES_URL, "api")


def _postgres_store() -> Iterator[Store]:
    url = postgres_url()
    store = Store.open(url)
    try:
        yield store
    finally:
        store.close()
        drop_scratch_schema(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file; each test copies it (a fresh database in milliseconds
    instead of running the migrations per test)."""
    path = tmp_path_factory.mktemp("template") / "serendip.db"
    Store.open(f"sqlite:///{path}").close()
    return path


def fresh_sqlite(template: Path, directory: Path) -> str:
    """URL of a fresh copy of the migrated template in `directory`."""
    path = directory / "serendip.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Store]:
    """A fresh, migrated store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        s = Store.open(fresh_sqlite(sqlite_template, tmp_path))
        yield s
        s.close()
    else:
        yield from _postgres_store()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store for server processes: a SQLite file path, or a fresh
    PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'serendip.db'}"
    else:
        url = postgres_url()
        yield url
        drop_scratch_schema(url)


@pytest.fixture
def sqlite_store(tmp_path: Path, sqlite_template: Path) -> Iterator[Store]:
    s = Store.open(fresh_sqlite(sqlite_template, tmp_path))
    yield s
    s.close()


@dataclass(frozen=True)
class FakeRec:
    item: str
    score: float
    explanation: dict[str, Any] | None = None


_FAKE_ITEMS = tuple(f"i{j}" for j in range(30))


class FakeRuntime:
    """Just enough of `ModelRuntime` for the plumbing tests: a fixed catalog, seen items,
    deletions; `load` fails for a directory named `broken`; `recommend` raises for `boom`."""

    def __init__(self, items: Sequence[str] = _FAKE_ITEMS) -> None:
        self.items = list(items)
        self.seen: dict[str, set[str]] = {}
        self.deleted: set[str] = set()
        self.active_version: str | None = None
        self.calls: list[tuple[str, Any]] = []

    @property
    def snapshot(self) -> Any:
        """Like `ModelRuntime.snapshot`: the active version, read once per request."""
        if self.active_version is None:
            return None
        return SimpleNamespace(version=self.active_version, cache=None)

    def load(self, directory: Path, version: str) -> None:
        if Path(directory).name == "broken":
            raise SerendipError(f"{directory}: not a model artifact")
        self.active_version = version

    def recommend(
        self,
        user: str,
        k: int,
        *,
        explain: bool,
        categories: Any = None,
        authors: Any = None,
        exclude: Any = (),
        context_item: Any = None,
        snapshot: Any = None,
    ) -> list[FakeRec]:
        if user == "boom":
            raise RuntimeError("a bug")
        skip = self.seen.get(user, set()) | self.deleted | set(exclude) | {context_item}
        out = [i for i in self.items if i not in skip][:k]
        exp = (
            (lambda i: {"text": f"because {i}", "source": "fake"}) if explain else (lambda i: None)
        )
        return [FakeRec(i, 1.0 / (r + 1), exp(i)) for r, i in enumerate(out)]

    def similar(self, item: str, k: int, *, snapshot: Any = None) -> list[FakeRec]:
        return [FakeRec(i, 0.5) for i in self.items if i != item and i not in self.deleted][:k]

    def trending(
        self, k: int, category: str | None = None, *, snapshot: Any = None
    ) -> list[FakeRec]:
        return [FakeRec(i, 0.1) for i in self.items if i not in self.deleted][:k]

    def on_events(self, events: Sequence[Any]) -> None:
        for e in events:
            self.seen.setdefault(e.user, set()).add(e.item)

    def on_items(self, items: Sequence[Any]) -> None:
        for it in items:
            self.deleted.discard(it.item)
            if it.item not in self.items:
                self.items.insert(0, it.item)

    def on_items_deleted(self, ids: Sequence[str]) -> None:
        self.deleted.update(ids)

    def on_users(self, users: Sequence[Any]) -> None:
        self.calls.append(("users", tuple(u.user for u in users)))

    def on_follow(self, a: str, b: str) -> None:
        self.calls.append(("follow", (a, b)))

    def on_unfollow(self, a: str, b: str) -> None:
        self.calls.append(("unfollow", (a, b)))


ClientFactory = Callable[..., TestClient]


def wait_ready(client: TestClient, timeout: float = 60.0) -> dict[str, Any]:
    """Poll /readyz until 200 (the model loads in the background); its body."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/readyz")
        if r.status_code == 200:
            return r.json()  # type: ignore[no-any-return]
        assert r.status_code == 503 and r.json()["reason"]
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout} s: {client.get('/readyz').json()}")


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """`make_client(store, runtime, **settings)` -> a started TestClient (closed at teardown)."""
    opened: list[TestClient] = []

    def make(store: Any, runtime: Any, **overrides: Any) -> TestClient:
        overrides.setdefault("artifacts_dir", tmp_path / "artifacts")
        overrides.setdefault("bootstrap", False)
        settings = Settings(db_url="sqlite:///unused.db", **overrides)
        client = TestClient(create_app(settings, store=store, runtime=runtime))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def fake_runtime() -> FakeRuntime:
    rt = FakeRuntime()
    rt.active_version = "v-fake"
    return rt


@pytest.fixture
def client(store: Store, fake_runtime: FakeRuntime, make_client: ClientFactory) -> TestClient:
    """A client on the parametrised store (SQLite and PostgreSQL)."""
    return make_client(store, fake_runtime)


@pytest.fixture
def sqlite_client(
    sqlite_store: Store, fake_runtime: FakeRuntime, make_client: ClientFactory
) -> TestClient:
    """A client on SQLite only, for tests where the backend cannot matter (validation, auth)."""
    return make_client(sqlite_store, fake_runtime)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory, toy_platform: Any) -> dict[str, Path]:
    """Two fitted model artifacts on the toy platform (item-kNN and popularity), fitted once."""
    from serendip.models.registry import create_model

    root = tmp_path_factory.mktemp("models")
    out = {}
    for name in ("item-knn", "popularity"):
        out[name] = create_model(name).fit(toy_platform).save(root / name)
    return out


@pytest.fixture
def real_runtime(model_dirs: dict[str, Path]) -> Any:
    """The real `ModelRuntime` serving the toy item-kNN model as version `v1`."""
    from serendip.service.runtime import ModelRuntime

    rt = ModelRuntime()
    rt.load(model_dirs["item-knn"], "v1")
    return rt


@pytest.fixture
def served_runtime(real_runtime: Any) -> Any:
    """The runtime the fuzz run talks to: the real one."""
    return real_runtime


@pytest.fixture(scope="session")
def pipe(tmp_path_factory: pytest.TempPathFactory, toy_platform: Any) -> Path:
    """The `pipeline` model with its quick parameters, fitted on the toy platform and saved,
    once per run. Loading it may save precomputed lists into it: copy it before changing it."""
    from serendip.models import get_model_class

    try:
        cls = get_model_class("pipeline")
    except ConfigError:
        pytest.skip("pipeline model not registered")
    path = tmp_path_factory.mktemp("pipe") / "pipe"
    cls(dict(cls.quick_params)).fit(toy_platform).save(path)
    return path


def ready_lists(runtime: Any, timeout: float = 60.0) -> Any:
    """Wait for the active snapshot's precomputed lists (built in the background after a load)
    and return them; fails unless they end up ready."""
    snap = runtime.snapshot
    assert snap is not None and snap.lists is not None
    deadline = time.monotonic() + timeout
    while snap.lists.state == "building" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert snap.lists.state == "ready" and snap.lists.lists is not None
    return snap.lists.lists
