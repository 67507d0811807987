"""How a rebuild computed outside MariaDB (on Spark) writes a chunk beside the live stream.

Spark reads a chunk's readings and computes its rows while the stream keeps committing batches, so
by the time the rows are written a batch may have changed the chunk (a late reading): writing over
it would lose that change. Each write transaction (READ COMMITTED, one per panel range) therefore:

1. holds the stream off (`hold_stream_off`: the `derived_generation` row FOR UPDATE, which every
   batch reads in share mode first): it waits for a batch in flight, and the next one waits for it;
2. compares the chunk's change marks (`storage.history.changes`, written in each batch's own
   transaction) with those read before Spark read the chunk: unchanged means nothing the rows miss;
3. only then replaces the range's rows (`replace_rows`). When they changed, the caller recomputes
   the range exactly in MariaDB in the same transaction, or computes the chunk again.

The stream waits for at most one such transaction at a time: a panel range's delete and load.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, text

from solar_platform.storage.db import DERIVED_GENERATION, PANEL_BUCKETS, WINDOWS
from solar_platform.storage.energy import PanelRange, panel_range_sql
from solar_platform.storage.history import changes
from solar_platform.storage.stream import bulk

_HOLD = text(f"SELECT generation FROM {DERIVED_GENERATION} WHERE id = 1 FOR UPDATE")


def hold_stream_off(conn: Connection) -> None:
    """Until the caller's transaction ends, no stream batch runs (see the module docstring)."""
    conn.execute(_HOLD)


def changed_since(conn: Connection, start: datetime, end: datetime, seen: Sequence[changes.Mark]) -> bool:
    """True when a batch changed a bucket of `[start, end)` since the marks `seen` were read."""
    return [(m.bucket_start, m.version) for m in changes.marks(conn, start, end)] != [
        (m.bucket_start, m.version) for m in seen]


def replace_rows(conn: Connection, start: datetime, end: datetime, panels: PanelRange,
                 window_columns: Sequence[bulk.Column] | None, bucket_columns: Sequence[bulk.Column]) -> None:
    """Replace a panel range's windows (unless None) and panel buckets starting in `[start, end)` with
    the given rows, in the caller's transaction (the fleet buckets are the caller's next step)."""
    params = {"a": start, "b": end, "lo": panels[0], "hi": panels[1]}
    if window_columns is not None:
        conn.execute(text(f"DELETE FROM {WINDOWS} WHERE window_start >= :a AND window_start < :b "
                          f"AND {panel_range_sql('Panel_id', panels)}"), params)
        bulk.load(conn, WINDOWS, window_columns)
    conn.execute(text(f"DELETE FROM {PANEL_BUCKETS} WHERE bucket_start >= :a AND bucket_start < :b "
                      f"AND {panel_range_sql('panel_id', panels)}"), params)
    bulk.load(conn, PANEL_BUCKETS, bucket_columns)
