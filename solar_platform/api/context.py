"""What handlers share: settings, the read-only engine and a clock, kept on the Flask app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import Connection, Engine

from solar_platform.api.errors import ApiError
from solar_platform.settings import Settings
from solar_platform.storage import queries

EXTENSION = "solar_platform"


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    engine: Engine
    clock: Callable[[], datetime]

    def now(self) -> datetime:
        """Naive UTC now, comparable with the DATETIME columns."""
        return self.clock().astimezone(UTC).replace(tzinfo=None)


def api_context() -> ApiContext:
    return current_app.extensions[EXTENSION]


@contextmanager
def read_connection() -> Iterator[Connection]:
    with api_context().engine.connect() as conn:
        yield conn


def require_panel(conn: Connection, panel_id: str) -> None:
    """404 for a panel neither registered nor ever seen."""
    if not queries.panel_exists(conn, panel_id):
        raise ApiError(404, "not_found", f"unknown panel {panel_id!r}")
