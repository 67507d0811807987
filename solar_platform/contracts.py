"""The message contract: one panel reading on the Kafka topic, keyed by panel id.

`{"Panel_id": str, "power_panel": number, "current_status": 0|1, "time_data": timestamp}`

This module is pure (no Spark, no Kafka). The fleet builds messages with it, tests parse with it,
and the Spark job builds its column expressions from the same names, patterns and reasons, so
the two parsers cannot drift apart without the integration test noticing.

Accepted variants, all from the seed:
- numbers sent as strings (its offline rows send `"0"`);
- naive `YYYY-MM-DD HH:MM:SS[.ffffff]` timestamps (also with `T`), read in a configured zone;
- ISO 8601 timestamps with `Z` or a `+HH:MM` offset.
Everything is stored in UTC. A panel id, stripped, must match `PANEL_ID_PATTERN` (numbers sent as
ids become their JSON text first); anything else is dead-lettered as `invalid_panel_id`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

PANEL_ID = "Panel_id"
POWER = "power_panel"
STATUS = "current_status"
TIME = "time_data"
FIELDS = (PANEL_ID, POWER, STATUS, TIME)

PANEL_ID_MAX_LENGTH = 64
# A panel id, once surrounding whitespace is stripped: ASCII letters and digits, then up to 63 more
# of those or `.` `_` `:` `-`. So no quotes, backticks, `;`, `$`, `%`, `/`, `\`, whitespace, control
# characters or non-ASCII look-alikes: nothing SQL, a shell, a path or a template reads as syntax.
# One pattern for every reader: Python (`is_valid_panel_id`, which Spark runs too), the API's
# pydantic fields (Rust) and Grafana's variable filter (JavaScript). Python's `$` also matches
# before a final line break, so `is_valid_panel_id` checks that the match is the whole string.
PANEL_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._:-]{{0,{PANEL_ID_MAX_LENGTH - 1}}}$"
PANEL_ID_RULE = (f"1 to {PANEL_ID_MAX_LENGTH} characters: ASCII letters, digits, '.', '_', ':' or '-', "
                 "starting with a letter or digit")
VALID_STATUSES = (0, 1)

# A timestamp with an explicit zone; anything else is naive and read in the source zone.
ZONED_TIMESTAMP = r"(Z|[+-]\d{2}:?\d{2})$"
# The shape both parsers accept: date, 'T' or space, time, optional fraction, optional zone.
TIMESTAMP_SHAPE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$"
_ZONED = re.compile(ZONED_TIMESTAMP)
_SHAPE = re.compile(TIMESTAMP_SHAPE)
_PANEL_ID = re.compile(PANEL_ID_PATTERN)


def is_valid_panel_id(panel_id: object) -> bool:
    """True for a string that is a panel id as stored (already stripped): see `PANEL_ID_PATTERN`."""
    # fullmatch: Python's `$` would also match before a final newline.
    return isinstance(panel_id, str) and _PANEL_ID.fullmatch(panel_id) is not None


class RejectReason(StrEnum):
    """Why a message went to the dead-letter table instead of panelData."""

    INVALID_JSON = "invalid_json"
    MISSING_PANEL_ID = "missing_panel_id"
    INVALID_PANEL_ID = "invalid_panel_id"
    MISSING_POWER = "missing_power"
    INVALID_POWER = "invalid_power"
    MISSING_STATUS = "missing_status"
    INVALID_STATUS = "invalid_status"
    MISSING_TIME = "missing_time"
    INVALID_TIME = "invalid_time"
    # Ingest rules (streaming/sink.py), not the message shape: a clock too far ahead, or before the floor.
    TIME_IN_FUTURE = "time_in_future"
    TIME_OUT_OF_RANGE = "time_out_of_range"


# Judged at ingest against the platform's clock, not by the message parser (the stream's clock rules).
INGEST_REJECT_REASONS = frozenset({RejectReason.TIME_IN_FUTURE, RejectReason.TIME_OUT_OF_RANGE})


class InvalidReading(ValueError):
    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Reading:
    panel_id: str
    power_w: float
    status: int
    time_utc: datetime  # aware, UTC

    def to_message(self) -> dict[str, object]:
        return {
            PANEL_ID: self.panel_id,
            POWER: self.power_w,
            STATUS: self.status,
            TIME: format_timestamp(self.time_utc),
        }


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`: what the fleet sends."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
    except (ValueError, OverflowError):  # "abc", or an integer beyond a double's range
        return None
    return None


def parse_timestamp(text: str, source_zone: str = "UTC") -> datetime:
    """Parse a contract timestamp to an aware UTC datetime, truncated to milliseconds."""
    text = text.strip()
    if not _SHAPE.match(text):
        raise InvalidReading(RejectReason.INVALID_TIME, f"unrecognised timestamp {text!r}")
    date_part, _, rest = text.replace("T", " ").partition(" ")
    zone_match = _ZONED.search(rest)
    zone = zone_match.group(1) if zone_match else ""
    clock = rest[: len(rest) - len(zone)] if zone else rest
    if "." in clock:  # Python's fromisoformat takes at most 6 fraction digits
        whole, fraction = clock.split(".")
        clock = f"{whole}.{fraction[:6].ljust(6, '0')}"
    if zone == "Z":
        zone = "+00:00"
    elif zone and ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        moment = datetime.fromisoformat(f"{date_part} {clock}{zone}")
    except ValueError as exc:
        raise InvalidReading(RejectReason.INVALID_TIME, str(exc)) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(source_zone))
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01 00:00:00+01:00 falls before year 1 in UTC
        raise InvalidReading(RejectReason.INVALID_TIME, f"out of range: {text!r}") from exc
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_reading(payload: bytes | str | None, source_zone: str = "UTC") -> Reading:
    """Validate one raw Kafka value against the contract, or raise `InvalidReading`."""
    if payload is None:  # a Kafka record with a null value (a tombstone)
        raise InvalidReading(RejectReason.INVALID_JSON, "null value")
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidReading(RejectReason.INVALID_JSON, str(exc)) from exc
    if not isinstance(message, dict):
        raise InvalidReading(RejectReason.INVALID_JSON, "not a JSON object")

    panel_id = message.get(PANEL_ID)
    if panel_id is None:
        raise InvalidReading(RejectReason.MISSING_PANEL_ID)
    if isinstance(panel_id, int | float) and not isinstance(panel_id, bool):
        panel_id = json.dumps(panel_id)  # Spark reads a bare number's JSON text, so do we
    if not isinstance(panel_id, str):
        raise InvalidReading(RejectReason.INVALID_PANEL_ID, repr(panel_id))
    panel_id = panel_id.strip()  # surrounding whitespace is not part of the id; the rest must be safe
    if not is_valid_panel_id(panel_id):
        raise InvalidReading(RejectReason.INVALID_PANEL_ID, repr(panel_id))

    if message.get(POWER) is None:
        raise InvalidReading(RejectReason.MISSING_POWER)
    power = _number(message[POWER])
    if power is None or not math.isfinite(power):
        raise InvalidReading(RejectReason.INVALID_POWER, repr(message[POWER]))

    if message.get(STATUS) is None:
        raise InvalidReading(RejectReason.MISSING_STATUS)
    status = _number(message[STATUS])
    if status is None or status not in VALID_STATUSES:
        raise InvalidReading(RejectReason.INVALID_STATUS, repr(message[STATUS]))

    if message.get(TIME) is None:
        raise InvalidReading(RejectReason.MISSING_TIME)
    if not isinstance(message[TIME], str):
        raise InvalidReading(RejectReason.INVALID_TIME, repr(message[TIME]))
    moment = parse_timestamp(message[TIME], source_zone)

    return Reading(panel_id=panel_id, power_w=power, status=int(status), time_utc=moment)
