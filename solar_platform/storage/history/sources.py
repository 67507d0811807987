"""Where the readings of a time range can be read from: panelData while retention has not dropped
them, the raw archive before that.

Retention drops whole UTC day partitions and notes, per table, the instant before which readings
are gone (`retention_horizons`, written by `storage.retention`). That note, not the settings, says
what is retained: a database that never dropped a partition holds everything it was given.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from solar_platform.storage.db import READINGS, RETENTION_HORIZONS


def raw_dropped_before(conn: Connection) -> datetime | None:
    """The instant before which panelData's readings were dropped by retention; None if never."""
    return conn.execute(text(f"SELECT dropped_before FROM {RETENTION_HORIZONS} WHERE table_name = :t"),
                        {"t": READINGS}).scalar()


def raw_retained(conn: Connection, start: datetime) -> bool:
    """True when panelData still holds every reading from `start` (naive UTC) on."""
    dropped = raw_dropped_before(conn)
    return dropped is None or start >= dropped
