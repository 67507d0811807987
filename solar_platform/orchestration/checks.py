"""Asset checks on the live tables: freshness, completeness, duplicates, physical bounds,
dead-letter rate and stream lag. Each reports its figures as metadata, and each reads a bounded
window or an index seek (never a count of a whole table).

They run with every observation of the live tables (job `observe_live_tables`). The rollups'
own checks (numpy recompute, peak bounds, completeness) are declared on the rollup assets and
block the fleet rollup when they fail.
"""


import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from sqlalchemy import text

from solar_platform.orchestration.assets.live import PANEL_DATA, PANEL_DATA_AGG
from solar_platform.orchestration.resources import KafkaResource, MonitoringResource, SolarSettingsResource
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage import health as h
from solar_platform.storage.energy import WINDOW_SECONDS
from solar_platform.storage.retention import estimated_rows


def _now_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _freshness(settings: Settings, table: str, column: str, max_lag: float, shift_seconds: float = 0.0
               ) -> dg.AssetCheckResult:
    """Newest `column` (+ `shift_seconds`) vs the wall clock: one index seek and the engine's row
    estimate, never a count of the table."""
    with db.engine(settings).connect() as conn:
        newest = conn.execute(text(f"SELECT MAX({column}) FROM {table}")).scalar()
        estimate = estimated_rows(conn, table)
    if newest is not None:
        newest = newest + timedelta(seconds=shift_seconds)
    lag = None if newest is None else datetime.now(UTC).timestamp() - newest.replace(tzinfo=UTC).timestamp()
    passed = lag is not None and lag <= max_lag
    return dg.AssetCheckResult(passed=passed, metadata={
        "newest_event_time": newest.replace(tzinfo=UTC).isoformat() if newest else "none",
        "lag_seconds": round(lag, 3) if lag is not None else -1.0,
        "max_lag_seconds": max_lag, "rows_estimate": estimate})


@dg.asset_check(asset=PANEL_DATA, name="fresh", description="The newest reading is at most "
                "`freshness_max_lag_seconds` old (wall clock).")
def panel_data_fresh(solar: SolarSettingsResource, monitoring: MonitoringResource) -> dg.AssetCheckResult:
    return _freshness(solar.get(), "panelData", "time_data", monitoring.freshness_max_lag_seconds)


@dg.asset_check(asset=PANEL_DATA_AGG, name="fresh", description="The newest window closed at most "
                "freshness limit + one window ago (windows are written in the readings' own batch).")
def panel_data_agg_fresh(solar: SolarSettingsResource, monitoring: MonitoringResource) -> dg.AssetCheckResult:
    settings = solar.get()
    limit = monitoring.freshness_max_lag_seconds + WINDOW_SECONDS
    # window_start is indexed (window_end is not): the newest window ends one window after it
    return _freshness(settings, "panelDataAgg", "window_start", limit, shift_seconds=WINDOW_SECONDS)


@dg.asset_check(asset=PANEL_DATA, name="complete", description="Readings per panel in the last window vs the "
                "configured cadence (window / interval); the median panel must reach `completeness_min_share`.")
def panel_data_complete(solar: SolarSettingsResource, monitoring: MonitoringResource) -> dg.AssetCheckResult:
    settings = solar.get()
    with db.engine(settings).connect() as conn:
        figures = h.completeness(conn, window=timedelta(minutes=monitoring.completeness_window_minutes),
                                 interval_seconds=settings.interval_seconds)
    passed = figures["panels"] > 0 and figures["median_share"] >= monitoring.completeness_min_share
    return dg.AssetCheckResult(passed=passed,
                               metadata={**figures, "min_share_required": monitoring.completeness_min_share})


@dg.asset_check(asset=PANEL_DATA, name="no_duplicate_readings", description="At most one reading per panel per "
                "interval tick in the recent window: the (panel, time) key stops exact replays, this catches "
                "re-stamped duplicates it cannot.")
