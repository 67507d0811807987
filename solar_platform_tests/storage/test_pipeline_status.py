"""The one staleness rule for the stream's heartbeat (API health, Dagster's sensor, alert suppression)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from solar_platform.settings import Settings
from solar_platform.storage.pipeline_status import heartbeat_age_seconds, heartbeat_is_stale

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_no_heartbeat_has_no_age_and_is_stale() -> None:
    assert heartbeat_age_seconds(None, NOW) is None
    assert heartbeat_is_stale(None, 60.0)


@pytest.mark.parametrize("now", [NOW, NOW.replace(tzinfo=None), NOW.astimezone(timezone(timedelta(hours=9)))],
                         ids=["aware_utc", "naive_utc", "aware_tokyo"])
def test_age_is_the_same_instant_whatever_the_zone_label(now: datetime) -> None:
    stored = (NOW - timedelta(seconds=42)).replace(tzinfo=None)  # DATETIME columns hold naive UTC
    assert heartbeat_age_seconds(stored, now) == 42.0


def test_a_heartbeat_ahead_of_the_clock_is_age_zero_not_negative() -> None:
    assert heartbeat_age_seconds(NOW + timedelta(seconds=5), NOW) == 0.0


def test_stale_only_beyond_the_limit() -> None:
    assert not heartbeat_is_stale(60.0, 60.0)
    assert heartbeat_is_stale(60.001, 60.0)


def test_the_limit_is_the_settings_one() -> None:
    # 12 triggers of 10 s, floored at 60 s: what every caller passes (`stream_stale_after_seconds`).
    settings = Settings(stream_trigger_seconds=10, stream_stale_after_triggers=12, stream_stale_min_seconds=60)
    assert settings.stream_stale_after_seconds == 120.0
    limit = settings.stream_stale_after_seconds
    assert not heartbeat_is_stale(heartbeat_age_seconds(NOW - timedelta(seconds=119), NOW), limit)
    assert heartbeat_is_stale(heartbeat_age_seconds(NOW - timedelta(seconds=121), NOW), limit)
