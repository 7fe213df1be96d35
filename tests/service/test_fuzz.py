"""A short schemathesis run over the whole OpenAPI schema: whatever it sends (schema-valid or
not), the API never answers 5xx.

Driven by hand (operation strategies + Hypothesis) rather than `schema.parametrize()`, whose
lazy fixture mode does not run on pytest 9."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from serendip.service.app import create_app
from serendip.service.settings import Settings
from serendip.store import Store
from tests.service.conftest import fresh_sqlite

schemathesis = pytest.importorskip("schemathesis")

MAX_EXAMPLES = 5  # per operation and mode: a smoke run (~250 requests), seconds not minutes


def test_no_5xx_anywhere(tmp_path: Path, sqlite_template: Path, served_runtime: Any) -> None:
    from schemathesis.generation import GenerationMode
    from schemathesis.python import asgi

    store = Store.open(fresh_sqlite(sqlite_template, tmp_path))
    app = create_app(
        Settings(bootstrap=False, artifacts_dir=tmp_path / "artifacts"),
        store=store,
        runtime=served_runtime,
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # One in-process client for the whole run (a client per call costs more than the call).
    client = asgi.get_client(app).__enter__()
    failures: list[str] = []
    n_ops = 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            n_ops += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode)

                @given(case=strategy, seed=st.just(0))
                @settings(
                    max_examples=MAX_EXAMPLES,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                def run(case: Any, seed: int) -> None:
                    response = case.call(session=client)
                    if response.status_code >= 500:
                        failures.append(
                            f"{case.method} {case.formatted_path}: "
                            f"{response.status_code} {response.text[:200]}"
                        )

                # Unsatisfiable: e.g. no way to break an operation without parameters
                with contextlib.suppress(Unsatisfiable):
                    run()
    finally:
        client.__exit__(None, None, None)
        store.close()
    assert n_ops >= 20
    assert not failures, "\n".join(failures[:10])
