"""The vectorised encoder: its output must parse with `contracts.parse_reading` to the same values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solar_platform.contracts import FIELDS, PANEL_ID, InvalidReading, Reading, RejectReason, parse_reading
from solar_platform.fleet.encoding import MessageEncoder, reference_message
from solar_platform.fleet.simulation import from_epoch_ms, simulate_readings, to_epoch_ms
from solar_platform_tests.fleet.support import fleet_settings

START = datetime(2024, 6, 1, 11, 40, tzinfo=UTC)
TIME_MS = to_epoch_ms(datetime(2024, 6, 1, 12, 0, 5, 250_000, tzinfo=UTC))

# Every number of integer digits, 0, the smallest step, and values that round up a digit.
AWKWARD_POWERS = [0.0, 0.001, 0.009, 0.01, 0.1, 1.0, 9.999, 10.0, 99.999, 100.0, 399.5, 479.999,
                  999.999, 1000.0, 123_456.789, 9_999_999.999, 0.0004, 9.9996]  # fmt: skip


def parsed(values: list[bytes]) -> list[Reading]:
    return [parse_reading(value) for value in values]


def test_round_trips_through_the_contract_parser() -> None:
    ids = [f"panel-{i:06d}" for i in range(len(AWKWARD_POWERS))]
    power = np.array(AWKWARD_POWERS)
    status = np.arange(len(ids)) % 2
    readings = parsed(MessageEncoder(ids).encode(power, status, TIME_MS))
    assert [r.panel_id for r in readings] == ids
    assert [r.power_w for r in readings] == (np.rint(power * 1000) / 1000).tolist()
    assert [r.status for r in readings] == status.tolist()
    assert {r.time_utc for r in readings} == {from_epoch_ms(TIME_MS)}


def test_values_are_plain_json_with_the_contract_fields_in_order() -> None:
    [value] = MessageEncoder(["panel-000042"]).encode(np.array([12.5]), np.array([1]), TIME_MS)
    assert value == (
        b'{"Panel_id":"panel-000042","power_panel":12.500,"current_status":1,"time_data":"2024-06-01T12:00:05.250Z"}'
    )
    assert tuple(json.loads(value)) == FIELDS


def test_agrees_with_json_dumps_of_the_contract_dict() -> None:
    ids = [f"panel-{i:06d}" for i in range(len(AWKWARD_POWERS))]
    power = np.rint(np.array(AWKWARD_POWERS) * 1000) / 1000
    status = (np.arange(len(ids)) + 1) % 2
    fast = MessageEncoder(ids).encode(power, status, TIME_MS)
    for value, panel_id, watts, state in zip(fast, ids, power.tolist(), status.tolist(), strict=True):
        by_the_book = reference_message(Reading(panel_id, watts, state, from_epoch_ms(TIME_MS)))
        assert parse_reading(value) == parse_reading(by_the_book)
        assert json.loads(value) == json.loads(by_the_book)


def test_ids_of_different_lengths_and_characters() -> None:
    ids = ["a", "site-7:row_2.panel-3", "panel-1000000", "panel-000001", "x" * 64, "0"]
    power = np.array([1.0, 22.22, 333.333, 0.0, 4444.5, 5.0])
    status = np.array([1, 1, 0, 0, 1, 1])
    encoder = MessageEncoder(ids)
    readings = parsed(encoder.encode(power, status, TIME_MS))
    assert [r.panel_id for r in readings] == ids
    assert [r.power_w for r in readings] == power.tolist()
    assert [r.status for r in readings] == status.tolist()
    assert encoder.keys == [panel_id.encode("utf-8") for panel_id in ids]


def test_ids_needing_json_escapes_are_still_valid_json_but_not_valid_ids() -> None:
    """The encoder writes any id as JSON; the contract then refuses the unsafe ones, as the stream would."""
    ids = ['quote"and\\slash', "café-☀", "tab\there"]
    values = MessageEncoder(ids).encode(np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0]), TIME_MS)
    assert [json.loads(value)[PANEL_ID] for value in values] == ids
    for value in values:
        with pytest.raises(InvalidReading) as rejected:
            parse_reading(value)
        assert rejected.value.reason == RejectReason.INVALID_PANEL_ID


def test_keys_are_the_utf8_panel_ids() -> None:
    assert MessageEncoder(["panel-000000", "panel-000001"]).keys == [b"panel-000000", b"panel-000001"]


def test_simulated_fleet_round_trips_cycle_by_cycle() -> None:
    settings = fleet_settings(offline_probability_pct=25.0)
    readings = simulate_readings(settings, start=START, end=START + timedelta(minutes=40), panels=100, seed=3)
    encoder = MessageEncoder(readings.panel_ids)
    for row, time_ms in enumerate(readings.times_ms.tolist()):
        decoded = parsed(encoder.encode(readings.power_w[row], readings.status[row], time_ms))
        assert [r.power_w for r in decoded] == readings.power_w[row].tolist()
        assert [r.status for r in decoded] == readings.status[row].tolist()
        assert {r.time_utc for r in decoded} == {from_epoch_ms(time_ms)}
        assert [r.panel_id for r in decoded] == readings.panel_ids


def test_empty_fleet_encodes_to_nothing() -> None:
    assert MessageEncoder([]).encode(np.array([]), np.array([]), TIME_MS) == []


@pytest.mark.parametrize(
    ("power", "status", "message"),
    [
        ([-0.5], [1], "negative"),
        ([1.0], [2], "0 or 1"),
        ([1.0, 2.0], [1], "expected 1"),
    ],
)
def test_rejects_values_the_contract_does_not_allow(power: list[float], status: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MessageEncoder(["p"]).encode(np.array(power), np.array(status), TIME_MS)
