"""`contracts.parse_values` (a whole Arrow array at once) agrees with `contracts.parse_reading` row for row.

The batch parser reads the fleet's compact form with Arrow kernels and hands everything else to
`parse_reading`; these tests hold it to the same outcome on every conformance case and on payloads
generated around the fast path's edges (numbers, dates, ids, spacing, key order).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from solar_platform.contracts import (
    CANONICAL_MESSAGE,
    PANEL_ID,
    POWER,
    REJECT_REASON,
    STATUS,
    TIME,
    TIME_MICROS,
    InvalidReading,
    parse_reading,
    parse_values,
)
from solar_platform_tests.streaming.cases import CASES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _one_by_one(payloads: list[bytes | None], zone: str) -> list[tuple[object, ...]]:
    outcomes: list[tuple[object, ...]] = []
    for payload in payloads:
        try:
            reading = parse_reading(payload, zone)
        except InvalidReading as rejected:
            outcomes.append(("reject", rejected.reason.value))
        else:
            micros = (reading.time_utc - EPOCH).days * 86_400_000_000 + (reading.time_utc - EPOCH).seconds * 1_000_000 \
                + (reading.time_utc - EPOCH).microseconds
            outcomes.append((reading.panel_id, repr(reading.power_w), reading.status, micros))
    return outcomes


def _batched(payloads: list[bytes | None], zone: str) -> list[tuple[object, ...]]:
    batch = parse_values(pa.array(payloads, pa.binary()), zone).to_pydict()
    outcomes: list[tuple[object, ...]] = []
    for i in range(len(payloads)):
        if batch[REJECT_REASON][i] is not None:
            outcomes.append(("reject", batch[REJECT_REASON][i]))
        else:
            outcomes.append((batch[PANEL_ID][i], repr(batch[POWER][i]), batch[STATUS][i], batch[TIME_MICROS][i]))
    return outcomes


def _assert_agree(payloads: list[bytes | None], zone: str = "UTC") -> None:
    expected, got = _one_by_one(payloads, zone), _batched(payloads, zone)
    mismatches = [(p, e, g) for p, e, g in zip(payloads, expected, got, strict=True) if e != g]
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize("zone", sorted({case.source_zone for case in CASES}))
def test_every_conformance_case_agrees(zone: str) -> None:
    _assert_agree([case.payload for case in CASES if case.source_zone == zone], zone)


def _compact(panel: str, power: str, status: str, stamp: str) -> bytes:
    return (f'{{"{PANEL_ID}":"{panel}","{POWER}":{power},"{STATUS}":{status},"{TIME}":"{stamp}"}}').encode()


def test_the_fleets_messages_take_the_fast_path() -> None:
    import re

    from solar_platform.contracts import Reading

    message = json.dumps(Reading("panel-000001", 123.456, 1, datetime(2026, 12, 3, 8, 0, 0, 123000, UTC))
                         .to_message(), separators=(",", ":")).encode()
    assert re.fullmatch(CANONICAL_MESSAGE.strip("^$"), message.decode())
    _assert_agree([message])


def test_generated_payloads_around_the_fast_paths_edges() -> None:
    rng = random.Random(20261203)
    powers = ["0", "-0", "0.0", "-0.000", "1", "400.5", "123.456", "999999999999999", "999999999999999.999999999",
              "0.1", "0.30000000000000004", "1e3", "01", "1.", ".5", "+1", "1.0000000001", "-12.25", "9007199254740993",
              "2.2250738585072014e-308", "\"12.5\"", "NaN", "null"]
    stamps = ["2026-12-03T08:00:00.123Z", "2024-02-29T23:59:59.999Z", "2023-02-29T00:00:00.000Z",
              "2026-13-01T00:00:00.000Z", "2026-00-10T00:00:00.000Z", "2026-12-32T00:00:00.000Z",
              "2026-04-31T00:00:00.000Z", "2026-12-03T24:00:00.000Z", "2026-12-03T23:60:00.000Z",
              "2026-12-03T23:59:60.000Z", "0000-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z",
              "9999-12-31T23:59:59.999Z", "1900-02-29T00:00:00.000Z", "2000-02-29T12:00:00.000Z",
              "2026-12-03T08:00:00Z", "2026-12-03 08:00:00.000Z", "2026-12-03T08:00:00.123456Z",
              "2026-12-03T08:00:00.123+00:00", "2026-12-03T08:00:00.123"]
    panels = ["panel-000001", "p", "P-a", "site-7:row_2.panel-3", "x" * 64, "x" * 65, "-bad", " panel-1",
              "panel 1", "pänel", "a\\\"b"]
    payloads: list[bytes | None] = [None, b"", b"{}", b"[]"]
    for _ in range(3000):
        payloads.append(_compact(rng.choice(panels), rng.choice(powers), rng.choice(["0", "1", "2", "1.0", "\"1\""]),
                                 rng.choice(stamps)))
    # Valid JSON that is not the compact form: spacing, key order, a trailing newline.
    payloads += [json.dumps({PANEL_ID: "p-1", POWER: 1.5, STATUS: 1, TIME: "2026-12-03T08:00:00.000Z"}).encode(),
                 json.dumps({TIME: "2026-12-03T08:00:00.000Z", STATUS: 0, POWER: 0, PANEL_ID: "p-1"}).encode(),
                 _compact("p-1", "1.5", "1", "2026-12-03T08:00:00.000Z") + b"\n",
                 _compact("p-1", "1.5", "1", "2026-12-03T08:00:00.000Z")[:-1] + b',"extra":1}']
    _assert_agree(payloads)
    _assert_agree(payloads, "Europe/Madrid")


def test_decimal_powers_round_like_python() -> None:
    rng = random.Random(7)
    payloads = []
    for _ in range(20_000):
        whole = str(rng.randrange(0, 10 ** rng.randrange(1, 16)))
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 10)))
        power = whole + ("." + fraction if fraction else "")
        payloads.append(_compact("p-1", power, "1", "2026-12-03T08:00:00.000Z"))
    _assert_agree(payloads)


def test_output_columns_and_types() -> None:
    batch = parse_values(pa.array([_compact("p-1", "2.5", "0", "2026-12-03T08:00:00.007Z"), b"nope"]))
    assert batch.schema.names == [PANEL_ID, POWER, STATUS, TIME_MICROS, REJECT_REASON]
    assert [str(field.type) for field in batch.schema] == ["string", "double", "int8", "int64", "string"]
    assert batch.to_pylist() == [
        {PANEL_ID: "p-1", POWER: 2.5, STATUS: 0, TIME_MICROS: 1_796_284_800_007_000, REJECT_REASON: None},
        {PANEL_ID: None, POWER: None, STATUS: None, TIME_MICROS: None, REJECT_REASON: "invalid_json"},
    ]
    assert parse_values(pa.array([], pa.binary())).num_rows == 0
