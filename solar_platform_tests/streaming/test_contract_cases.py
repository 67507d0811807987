"""The pure parser (`contracts.parse_reading`) on every shared case: the spec both parsers follow."""

from __future__ import annotations

import pytest

from solar_platform.contracts import InvalidReading, parse_reading
from solar_platform_tests.streaming.cases import CASES, MALFORMED_CASES, VALID_CASES, Case


@pytest.mark.parametrize("case", VALID_CASES, ids=lambda case: case.name)
def test_valid_case_parses_to_expected_reading(case: Case) -> None:
    reading = parse_reading(case.payload, case.source_zone)
    assert reading == case.expected
    assert repr(reading.power_w) == repr(case.expected.power_w)  # type: ignore[union-attr]  # -0.0 vs 0.0


@pytest.mark.parametrize("case", MALFORMED_CASES, ids=lambda case: case.name)
def test_malformed_case_is_rejected_with_expected_reason(case: Case) -> None:
    with pytest.raises(InvalidReading) as rejected:
        parse_reading(case.payload, case.source_zone)
    assert rejected.value.reason == case.expected


def test_cases_cover_every_reject_reason() -> None:
    from solar_platform.contracts import INGEST_REJECT_REASONS, RejectReason

    # The clock rules' reasons are covered end to end (streaming/test_late_and_skewed_data.py).
    assert {case.expected for case in MALFORMED_CASES} == set(RejectReason) - INGEST_REJECT_REASONS
    assert len(CASES) == len(VALID_CASES) + len(MALFORMED_CASES)
