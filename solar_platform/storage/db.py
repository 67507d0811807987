"""Engines, migrations and the table definitions every part shares.

The DDL lives once, in `sql/` (yoyo-migrations files). Python never types it a second time:
`tables(engine)` reflects the live schema, so queries use exactly what the migrations made.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event

from solar_platform.settings import MysqlRole, Settings

if TYPE_CHECKING:
    import pymysql

# Table names, each defined here once (the DDL is in sql/). The seed's two are public API
# (dashboards and clients query them).
READINGS = "panelData"
WINDOWS = "panelDataAgg"
DEAD_LETTERS = "dead_letters"
STREAM_PROGRESS = "stream_progress"
# The batch in flight (a slow batch is not a stuck one) and the generation of panel_latest.
STREAM_PULSE = "stream_pulse"
# Each partition's next expected Kafka offset, and the offsets retention deleted before the stream read them.
STREAM_OFFSETS = "stream_offsets"
LOST_OFFSETS = "lost_offsets"
STREAM_UNSUMMARIZED = "stream_unsummarized"  # batches whose appends await their summaries
DERIVED_GENERATION = "derived_generation"
# What the stream keeps beside the readings (storage/energy.py).
PANEL_BUCKETS = "panel_energy_15min"
FLEET_BUCKETS = "fleet_energy_15min"
PANEL_LATEST = "panel_latest"
# What Dagster and the operator's commands keep: the registry, alerts, daily rollups and their stages.
PANELS = "panels"
SITES = "sites"  # where panels are (storage/sites.py)
REGISTRY_COUNTS = "registry_counts"  # panels per site, kept by triggers on `panels`
REGISTRY_SYNC = "registry_sync"  # what the last fleet registry sync applied (storage/health/registry.py)
SITE_DAILY_ENERGY = "site_daily_energy"  # per site day in the site's zone (storage/site_rollups.py)
PANEL_ALERTS = "panel_alerts"
PLATFORM_ALERTS = "platform_alerts"  # alarms about the platform itself: one open row per kind
FLEET_NOW = "fleet_now"  # the fleet's counters as of the stream's newest batch
PANEL_DAILY_ENERGY = "panel_daily_energy"
FLEET_DAILY_ENERGY = "fleet_daily_energy"
STAGE_PANEL_DAILY_ENERGY = "stage_panel_daily_energy"
STAGE_FLEET_DAILY_ENERGY = "stage_fleet_daily_energy"
RUN_FAILURES = "orchestration_run_failures"
# Alert notifications (storage/notifications.py): the outbox of alert events and each message's delivery.
ALERT_EVENTS = "alert_events"
NOTIFICATION_DELIVERIES = "notification_deliveries"
# History (storage/history/): the 15-min buckets whose figures changed since their day was rolled up.
ENERGY_CHANGES = "energy_changes"
# What retention dropped from each partitioned raw table (readings before an instant).
RETENTION_HORIZONS = "retention_horizons"

# DATETIME columns hold UTC; every session keeps NOW() and friends in UTC too.
UTC_SESSION = "SET time_zone = '+00:00'"


def _utc_session(dbapi_connection: object, _record: object) -> None:
    with dbapi_connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(UTC_SESSION)


_ENGINES: dict[tuple[str, bool], Engine] = {}  # one per URL per process
_ENGINES_LOCK = threading.Lock()


def _engine_for(url: str, local_infile: bool = False) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get((url, local_infile))
        if engine is None:
            engine = create_engine(url, pool_pre_ping=True, pool_recycle=3600,
                                   connect_args={"local_infile": True} if local_infile else {})
            event.listen(engine, "connect", _utc_session)
            _ENGINES[(url, local_infile)] = engine
    return engine


def dispose_engines(database: str) -> None:
    """Close the pooled connections of this process's engines on `database` and forget them (a scratch
    database being dropped: its idle connections would otherwise count against max_connections)."""
    with _ENGINES_LOCK:
        gone = [_ENGINES.pop(key) for key, engine in list(_ENGINES.items()) if engine.url.database == database]
    for engine in gone:
        engine.dispose()


def engine(settings: Settings, *, readonly: bool = False, role: MysqlRole | None = None,
           bulk_load: bool = False) -> Engine:
    """A pooled engine for this process's role (`settings.mysql_role`), another `role`, or the
    read-only user; one per URL per process. `bulk_load`: its connections may `LOAD DATA LOCAL
    INFILE` (the stream's writes, `storage.stream.bulk`); the server must allow it too (the local
    stack's MariaDB runs with --local-infile=1)."""
    return _engine_for(settings.mysql_url(role, readonly=readonly), bulk_load)


def read_committed(engine: Engine) -> Connection:
    """A connection whose transactions are READ COMMITTED: an `INSERT ... SELECT` or a range read
    then takes no shared locks that the stream's batch transaction would wait on (REPEATABLE READ,
    the default, does). Use as a context manager; the level is reset when it goes back to the pool."""
    return engine.connect().execution_options(isolation_level="READ COMMITTED")


def bulk_load_connection(settings: Settings, role: MysqlRole | None = None) -> pymysql.Connection:
    """A plain pymysql connection that may `LOAD DATA LOCAL INFILE` (bulk loads: the benchmarks), as
    this process's role (`settings.mysql_role`) or another `role`; autocommit, session zone UTC.

    The pooled engines never allow LOCAL INFILE. The server must allow it too: the local stack's
    MariaDB runs with --local-infile=1.
    """
    import pymysql

    user, password = settings.mysql_credentials(role)
    return pymysql.connect(host=settings.mysql_host, port=settings.mysql_port, user=user, password=password,
                           database=settings.mysql_database, autocommit=True, local_infile=True,
                           init_command=UTC_SESSION)


@cache
def _reflected(url: str) -> MetaData:
    metadata = MetaData()
    metadata.reflect(bind=_engine_for(url))
    return metadata


def table(settings: Settings, name: str, *, readonly: bool = False) -> Table:
    """The live definition of one table, reflected once per process from what `sql/` created."""
    metadata = _reflected(settings.mysql_url(readonly=readonly))
    if name not in metadata.tables:
        raise LookupError(f"table {name!r} does not exist; run `solar-platform db migrate`")
    return metadata.tables[name]
