"""The one typed configuration of the platform.

Read from the environment and from `.env` in the working directory. Every option has a clear
`SOLAR_*` name; the seed project's names (`CONTAINERS`, `PROBABILIDAD`, `TIME`, `TOPIC`) keep
working as aliases, so an old `.env` still drives the fleet.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as _SourceError


def _alias(name: str, *seed_names: str) -> AliasChoices:
    """Accept SOLAR_<NAME> first, then the seed's bare names."""
    return AliasChoices(f"SOLAR_{name.upper()}", *seed_names)


def _env_name(key: str) -> str:
    """The primary env name of a field (`home` -> `SOLAR_HOME`); other keys pass through."""
    field = Settings.model_fields.get(key)
    return field.validation_alias.choices[0] if field else key  # type: ignore[union-attr]


MysqlRole = Literal["migrator", "stream", "dagster", "reader"]
KafkaRole = Literal["admin", "fleet", "stream", "dagster"]
# Where alert notifications go (notifications/): a JSON webhook and SMTP e-mail.
NotifyChannel = Literal["webhook", "email"]
# The simulator's power curve (power_model.py): the seed's sech window, or clear-sky daylight.
PowerModelName = Literal["sech", "daylight"]
# The site every panel belongs to unless told otherwise (the migration makes it; sql/0021_sites.sql).
DEFAULT_SITE_ID = "default"
SITE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def known_zone(value: str) -> str:
    """`value` if it is an IANA time zone name, else a ValueError that says what is expected."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Europe/Madrid')") from exc
    return value


class FleetSite(NamedTuple):
    """Where a site is: what the power model and the site's days need."""

    site_id: str
    latitude: float
    longitude: float
    time_zone: str

    def __str__(self) -> str:
        """The form SOLAR_FLEET_SITES takes: `id:latitude:longitude:zone`."""
        return f"{self.site_id}:{self.latitude!r}:{self.longitude!r}:{self.time_zone}"


