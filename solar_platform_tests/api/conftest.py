"""One migrated database per API test module, filled once with a realistic fleet (see `fleet_data`).

The issue prefers data "filled by the real pipeline". `solar_platform.streaming.job` does not exist
yet, so the rows are written with SQL in exactly the shapes the contract and the stream define;
swap `load_fleet` for fleet fast-forward + stream available-now once the job exposes a run function.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from solar_platform.api.app import create_app
from solar_platform.settings import Settings
from solar_platform.storage.db import engine
from solar_platform_tests.api.fleet_data import NOW, Fleet, build_fleet, load_fleet
from solar_platform_tests.conftest import _isolated


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return build_fleet()


@pytest.fixture(scope="module")
def api_settings(stack_settings: Settings, fleet: Fleet) -> Iterator[Settings]:
    for settings in _isolated(stack_settings, "api"):
        load_fleet(engine(settings), fleet)
        yield settings


@pytest.fixture(scope="module")
def client(api_settings: Settings) -> FlaskClient:
    """The API as deployed (read-only user), with the clock pinned to the data's NOW, no rate limit."""
    app = create_app(api_settings, rate_per_second=None, clock=lambda: NOW)
    app.testing = True
    return app.test_client()
