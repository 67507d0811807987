"""What handlers share: settings, the read-only engine and a clock, kept on the Flask app."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import Connection, Engine

from solar_platform.api.errors import ApiError
from solar_platform.contracts import format_timestamp
from solar_platform.settings import Settings

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


def iso(moment: datetime | None) -> str | None:
    """Naive-UTC column value -> `2024-05-01T12:00:05.000Z` (the contract's timestamp format)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_timestamp(moment)


def encode_cursor(value: str) -> str:
    """Opaque keyset cursor: base64url of the last key on the page."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad_request", "cursor is not one this API issued") from exc
    if not value:
        raise ApiError(400, "bad_request", "cursor is not one this API issued")
    return value


def decode_time_cursor(cursor: str) -> datetime:
    try:
        return datetime.fromisoformat(decode_cursor(cursor))
    except ValueError as exc:
        raise ApiError(400, "bad_request", "cursor is not one this API issued") from exc


def encode_time_cursor(moment: datetime) -> str:
    return encode_cursor(moment.isoformat(timespec="microseconds"))
