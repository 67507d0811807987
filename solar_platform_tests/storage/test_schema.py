"""The schema in sql/ applies cleanly, idempotently, with the keys the queries rely on."""

import pytest
from sqlalchemy import inspect

from solar_platform.storage import db, migrations


@pytest.mark.integration
def test_migrations_are_idempotent_and_keyed(fresh_settings):
    assert migrations.migrate(fresh_settings) == []  # already applied by the fixture: nothing to do
    inspector = inspect(db.engine(fresh_settings))
    assert inspector.get_pk_constraint(db.READINGS)["constrained_columns"] == ["Panel_id", "time_data"]
    # summaries clustered by time (a minute of the fleet is one range), a panel's range by its own key
    assert inspector.get_pk_constraint(db.WINDOWS)["constrained_columns"] == ["window_start", "Panel_id"]
    assert ("Panel_id", "window_start") in {tuple(ix["column_names"]) for ix in inspector.get_indexes(db.WINDOWS)}
    # a panel's buckets together: its lifetime energy sums every one kept
    assert inspector.get_pk_constraint(db.PANEL_BUCKETS)["constrained_columns"] == ["panel_id", "bucket_start"]
    # the seed's column order, for clients that SELECT *
    assert [c["name"] for c in inspector.get_columns(db.READINGS)] == [
        "Panel_id",
        "power_panel",
        "current_status",
        "time_data",
    ]
    assert db.table(fresh_settings, db.READINGS).c.time_data is not None


@pytest.mark.integration
def test_readonly_user_cannot_write(fresh_settings):
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError, ProgrammingError

    with db.engine(fresh_settings, readonly=True).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM panelData")).scalar() == 0
        with pytest.raises((OperationalError, ProgrammingError)):
            conn.execute(text("DELETE FROM panelData"))


@pytest.mark.integration
def test_panel_ids_are_case_sensitive(fresh_settings):
    from sqlalchemy import text

    with db.engine(fresh_settings, role="migrator").begin() as conn:
        for panel in ("Panel-1", "panel-1"):
            conn.execute(
                text("INSERT INTO panelData VALUES (:p, 1.0, 1, '2026-01-01 00:00:00')"), {"p": panel}
            )
        assert conn.execute(text("SELECT COUNT(*) FROM panelData")).scalar() == 2


@pytest.mark.integration
def test_registry_counts_follow_every_write_to_the_registry(fresh_settings):
    """`registry_counts` (what the overview and fleet energy divide by) equals a count of `panels`
    after inserts, upserts, a panel moved between sites, a REPLACE and deletes."""
    from sqlalchemy import text

    from solar_platform.storage import queries

    def counts(conn) -> tuple[dict[str, int], dict[str, int]]:
        kept = dict(conn.execute(text("SELECT site_id, panels FROM registry_counts WHERE panels <> 0")).all())
        counted = dict(conn.execute(text("SELECT site_id, COUNT(*) FROM panels GROUP BY site_id")).all())
        return kept, counted

    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO sites (site_id, name, latitude, longitude, time_zone, registered_by, "
                          "created_at, updated_at) "
                          "VALUES ('north', 'North', 50, 4, 'UTC', 'test', UTC_TIMESTAMP(), UTC_TIMESTAMP())"))
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w) SELECT CONCAT('p-', seq), 300 FROM seq_1_to_50"))
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w, site_id) VALUES ('n-1', 300, 'north'), "
                          "('p-1', 310, 'default') ON DUPLICATE KEY UPDATE pmax_w = VALUES(pmax_w)"))
        conn.execute(text("UPDATE panels SET site_id = 'north' WHERE panel_id IN ('p-2', 'p-3')"))
        conn.execute(text("UPDATE panels SET pmax_w = 320 WHERE panel_id LIKE 'p-1%'"))  # same site: no change
        conn.execute(text("REPLACE INTO panels (panel_id, pmax_w, site_id) VALUES ('p-4', 300, 'north')"))
        conn.execute(text("DELETE FROM panels WHERE panel_id IN ('p-5', 'n-1')"))
        kept, counted = counts(conn)
        assert kept == counted == {"default": 46, "north": 3}
        assert queries.registered_panels(conn) == 49
        assert queries.registered_panels(conn, "north") == 3
        assert queries.registered_panels(conn, "nowhere") == 0
