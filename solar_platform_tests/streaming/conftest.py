"""The one SparkSession the streaming tests share (each start costs ~7 s on a 2-core machine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from solar_platform.settings import load_settings


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from solar_platform.streaming.session import build_session

    yield build_session(load_settings())
    # Left running for other modules in this process; pyspark stops it at exit.