def panel_data_no_duplicates(solar: SolarSettingsResource, monitoring: MonitoringResource) -> dg.AssetCheckResult:
    settings = solar.get()
    since = _now_naive() - timedelta(minutes=monitoring.bounds_window_minutes)
    with db.engine(settings).connect() as conn:
        figures = h.readings_per_tick_duplicates(conn, since=since, interval_seconds=settings.interval_seconds)
    return dg.AssetCheckResult(passed=figures["duplicate_groups"] == 0, metadata=figures)


@dg.asset_check(asset=PANEL_DATA, name="power_within_bounds", description="0 <= power <= 1.25 x the panel's "
                "registered Pmax (table `panels`) for recent readings.")
def panel_data_power_bounds(solar: SolarSettingsResource, monitoring: MonitoringResource) -> dg.AssetCheckResult:
    settings = solar.get()
    since = _now_naive() - timedelta(minutes=monitoring.bounds_window_minutes)
    with db.engine(settings).connect() as conn:
        figures = h.power_out_of_bounds(conn, since=since)
    return dg.AssetCheckResult(passed=figures["negative"] == 0 and figures["above_limit"] == 0,
                               metadata={**figures, "tolerance_x_pmax": h.PMAX_TOLERANCE})


@dg.asset_check(asset=PANEL_DATA, name="dead_letter_rate", description="Share of messages the stream dead-"
                "lettered over the recent window stays below `dead_letter_max_rate`.")
def dead_letter_rate(solar: SolarSettingsResource, monitoring: MonitoringResource) -> dg.AssetCheckResult:
    settings = solar.get()
    since = _now_naive() - timedelta(minutes=monitoring.dead_letter_window_minutes)
    with db.engine(settings).connect() as conn:
        figures = h.dead_letter_rate(conn, since=since)
    return dg.AssetCheckResult(passed=figures["rate"] <= monitoring.dead_letter_max_rate,
                               metadata={**figures, "max_rate": monitoring.dead_letter_max_rate})


def committed_offsets(checkpoint: Path) -> tuple[int | None, dict[int, int]]:
    """The Kafka offsets the stream's last *committed* batch ended at, from its checkpoint.

    Spark writes `offsets/<batch>` (planned end offsets) before a batch and `commits/<batch>`
    after it; the newest batch with both is what has reached the tables.
    """
    offsets_dir, commits_dir = checkpoint / "offsets", checkpoint / "commits"
    if not offsets_dir.is_dir() or not commits_dir.is_dir():
        return None, {}
    committed = sorted((int(p.name) for p in commits_dir.iterdir() if p.name.isdigit()), reverse=True)
    for batch in committed:
        path = offsets_dir / str(batch)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[2:]:
            try:
                source = json.loads(line)
            except ValueError:
                continue
            if isinstance(source, dict):
                for partitions in source.values():
                    return batch, {int(p): int(o) for p, o in partitions.items()}
    return None, {}


def stream_lag_figures(settings: Settings, kafka: KafkaResource) -> dict[str, object]:
    ends = kafka.end_offsets()
    batch, done = committed_offsets(settings.checkpoint_dir / "readings")
    behind = sum(max(0, end - done.get(p, 0)) for p, end in ends.items())
    per_second = settings.panels / settings.interval_seconds
    return {"end_offsets_total": sum(ends.values()), "committed_batch": batch if batch is not None else -1,
            "messages_behind": behind, "seconds_behind": round(behind / per_second, 3),
            "checkpoint": str(settings.checkpoint_dir / "readings")}


@dg.asset_check(asset=PANEL_DATA, name="stream_lag", description="Messages on the topic the stream has not "
                "committed yet: Kafka end offsets (kafka-python) minus the offsets of the last committed batch "
                "in the Spark checkpoint, in seconds of fleet output.")
def stream_lag(solar: SolarSettingsResource, kafka: KafkaResource, monitoring: MonitoringResource
               ) -> dg.AssetCheckResult:
    figures = stream_lag_figures(solar.get(), kafka)
    passed = figures["seconds_behind"] <= monitoring.stream_lag_max_seconds
    return dg.AssetCheckResult(passed=passed, metadata={**figures, "max_seconds": monitoring.stream_lag_max_seconds})


live_checks = [panel_data_fresh, panel_data_agg_fresh, panel_data_complete, panel_data_no_duplicates,
               panel_data_power_bounds, dead_letter_rate, stream_lag]
