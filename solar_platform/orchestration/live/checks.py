"""Asset checks on the live tables: freshness, completeness, excess readings, physical bounds,
dead-letter rate and stream lag. Each reports its figures as metadata, and each reads an index seek
or what the stream keeps for a bounded window (15-min buckets, progress rows), never raw readings:
one row per panel and bucket at most. Their thresholds are settings (SOLAR_CHECK_*).

The buckets judged are the newest complete ones before the pipeline's frontier (what the stream
has committed), so a stream running behind is judged on what it wrote, not on the minutes it has
not reached yet.

They run with every observation of the live tables (job `observe_live_tables`). The rollups'
own checks (numpy recompute, peak bounds, completeness) are declared on the rollup assets and
block the fleet rollup when they fail.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import Connection

from solar_platform.orchestration import keys
from solar_platform.orchestration.ingestion.stream_lag import stream_lag_figures
from solar_platform.orchestration.resources import KafkaResource, SolarSettingsResource
from solar_platform.settings import Settings
from solar_platform.storage import db, pipeline_status
from solar_platform.storage.health import quality
from solar_platform.storage.pipeline_status import live_table_status
from solar_platform.storage.stream import offsets
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


def _judged_buckets(settings: Settings, conn: Connection, minutes: float) -> tuple[datetime, datetime]:
    """The newest complete buckets before the pipeline's frontier (or the clock, without one)."""
    now = datetime.now(UTC)
    frontier = pipeline_status.frontier(conn, now, timedelta(minutes=settings.health_lookback_minutes))
    return quality.complete_buckets(frontier or now.replace(tzinfo=None), minutes)


@dg.asset_check(asset=keys.PANEL_DATA, name="complete", description="Readings per panel in the newest complete "
                "15-min buckets (at least SOLAR_CHECK_COMPLETENESS_WINDOW_MINUTES) vs the configured cadence; the "
                "median panel must reach SOLAR_CHECK_COMPLETENESS_MIN_SHARE.")
def panel_data_complete(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    min_share = settings.check_completeness_min_share
    with db.engine(settings).connect() as conn:
        start, end = _judged_buckets(settings, conn, settings.check_completeness_window_minutes)
        figures = quality.delivery(conn, start=start, end=end, interval_seconds=settings.interval_seconds,
                                   min_share=min_share)
    passed = figures["panels"] > 0 and figures["median_share"] >= min_share
    return dg.AssetCheckResult(passed=passed, metadata={**figures, "min_share_required": min_share})


@dg.asset_check(asset=keys.PANEL_DATA, name="no_excess_readings", description="No panel sent more readings than "
                "the cadence allows in the newest complete 15-min buckets: the (panel, time) key stops exact "
                "repeats, this catches a reading sent again with another time (a re-stamped duplicate).")
def panel_data_no_excess(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    with db.engine(settings).connect() as conn:
        start, end = _judged_buckets(settings, conn, settings.check_completeness_window_minutes)
        figures = quality.delivery(conn, start=start, end=end, interval_seconds=settings.interval_seconds,
                                   min_share=settings.check_completeness_min_share)
    return dg.AssetCheckResult(passed=figures["panels_above_expected"] == 0, metadata={
        key: figures[key] for key in ("panels", "window_start", "window_end", "expected_per_panel",
                                      "panels_above_expected")})


@dg.asset_check(asset=keys.PANEL_DATA, name="power_within_bounds", description="0 <= power <= "
                "SOLAR_HEALTH_OVER_RANGE_FACTOR (1.25) x the panel's registered Pmax (table `panels`) in the newest "
                "complete 15-min buckets of SOLAR_CHECK_RECENT_WINDOW_MINUTES (their lowest and peak readings).")
def panel_data_power_bounds(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    tolerance = settings.health_over_range_factor
    with db.engine(settings).connect() as conn:
        start, end = _judged_buckets(settings, conn, settings.check_recent_window_minutes)
        figures = quality.power_out_of_bounds(conn, start=start, end=end, tolerance=tolerance)
    return dg.AssetCheckResult(passed=figures["negative"] == 0 and figures["above_limit"] == 0,
                               metadata={**figures, "tolerance_x_pmax": tolerance, "window_start": start.isoformat(),
                                         "window_end": end.isoformat()})


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


@dg.asset_check(asset=keys.PANEL_DATA, name="no_lost_offsets", description="No Kafka records were deleted by the "
                "topic's retention before the stream read them within SOLAR_CHECK_LOST_OFFSETS_WINDOW_HOURS (the "
                "stream records each such gap in lost_offsets: partition, offsets, when they were published).")
def no_lost_offsets(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    hours = settings.check_lost_offsets_window_hours
    with db.engine(settings).connect() as conn:  # a range of the detected_at index, and the newest rows
        summary = offsets.lost_offsets_summary(conn, since=_since(hours * 60), limit=20)
    gaps = [{"topic": gap.topic, "partition": gap.partition, "first_offset": gap.first_offset,
             "last_offset": gap.last_offset, "records": gap.records,
             "published_after": gap.published_after.isoformat() if gap.published_after else None,
             "published_before": gap.published_before.isoformat() if gap.published_before else None,
             "detected_at": gap.detected_at.isoformat()} for gap in summary.newest]
    description = None if not summary.gaps else (
        f"{summary.records} Kafka records in {summary.gaps} gap(s) were deleted by retention before the stream read "
        "them (the stream was down longer than the topic keeps records); they are not in panelData.")
    return dg.AssetCheckResult(passed=summary.gaps == 0, severity=dg.AssetCheckSeverity.ERROR,
                               description=description,
                               metadata={"gaps": summary.gaps, "records_lost": summary.records, "window_hours": hours,
                                         "newest_gaps": dg.MetadataValue.json(gaps)})


live_checks = [panel_data_fresh, panel_data_agg_fresh, panel_data_complete, panel_data_no_excess,
               panel_data_power_bounds, dead_letter_rate, stream_lag, no_lost_offsets]
