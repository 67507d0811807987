"""Engines, migrations and the table definitions every part shares.

The DDL lives once, in `sql/` (yoyo-migrations files). Python never types it a second time:
`tables(engine)` reflects the live schema, so queries use exactly what the migrations made.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import Engine, MetaData, Table, create_engine, event

from solar_platform.settings import MysqlRole, Settings

# Table names: the seed's two are public API (dashboards and clients query them).
READINGS = "panelData"
WINDOWS = "panelDataAgg"
DEAD_LETTERS = "dead_letters"
STREAM_PROGRESS = "stream_progress"
STAGE_READINGS = "stage_panel_data"

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"



def _utc_session(dbapi_connection: object, _record: object) -> None:
    # DATETIME columns hold UTC; keep NOW() and friends in UTC too.
    with dbapi_connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SET time_zone = '+00:00'")


@cache
def _engine_for(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, pool_recycle=3600)
    event.listen(engine, "connect", _utc_session)
    return engine


def engine(settings: Settings, *, readonly: bool = False, role: MysqlRole | None = None) -> Engine:
    """A pooled engine for this process's role (`settings.mysql_role`), another `role`, or the
    read-only user; one per URL per process."""
    return _engine_for(settings.mysql_url(role, readonly=readonly))


def migrate(settings: Settings) -> list[str]:
    """Apply pending `sql/` migrations as the migrator; returns the ids applied (empty when current)."""
    from yoyo import get_backend, read_migrations

    settings = settings.as_role("migrator")
    backend = get_backend(settings.mysql_url().replace("mysql+pymysql://", "mysql://"))
    migrations = read_migrations(str(SQL_DIR))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
        # The raw tables' day partitions (today and the days ahead): every migrated database has them.
        from solar_platform.storage.retention import ensure_day_partitions

        ensure_day_partitions(settings)
        from solar_platform.storage.users import grant_table_rights

        with engine(settings).begin() as conn:
            grant_table_rights(conn, settings)
    return [m.id for m in pending]


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
