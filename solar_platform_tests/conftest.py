"""Fixtures for integration tests on the real local stack (MariaDB + Kafka, started if needed).

Tests never share state: each `fresh_settings` gets its own migrated database and its own topic on
the one running stack, and drops them afterwards. A stack the tests started is stopped at the end;
one that was already running (a developer's) is left alone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from solar_platform.settings import Settings, load_settings


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """The default settings, with MariaDB and Kafka up for the whole session."""
    from solar_platform.stack.lifecycle import stack_down, stack_up
    from solar_platform.stack.supervisor import supervisor_running

    settings = load_settings()
    started_here = not supervisor_running(settings)
    settings = stack_up(settings, log=lambda _line: None)
    yield settings
    if started_here:
        stack_down(settings)


def isolated(base: Settings, label: str) -> Iterator[Settings]:
    """A fresh migrated database and topic named after the test, dropped afterwards."""
    from solar_platform.stack.scratch import scratch_environment

    with scratch_environment(base, f"t_{label}_{uuid.uuid4().hex[:10]}") as settings:
        yield settings


@pytest.fixture
def fresh_settings(stack_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """A brand-new migrated database and a brand-new topic (RF 2) for one test."""
    label = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:16].strip("_") or "x"
    yield from isolated(stack_settings, label)


@pytest.fixture
def kafka_stack(fresh_settings: Settings) -> Settings:
    """Alias for tests that only need a fresh topic on the real cluster."""
    return fresh_settings
