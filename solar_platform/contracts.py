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

Two entry points, one contract: `parse_reading` judges one payload; `parse_values` judges a whole
Arrow array of them (the stream's path). `parse_values` reads the compact form the fleet sends
(`CANONICAL_MESSAGE`) with vectorised Arrow kernels, and hands every other payload to
`parse_reading`, so nothing is judged by a second set of rules: the fast path only ever accepts
payloads whose outcome it provably shares with `parse_reading` (tested on every conformance case
and on generated ones).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import pyarrow as pa

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


# ------------------------------------------------------------------------------ a whole batch
REJECT_REASON = "reject_reason"
TIME_MICROS = "time_us"  # epoch microseconds (UTC) in `parse_values`' output

# The fleet's compact form (`Reading.to_message()` with `separators=(",", ":")`): keys in contract
# order, a plain decimal power (at most 15 integer and 9 fraction digits: every such string is a
# finite double, correctly rounded by both Python and Arrow; not a bare `-0`, which JSON reads as the
# integer 0 and Arrow as -0.0), status 0 or 1, and a `Z` timestamp
# with milliseconds. Such a payload is pure ASCII, so `json.loads` reads it as UTF-8 like Arrow.
_TAIL = f',"{STATUS}":0,"{TIME}":"2000-01-01T00:00:00.000Z"}}'  # the fixed-width end, for offsets
CANONICAL_MESSAGE = (
    rf'^\{{"{PANEL_ID}":"{PANEL_ID_PATTERN[1:-1]}","{POWER}":(?:(?:0|-?[1-9][0-9]{{0,14}})(?:\.[0-9]{{1,9}})?|-0\.[0-9]{{1,9}}),'
    rf'"{STATUS}":[01],"{TIME}":"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}\.[0-9]{{3}}Z"\}}$'
)
_HEAD_BYTES = len(f'{{"{PANEL_ID}":"')
_POWER_KEY = f'","{POWER}":'
_STATUS_AT = -(len(_TAIL) - len(f',"{STATUS}":'))  # offset from the end
_TIME_AT = -(len('2000-01-01T00:00:00.000Z"}'))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _days_from_civil(year, month, day):  # type: ignore[no-untyped-def]
    """Days since 1970-01-01 of proleptic Gregorian dates (numpy arrays; H. Hinnant's algorithm)."""
    year = year - (month <= 2)
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (month > 2) * -3 + (month <= 2) * 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _canonical_fields(values: pa.Array) -> tuple[pa.Array, pa.Array, object, object, object]:
    """(panel ids, power, status, epoch µs, valid date) of payloads that match `CANONICAL_MESSAGE`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    middle = pc.binary_slice(values, _HEAD_BYTES, -len(_TAIL))
    panel_and_power = pc.split_pattern(middle, _POWER_KEY, max_splits=1)
    panels = pc.cast(pc.list_element(panel_and_power, 0), pa.string())
    power = pc.cast(pc.cast(pc.list_element(panel_and_power, 1), pa.string()), pa.float64())
    status = pc.cast(pc.cast(pc.binary_slice(values, _STATUS_AT, _STATUS_AT + 1), pa.string()), pa.int8())
    stamp = pc.binary_slice(values, _TIME_AT, -2)

    def number(start: int, stop: int) -> object:
        digits = pc.cast(pc.binary_slice(stamp, start, stop), pa.string())
        return np.asarray(pc.cast(digits, pa.int64()))

    year, month, day = number(0, 4), number(5, 7), number(8, 10)
    hour, minute, second, milli = number(11, 13), number(14, 16), number(17, 19), number(20, 23)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (
        leap & (month == 2))
    # What `datetime.fromisoformat` accepts; anything else goes to `parse_reading` for its reason.
    valid = ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
             & (hour <= 23) & (minute <= 59) & (second <= 59))
    days = _days_from_civil(year, np.clip(month, 1, 12), day)
    micros = ((days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000 + milli) * 1_000
    return panels, power, np.asarray(status), micros, valid


def parse_values(values: pa.Array, source_zone: str = "UTC") -> pa.RecordBatch:
    """Every payload of `values` (binary or string; null = a tombstone) judged by the contract.

    Columns, row for row: `Panel_id` (string), `power_panel` (double), `current_status` (int8),
    `time_us` (int64 epoch microseconds, UTC, whole milliseconds) and `reject_reason` (null for a
    valid reading, else the `RejectReason` value, and the four fields null). The outcome of each
    row is exactly `parse_reading`'s.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = values.cast(pa.binary())
    count = len(values)
    canonical = np.asarray(pc.fill_null(pc.match_substring_regex(values, CANONICAL_MESSAGE), False),
                           dtype=bool)
    fast_rows = np.flatnonzero(canonical)
    panels, power, status, micros, valid = _canonical_fields(values.take(pa.array(fast_rows)))
    # Impossible dates (Feb 30, hour 24, ...) take the slow path, which names the reason.
    slow_rows = np.sort(np.concatenate([np.flatnonzero(~canonical), fast_rows[~valid]]))
    keep = pa.array(np.flatnonzero(valid))
    slow: dict[str, list[object]] = {PANEL_ID: [], POWER: [], STATUS: [], TIME_MICROS: [], REJECT_REASON: []}
    payloads = values.take(pa.array(slow_rows)).to_pylist() if slow_rows.size else []
    for payload in payloads:
        try:
            reading = parse_reading(payload, source_zone)
        except InvalidReading as rejected:
            for name in (PANEL_ID, POWER, STATUS, TIME_MICROS):
                slow[name].append(None)
            slow[REJECT_REASON].append(rejected.reason.value)
        else:
            slow[PANEL_ID].append(reading.panel_id)
            slow[POWER].append(reading.power_w)
            slow[STATUS].append(reading.status)
            slow[TIME_MICROS].append((reading.time_utc - _EPOCH) // _ONE_MICROSECOND)
            slow[REJECT_REASON].append(None)
    fast_count = len(keep)
    columns = {
        PANEL_ID: pa.concat_arrays([panels.take(keep), pa.array(slow[PANEL_ID], pa.string())]),
        POWER: pa.concat_arrays([power.take(keep), pa.array(slow[POWER], pa.float64())]),
        STATUS: pa.concat_arrays([pa.array(status).take(keep), pa.array(slow[STATUS], pa.int8())]),
        TIME_MICROS: pa.concat_arrays([pa.array(micros).take(keep), pa.array(slow[TIME_MICROS], pa.int64())]),
        REJECT_REASON: pa.concat_arrays([pa.nulls(fast_count, pa.string()),
                                         pa.array(slow[REJECT_REASON], pa.string())]),
    }
    # Back to the input's order: fast rows first, then slow ones, each ascending.
    origin = np.concatenate([fast_rows[valid], slow_rows])
    order = pa.array(np.argsort(origin, kind="stable"))
    assert len(origin) == count
    return pa.RecordBatch.from_arrays([array.take(order) for array in columns.values()], names=list(columns))

