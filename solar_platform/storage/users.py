"""The platform's MariaDB users and what each may do: least privilege, defined once (docs/security.md).

| role     | may                                                                     | used by            |
|----------|-------------------------------------------------------------------------|--------------------|
| migrator | everything on the platform's database (DDL), and grant the others       | `db migrate`       |
| stream   | read everything; write only the tables the stream keeps; temp tables    | the stream         |
| dagster  | read everything; write the registry, alerts and their notifications,    | Dagster, operator  |
|          | rollups and the derived tables a rebuild recomputes; add and drop raw   | CLI commands       |
|          | day partitions; its own `dagster` database (compose keeps Dagster's     |                    |
|          | storage there)                                                          |                    |
| reader   | SELECT only                                                             | API, Grafana       |

The local stack provisions them as root over its private socket (`stack up`); compose runs
`solar-platform db provision` once as root over TCP. Table rights are granted by the migrator after
every migration, so a table a migration adds is covered at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from solar_platform.settings import Settings, SettingsError
from solar_platform.storage import db

if TYPE_CHECKING:
    import pymysql

Statements = Sequence[tuple[str, tuple[str, ...]]]

DAGSTER_DATABASE = "dagster"

STREAM_WRITES = (db.READINGS, db.WINDOWS, db.DEAD_LETTERS, db.STREAM_PROGRESS, db.STREAM_PULSE, db.FLEET_NOW,
                 db.PANEL_BUCKETS, db.FLEET_BUCKETS, db.PANEL_LATEST, db.ENERGY_CHANGES, db.STREAM_OFFSETS,
                 db.LOST_OFFSETS, db.STREAM_UNSUMMARIZED)
DAGSTER_WRITES = (db.PANELS, db.REGISTRY_SYNC, db.SITES, db.SITE_DAILY_ENERGY, db.PANEL_ALERTS, db.PLATFORM_ALERTS,
                  db.PANEL_DAILY_ENERGY, db.FLEET_DAILY_ENERGY,
                  db.STAGE_PANEL_DAILY_ENERGY, db.STAGE_FLEET_DAILY_ENERGY, db.RUN_FAILURES, db.STREAM_PROGRESS,
                  # Alert events are recorded with the alert changes; Dagster and `notify deliver` deliver them.
                  db.ALERT_EVENTS, db.NOTIFICATION_DELIVERIES,
                  # `solar-platform rebuild` recomputes the derived tables from raw.
                  db.WINDOWS, db.PANEL_BUCKETS, db.FLEET_BUCKETS, db.PANEL_LATEST, db.DERIVED_GENERATION,
                  # A rebuild with the stream stopped summarizes what a killed stream left.
                  db.STREAM_UNSUMMARIZED,
                  # History: rollups consume the change marks; retention notes what it dropped.
                  db.ENERGY_CHANGES, db.RETENTION_HORIZONS)
# Retention prunes the dead letters: it may delete them, never write one.
DAGSTER_PRUNES = (db.DEAD_LETTERS,)
# Retention adds and drops the raw tables' day partitions: ALTER and DROP on those two only.
DAGSTER_PARTITIONS = (db.READINGS, db.WINDOWS)


def provision_statements(settings: Settings, database: str, host: str) -> list[tuple[str, tuple[str, ...]]]:
    """Root's statements: the database, the four users with their passwords, their database-wide rights.

    `host` is the users' host part: loopback in the local stack, '%' in compose's network.
    """
    statements: list[tuple[str, tuple[str, ...]]] = [
        (f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4", ()),
        (f"CREATE DATABASE IF NOT EXISTS `{DAGSTER_DATABASE}` CHARACTER SET utf8mb4", ()),
    ]
    for role in ("migrator", "stream", "dagster", "reader"):
        user, password = settings.mysql_credentials(role)
        statements += [("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password)),
                       ("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))]
    statements += [
        (f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@%s WITH GRANT OPTION", (settings.mysql_migrator_user, host)),
        (f"GRANT SELECT, CREATE TEMPORARY TABLES ON `{database}`.* TO %s@%s", (settings.mysql_stream_user, host)),
        (f"GRANT SELECT, CREATE TEMPORARY TABLES ON `{database}`.* TO %s@%s", (settings.mysql_dagster_user, host)),
        (f"GRANT ALL PRIVILEGES ON `{DAGSTER_DATABASE}`.* TO %s@%s", (settings.mysql_dagster_user, host)),
        (f"GRANT SELECT ON `{database}`.* TO %s@%s", (settings.mysql_readonly_user, host)),
    ]
    return statements


def execute_statements(cursor: pymysql.cursors.Cursor, statements: Statements) -> None:
    """Run root's statements (`provision_statements`, `drop_database_statements`) on a pymysql cursor."""
    for statement, parameters in statements:
        cursor.execute(statement, parameters or None)


def drop_database_statements(database: str) -> list[tuple[str, tuple[str, ...]]]:
    """Root's statements that drop a database and every grant on it (grants outlive a DROP DATABASE)."""
    return [
        (f"DROP DATABASE IF EXISTS `{database}`", ()),
        ("DELETE FROM mysql.tables_priv WHERE Db = %s", (database,)),
        ("DELETE FROM mysql.db WHERE Db = %s", (database,)),
        ("FLUSH PRIVILEGES", ()),
    ]


def grant_table_rights(conn: Connection, settings: Settings) -> None:
    """The stream's and Dagster's table rights, granted by the migrator (who holds GRANT OPTION)."""
    database = settings.mysql_database
    # Every platform user has the migrator's host part (the provisioner made them together).
    host = conn.exec_driver_sql("SELECT CURRENT_USER()").scalar().rpartition("@")[2]
    rights = [(settings.mysql_stream_user, "SELECT, INSERT, UPDATE, DELETE", STREAM_WRITES),
              (settings.mysql_dagster_user, "SELECT, INSERT, UPDATE, DELETE", DAGSTER_WRITES),
              (settings.mysql_dagster_user, "SELECT, DELETE", DAGSTER_PRUNES),
              (settings.mysql_dagster_user, "ALTER, DROP", DAGSTER_PARTITIONS)]
    for user, privileges, tables in rights:
        for name in tables:
            conn.exec_driver_sql(f"GRANT {privileges} ON `{database}`.`{name}` TO %s@%s", (user, host))


def provision_over_tcp(settings: Settings, host: str = "%") -> None:
    """Run the provisioning as root over TCP (compose: MARIADB_ROOT_PASSWORD, given to this one-shot only)."""
    import pymysql

    if not settings.mysql_root_password:
        raise SettingsError("provisioning needs MariaDB's root password: set MARIADB_ROOT_PASSWORD")
    connection = pymysql.connect(host=settings.mysql_host, port=settings.mysql_port, user="root",
                                 password=settings.mysql_root_password, autocommit=True)
    with connection, connection.cursor() as cur:
        execute_statements(cur, provision_statements(settings, settings.mysql_database, host))