class _StackSecrets(PydanticBaseSettingsSource):
    """The generated `<SOLAR_HOME>/secrets.env` (credentials.py), below env and `.env`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[object, str, bool]:
        return None, field_name, False  # unused: __call__ returns everything at once

    def __call__(self) -> dict[str, object]:
        from solar_platform.credentials import default_home

        return {_env_name(name): value for name, value in stored_secrets(default_home()).items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Field names are NOT env names (a field `home` must never read $HOME): only the
        # SOLAR_* aliases and the seed's names are read. __init__ maps field names to aliases.
        populate_by_name=False,
        frozen=True,
    )

    # --- where the local stack keeps its state (data dirs, logs, jars, checkpoints) ---
    home: Path = Field(Path(".solar"), validation_alias=_alias("home"))

    # --- MySQL (MariaDB) ---
    mysql_host: str = Field("127.0.0.1", validation_alias=_alias("mysql_host"))
    mysql_port: int = Field(3307, ge=1, le=65535, validation_alias=_alias("mysql_port"))
    mysql_database: str = Field("solar", pattern=r"^[A-Za-z0-9_]+$", validation_alias=_alias("mysql_database"))
    # One user per part, each with only the rights it needs (docs/security.md). Passwords have no
    # default: they come from the environment or the stack's generated secrets (credentials.py).
    mysql_migrator_user: str = Field("solar_migrator", validation_alias=_alias("mysql_migrator_user"))
    mysql_migrator_password: str | None = Field(None, repr=False, validation_alias=_alias("mysql_migrator_password"))
    mysql_stream_user: str = Field("solar_stream", validation_alias=_alias("mysql_stream_user"))
    mysql_stream_password: str | None = Field(None, repr=False, validation_alias=_alias("mysql_stream_password"))
    mysql_dagster_user: str = Field("solar_dagster", validation_alias=_alias("mysql_dagster_user"))
    mysql_dagster_password: str | None = Field(None, repr=False, validation_alias=_alias("mysql_dagster_password"))
    mysql_readonly_user: str = Field("solar_reader", validation_alias=_alias("mysql_readonly_user"))
    mysql_readonly_password: str | None = Field(None, repr=False, validation_alias=_alias("mysql_readonly_password"))
    # Only `db provision` (compose's one-shot) uses it; the local stack's root has no password and
    # is reachable only over the stack's private socket.
    mysql_root_password: str | None = Field(
        None, repr=False, validation_alias=_alias("mysql_root_password", "MARIADB_ROOT_PASSWORD"))
    # Who this process is when it writes: the stream and `db migrate` switch to their own role;
    # Dagster and the operator's CLI commands (rebuild, panels, health) write as `dagster`.
    mysql_role: MysqlRole = Field("dagster", validation_alias=_alias("mysql_role"))

    # --- Kafka (KRaft: a controller quorum apart from the brokers) ---
    # "19092,19094" in env; NoDecode stops pydantic-settings from expecting JSON there.
    kafka_broker_ports: Annotated[tuple[int, ...], NoDecode] = Field(
        (19092, 19094), validation_alias=_alias("kafka_broker_ports")
    )
    kafka_controller_ports: Annotated[tuple[int, ...], NoDecode] = Field(
        (19093,), validation_alias=_alias("kafka_controller_ports")
    )
    kafka_bootstrap_override: str | None = Field(None, validation_alias=_alias("kafka_bootstrap"))
    kafka_heap: str = Field("384m", validation_alias=_alias("kafka_heap"))
    # SASL/SCRAM users (docs/security.md): `admin` is the brokers' own and the only super user;
    # the fleet may only write the topic, the stream only read it, Dagster create and describe it.
    kafka_admin_user: str = Field("solar-admin", validation_alias=_alias("kafka_admin_user"))
    kafka_admin_password: str | None = Field(None, repr=False, validation_alias=_alias("kafka_admin_password"))
    kafka_fleet_user: str = Field("solar-fleet", validation_alias=_alias("kafka_fleet_user"))
    kafka_fleet_password: str | None = Field(None, repr=False, validation_alias=_alias("kafka_fleet_password"))
    kafka_stream_user: str = Field("solar-stream", validation_alias=_alias("kafka_stream_user"))
    kafka_stream_password: str | None = Field(None, repr=False, validation_alias=_alias("kafka_stream_password"))
    kafka_dagster_user: str = Field("solar-dagster", validation_alias=_alias("kafka_dagster_user"))
    kafka_dagster_password: str | None = Field(None, repr=False, validation_alias=_alias("kafka_dagster_password"))
    topic: str = Field("panelInfo", pattern=r"^[A-Za-z0-9._-]+$", validation_alias=_alias("topic", "TOPIC"))
    topic_partitions: int = Field(4, ge=1, le=1000, validation_alias=_alias("topic_partitions"))
    topic_replication: int = Field(2, ge=1, validation_alias=_alias("topic_replication"))

    # --- fleet simulator: the seed's model and its .env names ---
    panels: int = Field(4, ge=1, le=5_000_000, validation_alias=_alias("panels", "CONTAINERS"))
    offline_probability_pct: float = Field(
        10.0, ge=0, le=100, validation_alias=_alias("offline_probability_pct", "PROBABILIDAD")
    )
    recovery_probability_pct: float = Field(50.0, ge=0, le=100, validation_alias=_alias("recovery_probability_pct"))
    interval_seconds: float = Field(5.0, gt=0, validation_alias=_alias("interval_seconds", "TIME"))
    # Fixed by default: a panel's Pmax derives from it, and must not change when the fleet restarts
    # (the Dagster registry and the bounds checks rely on it).
    seed: int = Field(42, ge=0, validation_alias=_alias("seed"))
    pmax_nominal_w: float = Field(400.0, gt=0, validation_alias=_alias("pmax_nominal_w"))
    # Time of day (UTC) the production window opens, and its length. Unset start = the seed's
    # demo: the window opens when the fleet starts.
    production_start: time | None = Field(None, validation_alias=_alias("production_start"))
    production_hours: float = Field(1.0, gt=0, le=24, validation_alias=_alias("production_hours"))
    curve_exponent: float = Field(30.0, gt=0, validation_alias=_alias("curve_exponent"))
    panel_id_prefix: str = Field("panel-", validation_alias=_alias("panel_id_prefix"))
    # `sech`: the seed's curve (the default). `daylight`: clear-sky irradiance (pvlib) at each
    # panel's site, for the site's location and date, scaled to the panel's Pmax (README "Daylight mode").
    power_model: PowerModelName = Field("sech", validation_alias=_alias("power_model"))
    # The default site's location (its zone is SOLAR_SITE_TIMEZONE); Madrid unless told otherwise.
    site_latitude: float = Field(40.4168, ge=-90, le=90, validation_alias=_alias("site_latitude"))
    site_longitude: float = Field(-3.7038, ge=-180, le=180, validation_alias=_alias("site_longitude"))
    # Spread the simulated fleet over several sites: "id:lat:lon:zone,..." (panel i goes to site i mod
    # the number of sites). Empty = every panel at the default site.
    fleet_sites: Annotated[tuple[FleetSite, ...], NoDecode] = Field((), validation_alias=_alias("fleet_sites"))
    # Fast-forward over past days (backfills): every day gets a full production day, a window
    # opening at this time of day in the site's zone (SOLAR_SITE_TIMEZONE) and lasting this long.
    # Live mode keeps the seed's demo; an explicit SOLAR_PRODUCTION_START wins in both modes.
    backfill_production_start: time = Field(time(6, 0), validation_alias=_alias("backfill_production_start"))
    backfill_production_hours: float = Field(12.0, gt=0, le=24, validation_alias=_alias("backfill_production_hours"))
    # The live fleet's spool (fleet/spool.py): readings Kafka cannot take wait on disk, one directory
    # per topic under this one (unset = <SOLAR_HOME>/fleet-spool), at most this many bytes; when
    # full, `drop-oldest` drops the oldest readings (counted and logged) and `block` stops generating
    # new cycles until the spool drains.
    fleet_spool_dir: Path | None = Field(None, validation_alias=_alias("fleet_spool_dir"))
    fleet_spool_max_bytes: int = Field(1 << 30, ge=1 << 20, validation_alias=_alias("fleet_spool_max_bytes"))
    fleet_spool_full_policy: Literal["block", "drop-oldest"] = Field(
        "drop-oldest", validation_alias=_alias("fleet_spool_full_policy"))
    # Kafka counts as away once a record sent has waited this long for its acknowledgement: new
    # cycles then go to the spool instead of the producer.
    fleet_stall_seconds: float = Field(10.0, gt=0, validation_alias=_alias("fleet_stall_seconds"))

    # --- fault detection (storage/health/faults.py; README "Fault detection") ---
    # A whole number of 30-s windows: fault detection reads the window summaries (storage/windows.py).
    health_step_seconds: float = Field(60.0, gt=0, multiple_of=30.0, validation_alias=_alias("health_step_seconds"))
    health_lookback_minutes: float = Field(20.0, gt=0, validation_alias=_alias("health_lookback_minutes"))
    health_settle_seconds: float = Field(15.0, ge=0, validation_alias=_alias("health_settle_seconds"))
    health_offline_minutes: float = Field(2.0, gt=0, validation_alias=_alias("health_offline_minutes"))
    health_offline_recovery_minutes: float = Field(
        1.0, ge=0, validation_alias=_alias("health_offline_recovery_minutes"))
    health_silent_after_intervals: float = Field(24.0, gt=0, validation_alias=_alias("health_silent_after_intervals"))
    health_zero_fraction: float = Field(0.01, ge=0, validation_alias=_alias("health_zero_fraction"))
    health_zero_minutes: float = Field(5.0, gt=0, validation_alias=_alias("health_zero_minutes"))
    health_stuck_tolerance: float = Field(0.002, ge=0, validation_alias=_alias("health_stuck_tolerance"))
    health_stuck_minutes: float = Field(10.0, gt=0, validation_alias=_alias("health_stuck_minutes"))
    health_stuck_min_expected_change: float = Field(
        0.01, ge=0, validation_alias=_alias("health_stuck_min_expected_change"))
    health_underperforming_pi: float = Field(0.8, gt=0, validation_alias=_alias("health_underperforming_pi"))
    health_recovered_pi: float = Field(0.9, gt=0, validation_alias=_alias("health_recovered_pi"))
    health_underperforming_minutes: float = Field(10.0, gt=0, validation_alias=_alias("health_underperforming_minutes"))
    health_over_range_factor: float = Field(1.25, gt=1, validation_alias=_alias("health_over_range_factor"))
    health_over_range_minutes: float = Field(2.0, gt=0, validation_alias=_alias("health_over_range_minutes"))
    health_recovery_minutes: float = Field(5.0, gt=0, validation_alias=_alias("health_recovery_minutes"))
    health_min_expected_level: float = Field(0.1, gt=0, le=1, validation_alias=_alias("health_min_expected_level"))
    health_min_peers: int = Field(1, ge=1, validation_alias=_alias("health_min_peers"))
    # Peers are the panels of the same site. `model`: where a site has fewer than
    # SOLAR_HEALTH_MIN_PEERS healthy peers, expected power comes from the power model
    # (SOLAR_POWER_MODEL) instead; `off`: such panels are not judged for production faults.
    health_expected_fallback: Literal["off", "model"] = Field(
        "off", validation_alias=_alias("health_expected_fallback"))
    # The pipeline alarm: the stream's frontier (median event time of its newest batches) this far
    # behind the platform's clock. One alarm, instead of a silent alert per panel.
    health_pipeline_lag_seconds: float = Field(120.0, gt=0, validation_alias=_alias("health_pipeline_lag_seconds"))

    # --- message contract ---
    # Naive timestamps (the seed's "YYYY-MM-DD HH:MM:SS.ffffff") are read in this zone.
    source_timezone: str = Field("UTC", validation_alias=_alias("source_timezone"))

    # A reading stamped further ahead of the time it is ingested is dead-lettered (time_in_future);
    # one before the floor is dead-lettered too (time_out_of_range). One wrong clock must not move
    # anyone else's windows, freshness or health.
    max_clock_skew_seconds: float = Field(300.0, ge=0, validation_alias=_alias("max_clock_skew_seconds"))
    min_reading_time: datetime = Field(
        datetime(2000, 1, 1, tzinfo=UTC), validation_alias=_alias("min_reading_time")
    )

    # --- energy model (storage/energy.py) and time zones ---
    # Consecutive readings further apart than this are a gap: no energy is credited across it.
    # Unset = 3 x the fleet's interval.
    energy_max_gap_seconds_override: float | None = Field(
        None, gt=0, le=86_400, validation_alias=_alias("energy_max_gap_seconds")
    )
    # Days, weeks, months and years of energy are the site's, by default (IANA name).
    site_timezone: str = Field("UTC", validation_alias=_alias("site_timezone"))
    # Raw readings (panelData, panelDataAgg) are kept this many days, in day partitions; rollups forever.
    raw_retention_days: int = Field(30, ge=1, le=3650, validation_alias=_alias("raw_retention_days"))
    # Day partitions are made this many UTC days ahead of today (storage/retention.py).
    raw_partition_days_ahead: int = Field(3, ge=1, le=60, validation_alias=_alias("raw_partition_days_ahead"))
    # stream_progress (the heartbeat) keeps this many hours of micro-batch rows.
    stream_progress_retention_hours: float = Field(
        24.0, gt=0, validation_alias=_alias("stream_progress_retention_hours")
    )
    # --- history (storage/history/, history/): retention of every growing table, the raw archive ---
    # Panel and fleet 15-min buckets of a site day older than this fold into its daily rollup (the
    # buckets are deleted once the rollup equals them; a day without a current rollup is never folded).
    bucket_retention_days: int = Field(35, ge=1, le=36500, validation_alias=_alias("bucket_retention_days"))
    # dead_letters rows are kept this many days.
    dead_letter_retention_days: int = Field(30, ge=1, le=36500, validation_alias=_alias("dead_letter_retention_days"))
    # The raw archive: a Parquet dataset by UTC day. Unset = `<SOLAR_HOME>/archive/<database>`; any
    # Hadoop-compatible URI (hdfs://, s3a://, file://) by setting (README "Raw archive").
    archive_uri: str | None = Field(None, validation_alias=_alias("archive_uri"))
    # UTC days of the archive kept; 0 = everything, for ever (the default).
    archive_retention_days: int = Field(0, ge=0, le=36500, validation_alias=_alias("archive_retention_days"))
    # Compaction writes a closed day of the archive as this many Parquet files at most.
    archive_compacted_files_per_day: int = Field(
        4, ge=1, le=10_000, validation_alias=_alias("archive_compacted_files_per_day"))
    # The compaction check compares this many panels' rows with panelData, row for row, per day.
    archive_check_sample_panels: int = Field(20, ge=1, validation_alias=_alias("archive_check_sample_panels"))

    # --- Spark streaming job ---
    # Unset = `local[*]`, or the local standalone cluster when SOLAR_SPARK_WORKERS > 0
    # (see `spark_master_url`); set it to submit to any other master.
    spark_master: str | None = Field(None, validation_alias=_alias("spark_master"))
    spark_driver_memory: str = Field("1g", validation_alias=_alias("spark_driver_memory"))
    # --- Spark standalone cluster (stack/spark_cluster.py): 0 workers = local[*], no cluster ---
    spark_workers: int = Field(0, ge=0, le=32, validation_alias=_alias("spark_workers"))
    # Address the driver, master and workers bind to and advertise; `auto` lets Spark pick the
    # machine's own address (containers, several hosts).
    spark_host: str = Field("127.0.0.1", validation_alias=_alias("spark_host"))
    spark_master_port: int = Field(17077, ge=1, le=65535, validation_alias=_alias("spark_master_port"))
    spark_master_ui_port: int = Field(18080, ge=1, le=65535, validation_alias=_alias("spark_master_ui_port"))
    # Worker i's web UI listens on this port + i - 1.
    spark_worker_ui_port: int = Field(18081, ge=1, le=65535, validation_alias=_alias("spark_worker_ui_port"))
    # Small by default: the reference machine has 2 cores shared with MariaDB and Kafka.
    spark_worker_cores: int = Field(1, ge=1, le=256, validation_alias=_alias("spark_worker_cores"))
    spark_worker_memory: str = Field("1g", pattern=r"^\d+[mgMG]$", validation_alias=_alias("spark_worker_memory"))
    # Heap of each executor on a cluster; at most SOLAR_SPARK_WORKER_MEMORY.
    spark_executor_memory: str = Field(
        "768m", pattern=r"^\d+[mgMG]$", validation_alias=_alias("spark_executor_memory"))
    stream_trigger_seconds: float = Field(5.0, gt=0, validation_alias=_alias("stream_trigger_seconds"))
    # Bounds each micro-batch, so a restart after a backlog replays bounded work (37 s of the
    # 200k-panel fleet's input, about 20 s to commit). Not lower: a batch that writes its summaries
    # writes each panel's window, bucket and latest row once, so at 200k panels (summaries in every
    # batch) a 500k cap sustained 28k of the 40k readings/s, 1.5M 37k (docs/benchmarks.md).
    stream_max_offsets_per_trigger: int = Field(
        1_500_000, gt=0, validation_alias=_alias("stream_max_offsets_per_trigger", "SOLAR_STREAM_MAX_OFFSETS")
    )
    # Appends are committed in each batch at once; their windows, energy buckets and latest rows are
    # written this often, for every batch since, in a transaction of their own beside the batches
    # (each panel's rows once per round, not once per batch: at 200k panels that was ~7 s a batch).
    # 15 s: at 200k panels a round takes ~12 s, and 5 s rounds ran most of the time, slowing the
    # batches beside them (freshness p95 13.6 s vs 9.6 s; docs/benchmarks.md). 0 writes them in every
    # batch's own transaction, as before (storage/stream/summaries.py).
    stream_summaries_every_seconds: float = Field(
        15.0, ge=0, le=300, validation_alias=_alias("stream_summaries_every_seconds"))
    stream_starting_offsets: Literal["earliest", "latest"] = Field(
        "earliest", validation_alias=_alias("stream_starting_offsets")
    )
    stream_checkpoint_dir: Path | None = Field(None, validation_alias=_alias("stream_checkpoint_dir"))
    # MariaDB's disk full, or MariaDB unreachable: the stream keeps its batch and retries it after
    # base x 2^(attempt - 1) seconds, at most the max (how long it may take to notice freed space).
    stream_write_retry_base_seconds: float = Field(
        2.0, gt=0, validation_alias=_alias("stream_write_retry_base_seconds"))
    stream_write_retry_max_seconds: float = Field(
        30.0, gt=0, validation_alias=_alias("stream_write_retry_max_seconds"))

    # --- Dagster and the API ---
    # Who runs the long-lived fleet and stream: the local stack's supervisord (Dagster starts,
    # stops and restarts them), or docker compose (Dagster reports; compose restarts them).
    process_manager: Literal["supervisord", "compose"] = Field(
        "supervisord", validation_alias=_alias("process_manager"))
    dagster_port: int = Field(3000, ge=1, le=65535, validation_alias=_alias("dagster_port"))
    # The stream is stale (Dagster's heartbeat sensor, the API's health, fault detection) after this
    # many trigger intervals without a stream_progress row, and never before the minimum.
    stream_stale_after_triggers: float = Field(12.0, gt=0, validation_alias=_alias("stream_stale_after_triggers"))
    stream_stale_min_seconds: float = Field(60.0, ge=0, validation_alias=_alias("stream_stale_min_seconds"))
    # A batch whose pulse is fresh is running, however old the heartbeat: never restarted, unless it
    # runs longer than this (a hung batch).
    stream_max_batch_seconds: float = Field(900.0, gt=0, validation_alias=_alias("stream_max_batch_seconds"))
    # After the heartbeat sensor requests a restart, it waits this long before requesting another.
    stream_restart_grace_seconds: float = Field(180.0, ge=0, validation_alias=_alias("stream_restart_grace_seconds"))
    # Dagster's checks on the live tables (orchestration/live/checks.py).
    check_freshness_max_lag_seconds: float = Field(
        120.0, gt=0, validation_alias=_alias("check_freshness_max_lag_seconds"))
    # Read as the newest complete 15-min energy buckets covering at least this long.
    check_completeness_window_minutes: float = Field(
        15.0, gt=0, validation_alias=_alias("check_completeness_window_minutes"))
    check_completeness_min_share: float = Field(
        0.9, ge=0, le=1, validation_alias=_alias("check_completeness_min_share"))
    # The power-bounds check looks this far back (whole 15-min buckets).
    check_recent_window_minutes: float = Field(60.0, gt=0, validation_alias=_alias("check_recent_window_minutes"))
    check_dead_letter_window_minutes: float = Field(
        60.0, gt=0, validation_alias=_alias("check_dead_letter_window_minutes"))
    check_dead_letter_max_rate: float = Field(0.01, ge=0, le=1, validation_alias=_alias("check_dead_letter_max_rate"))
    # The lost-offsets check fails while Kafka offsets found lost (retention deleted them unread) are this recent.
    check_lost_offsets_window_hours: float = Field(
        24.0, gt=0, validation_alias=_alias("check_lost_offsets_window_hours"))
    # Messages the stream has not committed, in seconds of fleet output.
    check_stream_lag_max_seconds: float = Field(60.0, gt=0, validation_alias=_alias("check_stream_lag_max_seconds"))
    # The daily rollups' numpy recompute check: panels sampled per day, allowed relative difference.
    rollup_check_sample_panels: int = Field(20, ge=1, validation_alias=_alias("rollup_check_sample_panels"))
    rollup_check_relative_tolerance: float = Field(
        1e-6, gt=0, validation_alias=_alias("rollup_check_relative_tolerance"))
    api_host: str = Field("127.0.0.1", validation_alias=_alias("api_host"))
    api_port: int = Field(5000, ge=1, le=65535, validation_alias=_alias("api_port"))
    api_token: str | None = Field(None, validation_alias=_alias("api_token"))
    # Per client and per worker process; 0 turns the limit off.
    api_rate_per_second: float = Field(20.0, ge=0, validation_alias=_alias("api_rate_per_second"))
    api_rate_burst: int = Field(100, ge=1, validation_alias=_alias("api_rate_burst"))
    # The API's current fleet power counts a panel's newest reading for this many reporting
    # intervals, and never for less than the minimum.
    current_power_horizon_intervals: float = Field(
        6.0, gt=0, validation_alias=_alias("current_power_horizon_intervals"))
    current_power_min_horizon_seconds: float = Field(
        60.0, ge=0, validation_alias=_alias("current_power_min_horizon_seconds"))

    # --- alert notifications (notifications/; README "Notifications") ---
    # A channel is on when configured: the webhook with its URL, e-mail with an SMTP host and recipients.
    notify_webhook_url: str | None = Field(None, pattern=r"^https?://", validation_alias=_alias("notify_webhook_url"))
    notify_smtp_host: str | None = Field(None, validation_alias=_alias("notify_smtp_host"))
    notify_smtp_port: int = Field(587, ge=1, le=65535, validation_alias=_alias("notify_smtp_port"))
    # starttls (submission port 587), ssl (implicit TLS, port 465) or none (a relay on a trusted network).
    notify_smtp_security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", validation_alias=_alias("notify_smtp_security"))
    notify_smtp_user: str | None = Field(None, validation_alias=_alias("notify_smtp_user"))
    notify_smtp_password: str | None = Field(None, repr=False, validation_alias=_alias("notify_smtp_password"))
    notify_mail_from: str = Field("solar-platform@localhost", validation_alias=_alias("notify_mail_from"))
    # "ops@example.com,oncall@example.com" in env (NoDecode: not JSON).
    notify_mail_to: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias=_alias("notify_mail_to"))
    # One connection attempt (HTTP request or SMTP session) gives up after this long.
    notify_timeout_seconds: float = Field(10.0, gt=0, le=300, validation_alias=_alias("notify_timeout_seconds"))
    # More alert changes than this in one evaluation go out as one digest message.
    notify_digest_threshold: int = Field(20, ge=1, validation_alias=_alias("notify_digest_threshold"))
    # A failed delivery is retried after base x 2^(attempts - 1) seconds, at most the max.
    notify_retry_base_seconds: float = Field(30.0, gt=0, validation_alias=_alias("notify_retry_base_seconds"))
    notify_retry_max_seconds: float = Field(3600.0, gt=0, validation_alias=_alias("notify_retry_max_seconds"))
    # A message still failing this long after it was planned is abandoned (shown in health and Dagster).
    notify_give_up_hours: float = Field(24.0, gt=0, validation_alias=_alias("notify_give_up_hours"))
    # Delivered and abandoned notifications, and their events, are kept this many days.
    notify_retention_days: int = Field(30, ge=1, le=3650, validation_alias=_alias("notify_retention_days"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, _StackSecrets(settings_cls), file_secret_settings

    def __init__(self, **values: object) -> None:
        # Settings(home=...) by field name must work (and not be ignored silently), without
        # letting the environment be read by field name.
        super().__init__(**{_env_name(key): value for key, value in values.items()})

    @field_validator("notify_mail_to", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("fleet_sites", mode="before")
    @classmethod
    def _parse_sites(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        sites = []
        for part in (p.strip() for p in value.split(",") if p.strip()):
            fields = part.split(":")
            if len(fields) != 4:
                raise ValueError(f"site {part!r} is not id:latitude:longitude:zone")
            sites.append((fields[0], float(fields[1]), float(fields[2]), fields[3]))
        return tuple(sites)

    @field_validator("fleet_sites")
    @classmethod
    def _valid_sites(cls, value: tuple[FleetSite, ...]) -> tuple[FleetSite, ...]:
        import re

        for site in value:
            if not re.match(SITE_ID_PATTERN, site.site_id):
                raise ValueError(f"site id {site.site_id!r} is not {SITE_ID_PATTERN}")
            if not (-90 <= site.latitude <= 90 and -180 <= site.longitude <= 180):
                raise ValueError(f"site {site.site_id!r}: latitude/longitude out of range")
            known_zone(site.time_zone)
        if len({site.site_id for site in value}) != len(value):
            raise ValueError("site ids in SOLAR_FLEET_SITES must differ")
        return value

    @field_validator("kafka_broker_ports", "kafka_controller_ports", mode="before")
    @classmethod
    def _split_ports(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(",", " ").split())
        if isinstance(value, int):
            return (value,)
        return value

    @field_validator("panel_id_prefix")
    @classmethod
    def _prefix_makes_valid_ids(cls, value: str) -> str:
        from solar_platform.contracts import PANEL_ID_MAX_LENGTH, PANEL_ID_RULE, is_valid_panel_id

        # The fleet appends six digits: the result must be a panel id of the contract.
        if not is_valid_panel_id(f"{value}000000") or len(value) > PANEL_ID_MAX_LENGTH - 6:
            raise ValueError(f"prefix {value!r} does not make valid panel ids ({PANEL_ID_RULE})")
        return value

    @field_validator("min_reading_time")
    @classmethod
    def _aware_floor(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("source_timezone", "site_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if not self.kafka_broker_ports or not self.kafka_controller_ports:
            raise ValueError("need at least one Kafka broker port and one controller port")
        if self.topic_replication > len(self.kafka_broker_ports):
            raise ValueError(
                f"topic_replication={self.topic_replication} exceeds the {len(self.kafka_broker_ports)} brokers"
            )
        ports = [self.mysql_port, *self.kafka_broker_ports, *self.kafka_controller_ports]
        if len(set(ports)) != len(ports):
            raise ValueError(f"MySQL and Kafka ports must all differ, got {ports}")
        if self.notify_smtp_host and not self.notify_mail_to:
            raise ValueError("SOLAR_NOTIFY_SMTP_HOST is set but SOLAR_NOTIFY_MAIL_TO is empty: set the recipients")
        if self.notify_smtp_password and not self.notify_smtp_user:
            raise ValueError("SOLAR_NOTIFY_SMTP_PASSWORD needs SOLAR_NOTIFY_SMTP_USER")
        if self.spark_workers:
            spark_ports = [self.spark_master_port, self.spark_master_ui_port, *self.spark_worker_ui_ports]
            if len(set(spark_ports + ports)) != len(spark_ports + ports):
                raise ValueError(f"Spark cluster ports must differ from each other and from MySQL/Kafka's, "
                                 f"got {spark_ports}")
        return self

    # --- derived values: computed here once so every part agrees ---
    @cached_property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def kafka_bootstrap(self) -> str:
        if self.kafka_bootstrap_override:
            return self.kafka_bootstrap_override
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_broker_ports)

    def mysql_credentials(self, role: MysqlRole | None = None) -> tuple[str, str]:
        """(user, password) of a MariaDB role; this process's own (`mysql_role`) by default."""
        role = role or self.mysql_role
        field = "readonly" if role == "reader" else role
        user, password = getattr(self, f"mysql_{field}_user"), getattr(self, f"mysql_{field}_password")
        if not password:
            raise SettingsError(
                f"no password for MySQL user {user} ({role}): set SOLAR_MYSQL_{field.upper()}_PASSWORD, or run "
                f"`solar-platform stack up` once to generate the stack's secrets in {self.home_dir}"
            )
        return user, password

    def mysql_url(
        self, role: MysqlRole | None = None, *, readonly: bool = False, database: str | None = None
    ) -> str:
        """SQLAlchemy URL for a role: this process's own by default, the reader when `readonly`."""
        user, password = self.mysql_credentials("reader" if readonly else role)
        db = self.mysql_database if database is None else database
        return f"mysql+pymysql://{quote_plus(user)}:{quote_plus(password)}@{self.mysql_host}:{self.mysql_port}/{db}"

    def as_role(self, role: MysqlRole) -> Settings:
        """These settings for a process that acts as `role` (the stream, migrations, the API)."""
        return self if role == self.mysql_role else self.model_copy(update={"mysql_role": role})

    @staticmethod
    def kafka_login_variables(role: KafkaRole) -> tuple[str, str]:
        """The variables that name `role`'s Kafka user and hold its password (SOLAR_KAFKA_FLEET_USER, ...)."""
        return _env_name(f"kafka_{role}_user"), _env_name(f"kafka_{role}_password")

    def kafka_credentials(self, role: KafkaRole) -> tuple[str, str]:
        """(user, password) of a Kafka SASL/SCRAM user."""
        user, password = getattr(self, f"kafka_{role}_user"), getattr(self, f"kafka_{role}_password")
        if not password:
            raise SettingsError(
                f"no password for Kafka user {user} ({role}): set {self.kafka_login_variables(role)[1]}, or run "
                f"`solar-platform stack up` once to generate the stack's secrets in {self.home_dir}"
            )
        return user, password

    @property
    def mysql_readonly_url(self) -> str:
        return self.mysql_url("reader")

    @property
    def fleet_site_list(self) -> tuple[FleetSite, ...]:
        """The simulated fleet's sites: SOLAR_FLEET_SITES, or the default site alone."""
        return self.fleet_sites or (
            FleetSite(DEFAULT_SITE_ID, self.site_latitude, self.site_longitude, self.site_timezone),)

    @property
    def energy_max_gap_seconds(self) -> float:
        return self.energy_max_gap_seconds_override or 3.0 * self.interval_seconds

    @property
    def notify_channels(self) -> tuple[NotifyChannel, ...]:
        """The notification channels that are configured, in delivery order."""
        channels: list[NotifyChannel] = []
        if self.notify_webhook_url:
            channels.append("webhook")
        if self.notify_smtp_host and self.notify_mail_to:
            channels.append("email")
        return tuple(channels)

    @property
    def current_power_horizon_seconds(self) -> float:
        """A panel's newest reading counts towards the fleet's power "now" for this long."""
        return max(self.current_power_min_horizon_seconds, self.current_power_horizon_intervals * self.interval_seconds)

    @property
    def stream_stale_after_seconds(self) -> float:
        """How old the newest stream_progress row may be before the stream counts as stale."""
        return max(self.stream_stale_after_triggers * self.stream_trigger_seconds, self.stream_stale_min_seconds)

    @property
    def spark_worker_ui_ports(self) -> list[int]:
        return [self.spark_worker_ui_port + i for i in range(self.spark_workers)]

    @property
    def spark_master_url(self) -> str:
        """Where Spark jobs (the stream, Dagster's Spark) submit: SOLAR_SPARK_MASTER when set, else
        the local standalone cluster when SOLAR_SPARK_WORKERS > 0, else `local[*]` in-process."""
        if self.spark_master:
            return self.spark_master
        if self.spark_workers:
            host = "127.0.0.1" if self.spark_host == "auto" else self.spark_host
            return f"spark://{host}:{self.spark_master_port}"
        return "local[*]"

    @property
    def archive_location(self) -> str:
        """Where the raw archive lives: `SOLAR_ARCHIVE_URI`, or a local directory per database."""
        return self.archive_uri or str(self.home_dir / "archive" / self.mysql_database)

    @property
    def fleet_spool_path(self) -> Path:
        """The live fleet's spool for this topic (readings of one topic never drain into another)."""
        base = self.fleet_spool_dir.expanduser().resolve() if self.fleet_spool_dir else self.home_dir / "fleet-spool"
        return base / self.topic

    @property
    def checkpoint_dir(self) -> Path:
        return self.stream_checkpoint_dir or self.home_dir / "checkpoints" / self.mysql_database / self.topic


def stored_secrets(home: Path) -> dict[str, str]:
    """The stack's generated secrets (credentials.py) that are settings, by field name."""
    from solar_platform.credentials import read_secrets

    stored = read_secrets(home)
    return {name: stored[_env_name(name)] for name in Settings.model_fields if _env_name(name) in stored}


class SettingsError(RuntimeError):
    """Bad configuration, reported as one readable message instead of a traceback."""


def load_settings(**overrides: object) -> Settings:
    """Settings from env/.env with explicit overrides (by field name; None = not given).

    Bad values become one `SettingsError` naming each problem.
    """
    unknown = set(overrides) - set(Settings.model_fields)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
    except _SourceError as exc:
        raise SettingsError(f"invalid configuration: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from exc
