"""Live: the tables the stream keeps current, observed (not materialized) by Dagster.

panelData and panelDataAgg are written by the external Spark stream; Dagster observes them
(estimated rows, newest event time, lag, recent writes) on a schedule, following Dagster's
"observing streaming processes" pattern. No observation counts a table's rows.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.pipeline_status import live_table_status, stream_writes

GROUP = "live"
# How far back the observation sums the rows the stream wrote.
RECENT_WRITES = timedelta(minutes=10)
# asset -> the MySQL table it stands for
TABLES = {keys.PANEL_DATA: db.READINGS, keys.PANEL_DATA_AGG: db.WINDOWS}


def observe_live_table(settings: Settings, key: dg.AssetKey, now: datetime | None = None) -> dg.ObserveResult:
    """One observation, at a cost that does not grow with the table: the engine's row estimate
    (information_schema), the newest event time (one index seek), the readings the stream merged in
    the last 10 minutes (its per-batch counters) and when it last did."""
    table = TABLES[key]
    now = now or datetime.now(UTC)
    with db.engine(settings).connect() as conn:
        status = live_table_status(conn, table)
        writes = stream_writes(conn, since=now.astimezone(UTC).replace(tzinfo=None) - RECENT_WRITES)
    newest, last_write = status.newest_event_time, writes.last_write
    newest_epoch = newest.replace(tzinfo=UTC).timestamp() if newest is not None else None
    lag = status.lag_seconds(now)
    updated = last_write.replace(tzinfo=UTC).timestamp() if last_write is not None else newest_epoch
    metadata: dict[str, object] = {
        "row_count_estimate": dg.MetadataValue.int(status.rows_estimate),
        # The readings the stream merged: panelData's rows written, and what the windows were kept from.
        "readings_merged_last_10_minutes": dg.MetadataValue.int(writes.readings_since),
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
        dg.AssetSpec(keys.PANEL_DATA, group_name=GROUP, deps=[keys.SPARK_STREAM], kinds={"mysql"},
                     description="Raw panel readings (the seed's `panelData`), one row per (panel, time), "
                                 "upserted by the stream, in day partitions (raw retention). Observed: estimated rows, "
                                 "newest reading, lag."),
        dg.AssetSpec(keys.PANEL_DATA_AGG, group_name=GROUP, deps=[keys.SPARK_STREAM], kinds={"mysql"},
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
