"""Least privilege on the real MariaDB: each user can do its job, and cannot do what it must not.

The rights are defined once in `solar_platform/storage/users.py`; these tests hold the server to them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.retention import ensure_day_partitions

pytestmark = pytest.mark.integration

READING = ("INSERT INTO panelData (Panel_id, power_panel, current_status, time_data) "
           "VALUES ('p-1', 1, 1, UTC_TIMESTAMP())")
PANEL = "INSERT INTO panels (panel_id, pmax_w) VALUES ('p-9', 400)"
ALERT = ("INSERT INTO panel_alerts (panel_id, kind, state, opened_at, last_checked, detail) "
         "VALUES ('p-1', 'offline', 'open', UTC_TIMESTAMP(), UTC_TIMESTAMP(), 'x')")
NOTIFICATION_EVENT = ("INSERT INTO alert_events (evaluation_id, alert_id, panel_id, kind, event, severity, "
                      "occurred_at) VALUES ('e', 1, 'p-1', 'offline', 'opened', 'critical', UTC_TIMESTAMP())")
DEAD_LETTER = ("INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, payload, reason) "
               "VALUES ('t', 0, 1, 'x', 'not_json')")
DDL = ("CREATE TABLE sneaky (id INT)", "DROP TABLE panels", "ALTER TABLE panels ADD COLUMN sneaky INT",
       "TRUNCATE TABLE panelData")
OUTSIDE = ("SELECT COUNT(*) FROM mysql.user", "CREATE USER 'intruder'@'%' IDENTIFIED BY 'x'")
DENIED = {1044, 1045, 1142, 1143, 1227}  # db, login, table, column and global privilege denials


def _allowed(settings: Settings, role: str, statement: str) -> bool:
    """Run `statement` as `role` and roll it back; False when the server denies it a privilege."""
    with db.engine(settings, role=role).connect() as conn:  # type: ignore[arg-type]
        transaction = conn.begin()
        try:
            conn.execute(text(statement))
        except DBAPIError as exc:
            code = exc.orig.args[0]  # type: ignore[union-attr]
            assert code in DENIED, f"{role}: {statement!r} failed for another reason: {exc.orig}"
            return False
        finally:
            transaction.rollback()
    return True


def test_the_reader_only_reads(fresh_settings: Settings) -> None:
    assert _allowed(fresh_settings, "reader", "SELECT COUNT(*) FROM panelData")
    for statement in (READING, PANEL, ALERT, DEAD_LETTER, NOTIFICATION_EVENT, "DELETE FROM panelData",
                      "UPDATE panels SET pmax_w = 1",
                      "CREATE TEMPORARY TABLE t (id INT)", *DDL, *OUTSIDE):
        assert not _allowed(fresh_settings, "reader", statement), statement


def test_the_stream_writes_only_its_own_tables(fresh_settings: Settings) -> None:
    for statement in (READING, DEAD_LETTER, "UPDATE stream_pulse SET in_flight = 0",
                      "UPDATE panel_latest SET power_panel = 0", "CREATE TEMPORARY TABLE t (id INT)",
                      "SELECT COUNT(*) FROM panels"):
        assert _allowed(fresh_settings, "stream", statement), statement
    # Not the registry, the alerts or the rollups, which Dagster keeps; no DDL; nothing outside.
    for statement in (PANEL, ALERT, NOTIFICATION_EVENT, "DELETE FROM panel_daily_energy",
                      "UPDATE fleet_daily_energy SET energy_wh = 0",
                      "ALTER TABLE panelData DROP PARTITION p_future", *DDL, *OUTSIDE):
        assert not _allowed(fresh_settings, "stream", statement), statement


def test_dagster_keeps_registry_alerts_rollups_and_partitions_but_never_writes_raw(fresh_settings: Settings) -> None:
    for statement in (PANEL, ALERT, "DELETE FROM panel_daily_energy", "DELETE FROM stream_progress",
                      "UPDATE panelDataAgg SET total_power = 0", "SELECT COUNT(*) FROM panelData",
                      NOTIFICATION_EVENT, "UPDATE notification_deliveries SET attempts = 0",
                      "DELETE FROM dead_letters WHERE recorded_at < '2000-01-01'"):  # retention prunes them
        assert _allowed(fresh_settings, "dagster", statement), statement
    # Raw readings and dead letters are the stream's alone; no DDL beyond partitions; nothing outside.
    # (DROP on the raw tables, which dropping day partitions needs, also allows TRUNCATE of them:
    # docs/security.md says so.)
    for statement in (READING, DEAD_LETTER, "DELETE FROM panelData", "UPDATE dead_letters SET reason = 'x'",
                      "TRUNCATE TABLE panels", *(ddl for ddl in DDL if "panelData" not in ddl), *OUTSIDE):
        assert not _allowed(fresh_settings, "dagster", statement), statement
    # Retention adds the day partitions ahead as Dagster (ALTER on the two raw tables).
    ensure_day_partitions(fresh_settings.as_role("dagster"))


def test_the_migrator_owns_the_schema_and_nothing_else(fresh_settings: Settings) -> None:
    for statement in ("CREATE TABLE scratch (id INT)", READING, PANEL):
        assert _allowed(fresh_settings, "migrator", statement), statement
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS scratch"))
    for statement in OUTSIDE:
        assert not _allowed(fresh_settings, "migrator", statement), statement


def test_passwords_are_generated_private_and_never_the_user_name(stack_settings: Settings) -> None:
    from solar_platform.credentials import SECRET_NAMES, read_secrets, secrets_path

    path = secrets_path(stack_settings.home_dir)
    assert path.stat().st_mode & 0o777 == 0o600
    stored = read_secrets(stack_settings.home_dir)
    assert set(SECRET_NAMES) <= set(stored)
    assert len(set(stored.values())) == len(stored)  # each one random, none shared
    for role in ("migrator", "stream", "dagster", "reader"):
        user, password = stack_settings.mysql_credentials(role)  # type: ignore[arg-type]
        assert password != user and len(password) >= 24
