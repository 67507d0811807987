"""Poison, deterministically: hostile Kafka values (and keys) in the shapes the world sends.

`candidates(seed)` yields an endless, seeded stream of `(kind, key, value)`, cycling through the
kinds below. Whether a candidate is poison is not decided here: `expected_outcome` asks the contract
(`contracts.parse_reading`) and the stream's clock rules at test time, so the suite follows the
contract as it changes (e.g. a tighter panel-id charset). `poison_and_good` draws candidates until it
has exactly the number of rejects asked for; candidates the contract accepts (a negative power, an
id that is valid once stripped, an extra oversized field) are kept as good readings that must land.

Every candidate has a unique panel id or time, so no two accepted ones share a (panel, time) key.
Times are fixed (from 2024-06-01), so the same seed gives the same bytes on every run.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from solar_platform.contracts import (
    PANEL_ID,
    POWER,
    STATUS,
    TIME,
    InvalidReading,
    Reading,
    RejectReason,
    format_timestamp,
    parse_reading,
)
from solar_platform.settings import Settings

T0 = datetime(2024, 6, 1, tzinfo=UTC)
OVERSIZED_MESSAGE_BYTES = 700_000  # below the brokers' and producer's 1 MiB message limit

HOSTILE_IDS = (
    "' OR '1'='1", "x'; DROP TABLE panelData; --", '" OR ""="', "`whoami`", "$(reboot)", "${panel}",
    "${jndi:ldap://127.0.0.1/a}", "{{7*7}}", "%s%s%n", "../../etc/passwd", "a\nb", "a\r\nb", "panel\n",
    "a\x00b", "\x00", "\U0001f4a5", "panel-\U0001f4a5", "p\u00e1nel", "panel\u202e1", "panel 1", "", "   ", "\t",
    "<script>alert(1)</script>", "panel;1", "panel/1", "panel%00", "\ufeffpanel", "\u30fc", "-leading-dash",
    "_underscore", "panel\\1", "panel,1", "panel'1", 'panel"1', "\u00a0panel\u00a0", "B" * 65,
)
NON_JSON = (
    "hello", "{", "}", "{}}", "{'Panel_id': 'x'}", "undefined", "<xml/>", "Panel_id=1&power_panel=2", "", " ",
    '{"Panel_id": }', "nul", "tru", '{"a":1,}', "{\"Panel_id\" \"x\"}", "[", "\"unterminated", "0x10", "NaN x",
)
NON_OBJECTS = ("[1,2,3]", '"a string"', "42", "null", "true", "false", "[]", '""', "-0", "1e5", "[{}]")
BAD_STATUSES = (2, -1, 3, 0.5, 1.5, 255, "on", "off", "2", "true", "", " ", [0], {"v": 1}, True, False, "0x1")
WRONG_TYPES = (True, False, [], [1], {}, {"v": 1}, "", "abc")
BAD_TIMES = (
    "2024-13-45T99:99:99Z", "2024-02-30T00:00:00Z", "yesterday", "", "2024-06-01", "12:00:00",
    "2024-06-01T12:00:00+25:00", "2024-06-01T24:00:00Z", "2024-06-01T12:00:60Z", "2024-06-01T12:00:00.1234567890Z",
    "\uff12\uff10\uff12\uff14-06-01T12:00:00Z", "+002024-06-01T12:00:00Z", "2024/06/01 12:00:00",
    "0000-01-01T00:00:00Z", "1717243200", "2024-06-01T12:00:00ZZ", "2024-06-01T12:00:00 UTC", "2024-06-01t12:00:00z",
)
FAR_FUTURE_TIMES = ("2099-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "3024-06-01 12:00:00",
                    "2199-06-01T12:00:00+14:00")
ANCIENT_TIMES = ("1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59.999Z", "1900-06-01 12:00:00")


@dataclass(frozen=True, slots=True)
class Candidate:
    kind: str
    key: bytes | None
    value: bytes | None


def _stamp(index: int) -> str:
    return format_timestamp(T0 + timedelta(seconds=index))


def _message(index: int, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {PANEL_ID: f"poison-{index}", POWER: round(100 + index % 300 + 0.125, 3), STATUS: 1,
                               TIME: _stamp(index)}
    body.update(fields)
    return body


def _dumps(body: dict[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _with_literal(index: int, field: str, literal: str) -> bytes:
    """A message whose `field` holds a raw JSON literal json.dumps would not write (NaN, 1e400, ...)."""
    marker = "\u0001literal\u0001"
    return _dumps(_message(index, **{field: marker})).replace(json.dumps(marker).encode(), literal.encode())


def _hostile_key(rng: random.Random, index: int) -> bytes | None:
    choice = rng.randrange(8)
    if choice == 0:
        return None
    if choice == 1:
        return ("K" * 10_000).encode()  # dead_letters keeps the first 1,024 bytes
    if choice == 2:
        return rng.choice(HOSTILE_IDS).encode("utf-8")
    if choice == 3:
        return rng.randbytes(rng.randrange(1, 64))
    return f"poison-{index}".encode()


def _non_json(rng: random.Random, index: int) -> bytes:
    if rng.random() < 0.3:
        return "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(1, 80))).encode()
    return rng.choice(NON_JSON).encode()


def _truncated(rng: random.Random, index: int) -> bytes:
    whole = _dumps(_message(index))
    return whole[: rng.randrange(1, len(whole))]


def _wrong_type(rng: random.Random, index: int) -> bytes:
    field = rng.choice((PANEL_ID, POWER, STATUS, TIME))
    value = rng.choice((*WRONG_TYPES, 1717243200, 12.5) if field == TIME else WRONG_TYPES)
    return _dumps(_message(index, **{field: value}))


def _non_finite(rng: random.Random, index: int) -> bytes:
    return _with_literal(index, rng.choice((POWER, STATUS)), rng.choice(("NaN", "Infinity", "-Infinity")))


def _huge_number(rng: random.Random, index: int) -> bytes:
    literal = rng.choice(("1e400", "-1e400", "1" + "0" * rng.randrange(309, 400), "1.7976931348623159e308",
                          "123456789012345678901234567890", "1e308", "-1e308", "4.9e-324"))
    return _with_literal(index, rng.choice((POWER, STATUS)), literal)


def _negative_power(rng: random.Random, index: int) -> bytes:
    return _dumps(_message(index, **{POWER: -round(rng.uniform(0.001, 1e6), 3)}))


def _bad_status(rng: random.Random, index: int) -> bytes:
    return _dumps(_message(index, **{STATUS: rng.choice(BAD_STATUSES)}))


def _missing(rng: random.Random, index: int) -> bytes:
    body = _message(index)
    for field in rng.sample((PANEL_ID, POWER, STATUS, TIME), rng.randrange(1, 5)):
        if rng.random() < 0.5:
            del body[field]
        else:
            body[field] = None
    return _dumps(body)


def _bad_time(rng: random.Random, index: int) -> bytes:
    group = rng.randrange(3)
    times = BAD_TIMES if group == 0 else FAR_FUTURE_TIMES if group == 1 else ANCIENT_TIMES
    return _dumps(_message(index, **{TIME: rng.choice(times)}))


def _hostile_panel(rng: random.Random, index: int) -> bytes:
    choice = rng.randrange(10)
    if choice == 0:
        panel_id = "A" * 10_000  # a 10 kB id
    elif choice == 1:
        panel_id = f"{rng.choice(HOSTILE_IDS)}{index}"
    elif choice == 2:
        panel_id = f"  poison-{index}\t"  # valid once stripped: a good reading
    elif choice == 3:
        return _with_literal(index, PANEL_ID, str(10 ** rng.randrange(64, 120)))  # a long integer id
    else:
        panel_id = rng.choice(HOSTILE_IDS)
    return _dumps(_message(index, **{PANEL_ID: panel_id}))


def _oversized_field(rng: random.Random, index: int) -> bytes:
    size = rng.randrange(10_000, 50_000)
    choice = rng.randrange(4)
    if choice == 0:
        return _dumps(_message(index, **{PANEL_ID: "x" * size}))
    if choice == 1:
        return _dumps(_message(index, **{TIME: "9" * size}))
    if choice == 2:
        return _dumps(_message(index, **{STATUS: "1" * size}))
    return _dumps(_message(index, note="n" * size))  # an unknown field: ignored, the reading is good


def _binary(rng: random.Random, index: int) -> bytes:
    return rng.randbytes(rng.randrange(1, 2_000))


def _not_object(rng: random.Random, index: int) -> bytes:
    if rng.random() < 0.3:
        return b"[" + _dumps(_message(index)) + b"]"
    return rng.choice(NON_OBJECTS).encode()


def _bad_utf8(rng: random.Random, index: int) -> bytes:
    return _dumps(_message(index)).replace(b"poison-", b"poison-\xff\xfe" if rng.random() < 0.5 else b"\xc3\x28")


def _trailing(rng: random.Random, index: int) -> bytes:
    return _dumps(_message(index)) + rng.choice((b" x", b"}", b"]", b",{}", b"{}", b"\x00", b" // comment"))


def _duplicate_keys(rng: random.Random, index: int) -> bytes:
    last = rng.choice((*HOSTILE_IDS[:8], f"poison-dup-{index}"))
    return _dumps(_message(index)).replace(b"{", b'{"Panel_id": ' + json.dumps(f"first-{index}").encode() + b", ", 1) \
        .replace(json.dumps(f"poison-{index}").encode(), json.dumps(last).encode())


GENERATORS: dict[str, Callable[[random.Random, int], bytes]] = {
    "non_json": _non_json, "truncated": _truncated, "wrong_type": _wrong_type, "non_finite": _non_finite,
    "huge_number": _huge_number, "negative_power": _negative_power, "bad_status": _bad_status,
    "missing_field": _missing, "bad_time": _bad_time, "hostile_panel_id": _hostile_panel,
    "oversized_field": _oversized_field, "binary": _binary, "not_an_object": _not_object, "bad_utf8": _bad_utf8,
    "trailing_garbage": _trailing, "duplicate_keys": _duplicate_keys,
}


def candidates(seed: int) -> Iterator[Candidate]:
    """Endless, seeded: the kinds in turn, then one oversized message and a tombstone now and then."""
    rng = random.Random(seed)
    kinds = list(GENERATORS)
    index = 0
    while True:
        if index == 5:
            body = _message(index, **{PANEL_ID: "o" * OVERSIZED_MESSAGE_BYTES})
            yield Candidate("oversized_message", f"poison-{index}".encode(), _dumps(body))
        elif index % 997 == 0:
            yield Candidate("tombstone", f"poison-{index}".encode(), None)
        else:
            kind = kinds[index % len(kinds)]
            yield Candidate(kind, _hostile_key(rng, index), GENERATORS[kind](rng, index))
        index += 1


def expected_outcome(value: bytes | None, settings: Settings, now: datetime) -> Reading | str:
    """What the stream must do with `value`: the reading it lands, or the reason it dead-letters it.

    The contract parser decides the shape; the clock rules (streaming/job.py) judge the time against
    the ingest clock, which is later than `now`: only times far from both edges are generated.
    """
    try:
        reading = parse_reading(value, settings.source_timezone)
    except InvalidReading as exc:
        return exc.reason.value
    if reading.time_utc > now + timedelta(seconds=settings.max_clock_skew_seconds):
        return RejectReason.TIME_IN_FUTURE.value
    if reading.time_utc < settings.min_reading_time:
        return RejectReason.TIME_OUT_OF_RANGE.value
    return reading


def good_readings(count: int, *, start_index: int = 1_000_000) -> list[Candidate]:
    """Plain fleet readings: 100 panels, every 5 s (times after the poison's)."""
    panels = 100
    out = []
    for n in range(count):
        reading = Reading(f"good-{n % panels:03d}", round(50 + n % 350 + 0.5, 3), 0 if n % 7 == 0 else 1,
                          T0 + timedelta(seconds=start_index + 5 * (n // panels)))
        message = {PANEL_ID: reading.panel_id, POWER: reading.power_w, STATUS: int(reading.status),
                   TIME: format_timestamp(reading.time_utc)}
        out.append(Candidate("good", reading.panel_id.encode(), json.dumps(message).encode()))
    return out


def poison_and_good(seed: int, poison: int, settings: Settings, now: datetime
                    ) -> tuple[list[tuple[Candidate, str]], list[tuple[Candidate, Reading]]]:
    """Exactly `poison` rejected candidates (with their reasons) and the accepted ones (with their readings)."""
    rejected: list[tuple[Candidate, str]] = []
    accepted: list[tuple[Candidate, Reading]] = []
    for candidate in candidates(seed):
        outcome = expected_outcome(candidate.value, settings, now)
        if isinstance(outcome, Reading):
            accepted.append((candidate, outcome))
        else:
            rejected.append((candidate, outcome))
            if len(rejected) == poison:
                return rejected, accepted
    raise AssertionError("unreachable")
