"""One local[2] SparkSession for every Spark test of the run (a JVM start costs ~20 s)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java on PATH")
    from serendip.spark._session import spark_session

    session = spark_session("local[2]", app_name="serendip-tests")
    yield session
    session.stop()
