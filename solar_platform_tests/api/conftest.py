"""One migrated database for the API tests, filled once by the real pipeline (see `fleet_data`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from solar_platform.api.app import create_app
from solar_platform.settings import Settings
from solar_platform_tests.api.fleet_data import NOW, Fleet, build_fleet, load_fleet
from solar_platform_tests.conftest import isolated


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    return build_fleet()


@pytest.fixture(scope="session")
def api_settings(stack_settings: Settings, fleet: Fleet) -> Iterator[Settings]:
    for settings in isolated(stack_settings, "api"):
        load_fleet(settings, fleet)
        yield settings


@pytest.fixture(scope="session")
def client(api_settings: Settings) -> FlaskClient:
    """The API as deployed (read-only user), with the clock pinned to the data's NOW, no rate limit."""
    app = create_app(api_settings, rate_per_second=None, clock=lambda: NOW)
    app.testing = True
    return app.test_client()
