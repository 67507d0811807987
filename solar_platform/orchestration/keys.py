"""Every asset's key, defined once: the names the Dagster UI shows (the live and rollup assets are
the MySQL tables of the same name)."""

import dagster as dg

# platform (UI group "storage")
MYSQL_SCHEMA = dg.AssetKey("mysql_schema")
PANEL_REGISTRY = dg.AssetKey("panels")

# ingestion
KAFKA_TOPIC = dg.AssetKey("kafka_topic")
PANEL_FLEET = dg.AssetKey("panel_fleet")
SPARK_STREAM = dg.AssetKey("spark_stream")

# live (observed, written by the stream) and health
PANEL_DATA = dg.AssetKey("panelData")
PANEL_DATA_AGG = dg.AssetKey("panelDataAgg")
PANEL_ALERTS = dg.AssetKey("panel_alerts")
ALERT_NOTIFICATIONS = dg.AssetKey("alert_notifications")

# rollups
PANEL_DAILY_ENERGY = dg.AssetKey("panel_daily_energy")
FLEET_DAILY_ENERGY = dg.AssetKey("fleet_daily_energy")

# history
RAW_ARCHIVE = dg.AssetKey("raw_archive")
