"""Schema migrations: the `sql/` files (yoyo-migrations), then what every migrated database needs.

Above `db.py` (names and engines), `retention.py` (day partitions) and `users.py` (table rights),
which it runs in that order, so none of them has to import it back.
"""

from __future__ import annotations

from pathlib import Path

from solar_platform.settings import Settings
from solar_platform.storage.db import engine
from solar_platform.storage.retention import ensure_day_partitions
from solar_platform.storage.users import grant_table_rights

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


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
        ensure_day_partitions(settings)
        # Rights on every table, the new ones included, for each platform user.
        with engine(settings).begin() as conn:
            grant_table_rights(conn, settings)
    return [m.id for m in pending]
