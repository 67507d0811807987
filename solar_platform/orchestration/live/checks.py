"""Asset checks on the live tables: freshness, completeness, duplicates, physical bounds,
dead-letter rate and stream lag. Each reports its figures as metadata, and each reads a bounded
window or an index seek (never a count of a whole table). Their thresholds are settings
(SOLAR_CHECK_*).

They run with every observation of the live tables (job `observe_live_tables`). The rollups'
own checks (numpy recompute, peak bounds, completeness) are declared on the rollup assets and
block the fleet rollup when they fail.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.ingestion.stream_lag import stream_lag_figures
from solar_platform.orchestration.resources import KafkaResource, SolarSettingsResource
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.health import quality
from solar_platform.storage.pipeline_status import live_table_status
from solar_platform.storage.windows import WINDOW_SECONDS


def _since(minutes: float) -> datetime:
    """UTC, naive as stored: `minutes` before the wall clock."""
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=minutes)


def _freshness(settings: Settings, table: str, max_lag: float) -> dg.AssetCheckResult:
    """The newest event time vs the wall clock: one index seek and the engine's row estimate."""
    with db.engine(settings).connect() as conn:
        status = live_table_status(conn, table)
    newest, lag = status.newest_event_time, status.lag_seconds(datetime.now(UTC))
    passed = lag is not None and lag <= max_lag
    return dg.AssetCheckResult(passed=passed, metadata={
        "newest_event_time": newest.replace(tzinfo=UTC).isoformat() if newest else "none",
        "lag_seconds": round(lag, 3) if lag is not None else -1.0,
        "max_lag_seconds": max_lag, "rows_estimate": status.rows_estimate})


@dg.asset_check(asset=keys.PANEL_DATA, name="fresh", description="The newest reading is at most "
                "SOLAR_CHECK_FRESHNESS_MAX_LAG_SECONDS old (wall clock).")
def panel_data_fresh(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    return _freshness(settings, db.READINGS, settings.check_freshness_max_lag_seconds)


@dg.asset_check(asset=keys.PANEL_DATA_AGG, name="fresh", description="The newest window closed at most "
                "freshness limit + one window ago (windows are written in the readings' own batch).")
def panel_data_agg_fresh(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    return _freshness(settings, db.WINDOWS, settings.check_freshness_max_lag_seconds + WINDOW_SECONDS)


@dg.asset_check(asset=keys.PANEL_DATA, name="complete", description="Readings per panel in the last window vs "
                "the configured cadence (window / interval); the median panel must reach "
                "SOLAR_CHECK_COMPLETENESS_MIN_SHARE.")
def panel_data_complete(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    min_share = settings.check_completeness_min_share
    with db.engine(settings).connect() as conn:
        figures = quality.completeness(conn, window=timedelta(minutes=settings.check_completeness_window_minutes),
                                       interval_seconds=settings.interval_seconds, min_share=min_share)
    passed = figures["panels"] > 0 and figures["median_share"] >= min_share
    return dg.AssetCheckResult(passed=passed, metadata={**figures, "min_share_required": min_share})


@dg.asset_check(asset=keys.PANEL_DATA, name="no_duplicate_readings", description="At most one reading per panel "
                "per interval tick in the recent window: the (panel, time) key stops exact replays, this catches "
                "re-stamped duplicates it cannot.")
def panel_data_no_duplicates(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    with db.engine(settings).connect() as conn:
        figures = quality.readings_per_tick_duplicates(conn, since=_since(settings.check_recent_window_minutes),
                                                       interval_seconds=settings.interval_seconds)
    return dg.AssetCheckResult(passed=figures["duplicate_groups"] == 0, metadata=figures)


@dg.asset_check(asset=keys.PANEL_DATA, name="power_within_bounds", description="0 <= power <= "
                "SOLAR_HEALTH_OVER_RANGE_FACTOR (1.25) x the panel's registered Pmax (table `panels`) for recent "
                "readings.")
def panel_data_power_bounds(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    tolerance = settings.health_over_range_factor
    since = _since(settings.check_recent_window_minutes)
    with db.engine(settings).connect() as conn:
        figures = quality.power_out_of_bounds(conn, since=since, tolerance=tolerance)
    return dg.AssetCheckResult(passed=figures["negative"] == 0 and figures["above_limit"] == 0,
                               metadata={**figures, "tolerance_x_pmax": tolerance})


@dg.asset_check(asset=keys.PANEL_DATA, name="dead_letter_rate", description="Share of messages the stream dead-"
                "lettered over the recent window stays below SOLAR_CHECK_DEAD_LETTER_MAX_RATE.")
def dead_letter_rate(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    with db.engine(settings).connect() as conn:
        figures = quality.dead_letter_rate(conn, since=_since(settings.check_dead_letter_window_minutes))
    max_rate = settings.check_dead_letter_max_rate
    return dg.AssetCheckResult(passed=figures["rate"] <= max_rate, metadata={**figures, "max_rate": max_rate})


@dg.asset_check(asset=keys.PANEL_DATA, name="stream_lag", description="Messages on the topic the stream has not "
                "committed yet: Kafka end offsets (kafka-python) minus the offsets of the last committed batch "
                "in the Spark checkpoint, in seconds of fleet output.")
def stream_lag(solar: SolarSettingsResource, kafka: KafkaResource) -> dg.AssetCheckResult:
    settings = solar.get()
    figures = stream_lag_figures(settings, kafka)
    max_seconds = settings.check_stream_lag_max_seconds
    return dg.AssetCheckResult(passed=figures["seconds_behind"] <= max_seconds,
                               metadata={**figures, "max_seconds": max_seconds})


live_checks = [panel_data_fresh, panel_data_agg_fresh, panel_data_complete, panel_data_no_duplicates,
               panel_data_power_bounds, dead_letter_rate, stream_lag]
