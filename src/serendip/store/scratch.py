"""Throwaway PostgreSQL schemas, so tests and benchmarks share one server without sharing tables.

A scratch schema is created under a unique name and put first on the connection's
`search_path` through the URL's `options` query parameter, so `Store.open(url)` migrates and
uses it as if it were an empty database; dropping it (CASCADE) removes everything at once.
Not used by the library itself: the contract tests (tests/store, tests/service) and the
ingestion/serving benchmarks build on it.

>>> with scratch_schema("postgresql+psycopg://postgres@127.0.0.1/test", "bench") as url:  # doctest: +SKIP
...     Store.open(url)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["create_scratch_schema", "drop_scratch_schema", "scratch_schema"]

_OPTION_PREFIX = "-csearch_path="


def create_scratch_schema(base_url: str, prefix: str) -> str:
    """Create the schema `<prefix>_<12 hex>` on the server of `base_url`; the URL that uses it.

    Drop it with `drop_scratch_schema(returned_url)`."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    url = make_url(base_url).update_query_dict({"options": f"{_OPTION_PREFIX}{schema}"})
    return url.render_as_string(hide_password=False)


def drop_scratch_schema(url: str) -> None:
    """Drop (CASCADE) the schema a URL of `create_scratch_schema` points at; no error if gone."""
    parsed = make_url(url)
    options = parsed.query.get("options")
    if not isinstance(options, str) or not options.startswith(_OPTION_PREFIX):
        raise ValueError(f"not a scratch-schema URL (no options={_OPTION_PREFIX}...): {url}")
    schema = options[len(_OPTION_PREFIX) :]
    admin = create_engine(parsed.difference_update_query(["options"]), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


@contextmanager
def scratch_schema(base_url: str, prefix: str) -> Iterator[str]:
    """A scratch schema's URL for the duration of the block, dropped afterwards."""
    url = create_scratch_schema(base_url, prefix)
    try:
        yield url
    finally:
        drop_scratch_schema(url)
