"""Inputs that once made the pure parser raise instead of rejecting: each now gets its reason."""

import pytest

from solar_platform.contracts import InvalidReading, RejectReason, parse_reading

_OK = '"Panel_id": "p", "current_status": 1'


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, RejectReason.INVALID_JSON),  # Kafka tombstone
        ("[" * 100_000 + "]" * 100_000, RejectReason.INVALID_JSON),  # nesting past the recursion limit
        ("{" + _OK + ', "power_panel": 1' + "0" * 400 + ', "time_data": "2026-01-01 00:00:00"}',
         RejectReason.INVALID_POWER),  # integer beyond a double
        ("{" + _OK + ', "power_panel": 1, "time_data": "0001-01-01 00:00:00+01:00"}',
         RejectReason.INVALID_TIME),  # before year 1 once in UTC
    ],
)
def test_edge_inputs_are_rejected_not_raised(payload, reason):
    with pytest.raises(InvalidReading) as caught:
        parse_reading(payload)
    assert caught.value.reason is reason
