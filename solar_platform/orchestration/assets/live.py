"""Live domain: the tables the stream keeps current, observed (not materialized) by Dagster.

panelData and panelDataAgg are written by the external Spark stream; Dagster observes them
(estimated rows, newest event time, lag, recent writes) on a schedule, following Dagster's
"observing streaming processes" pattern. No observation counts a table's rows. `panel_alerts`
is written by the panel-health sensor.
"""


from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import text

from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage.retention import estimated_rows

GROUP = "live"
PANEL_DATA = dg.AssetKey("panelData")
PANEL_DATA_AGG = dg.AssetKey("panelDataAgg")
PANEL_ALERTS = dg.AssetKey("panel_alerts")

# table -> (an indexed time column, what stream_progress calls its rows)
_LIVE_TABLES = {
    PANEL_DATA: ("panelData", "time_data", "readings"),
    PANEL_DATA_AGG: ("panelDataAgg", "window_start", "windows"),
}


def observe_live_table(settings, key: dg.AssetKey, now: datetime | None = None) -> dg.ObserveResult:  # noqa: ANN001
    """One observation, at a cost that does not grow with the table: the engine's row estimate
    (information_schema), the newest event time (one index seek), the rows the stream wrote in the
    last 10 minutes (its per-batch counters) and when it last wrote the table."""
    table, time_column, query_name = _LIVE_TABLES[key]
    now = now or datetime.now(UTC)
    since = now.astimezone(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    with db.engine(settings).connect() as conn:
        estimate = estimated_rows(conn, table)
        newest = conn.execute(text(f"SELECT MAX({time_column}) FROM {table}")).scalar()
        last_write, recent = conn.execute(text(
            "SELECT MAX(recorded_at), COALESCE(SUM(rows_written), 0) FROM stream_progress "
            "WHERE query_name = :q AND rows_written > 0 AND recorded_at >= :since"),
            {"q": query_name, "since": since}).one()
        if last_write is None:
            last_write = conn.execute(text(
                "SELECT MAX(recorded_at) FROM stream_progress WHERE query_name = :q AND rows_written > 0"),
                {"q": query_name}).scalar()
    if newest is not None and key == PANEL_DATA_AGG:
        newest = newest + timedelta(seconds=settings.stream_window_seconds)  # the newest window's end
    newest_epoch = newest.replace(tzinfo=UTC).timestamp() if newest is not None else None
    lag = now.timestamp() - newest_epoch if newest_epoch is not None else None
    updated = last_write.replace(tzinfo=UTC).timestamp() if last_write is not None else newest_epoch
    metadata: dict[str, object] = {
        "row_count_estimate": dg.MetadataValue.int(estimate),
        "rows_written_last_10_minutes": dg.MetadataValue.int(int(recent)),
        "newest_event_time": newest.replace(tzinfo=UTC).isoformat() if newest else "",
        "lag_seconds": dg.MetadataValue.float(round(lag, 3)) if lag is not None else dg.MetadataValue.null(),
    }
    if updated is not None:
        metadata["dagster/last_updated_timestamp"] = dg.MetadataValue.timestamp(updated)
    version = f"{newest.isoformat() if newest else '-'}:{last_write.isoformat() if last_write else '-'}"
    return dg.ObserveResult(asset_key=key, metadata=metadata, data_version=dg.DataVersion(version))


@dg.multi_observable_source_asset(
    name="live_tables",
    specs=[
        dg.AssetSpec(PANEL_DATA, group_name=GROUP, deps=["spark_stream"], kinds={"mysql"},
                     description="Raw panel readings (the seed's `panelData`), one row per (panel, time), "
                                 "upserted by the stream, in day partitions (raw retention). Observed: estimated rows, "
                                 "newest reading, lag."),
        dg.AssetSpec(PANEL_DATA_AGG, group_name=GROUP, deps=["spark_stream"], kinds={"mysql"},
                     description="Per-panel 30-second window means (the seed's `panelDataAgg`), upserted by "
                                 "the stream, in day partitions. Observed: estimated rows, newest window end, lag."),
    ],
    can_subset=True,
)
def live_tables(context: dg.AssetExecutionContext, solar: SolarSettingsResource):  # noqa: ANN201
    """Observe the stream's live tables: estimated rows, newest event time, lag, last write."""
    settings = solar.get()
    for key in context.selected_asset_keys:
        yield observe_live_table(settings, key)


panel_alerts = dg.AssetSpec(
    PANEL_ALERTS, group_name=GROUP, deps=[PANEL_DATA, "panels"], kinds={"mysql"},
    description="Panel-health alerts (offline, silent, underperforming) kept by the panel_health sensor: "
                "at most one open alert per (panel, kind); alerts that no longer hold are resolved.")
