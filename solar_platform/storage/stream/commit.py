"""A batch's readings into `panelData` with every derived table in step: appends in bulk, the rest
exactly, in the caller's one transaction.

1. The generation of `panel_latest` is read under a shared lock; the in-memory copy is reloaded
   when it moved (a rebuild rewrote `panel_latest`).
2. Each reading is an **append** (newer than its panel's newest stored reading) or a **correction**
   (late, re-sent, or a changed value). Appends go the bulk path (`appends`), corrections the exact
   one (`corrections`), after the appends, so their neighbours include them.
3. The caller swaps in the returned copy of the latest readings only once its transaction commits.

If an append turns out to be stored already (panel_latest behind panelData: a bulk import that
was not rebuilt), `AppendConflict` is raised; the caller rolls back and commits the batch again
with `all_exact=True`, which is right whatever panel_latest says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text

from solar_platform.storage.history import changes
from solar_platform.storage.stream import appends, corrections
from solar_platform.storage.stream.latest import NONE, LatestReadings, current_generation
from solar_platform.storage.stream.readings import Readings

SCRATCH_BYTES = 1 << 30


@dataclass(frozen=True)
class Committed:
    appended: int  # readings that took the bulk path
    corrected: int  # readings that took the exact path and were new or changed
    received_for_exact_path: int  # readings sent down the exact path (changed or not)
    latest: LatestReadings  # the copy to keep once the transaction commits


def split(readings: Readings, latest: LatestReadings) -> tuple[np.ndarray, np.ndarray]:
    """(per batch panel code: its row in `latest` or -1, per reading: is it an append)."""
    positions = latest.positions(readings.panel_ids)
    newest = latest.at(latest.last_us, positions, NONE)
    return positions, readings.time_us > newest[readings.panel]


def commit_batch(conn: Connection, readings: Readings, latest: LatestReadings, max_gap_s: float, *,
                 all_exact: bool = False, timings: dict[str, float] | None = None) -> Committed:
    """Write `readings` in the caller's transaction (see the module docstring)."""
    # A batch's scratch tables (MEMORY, sized when created) and its GROUP BYs stay in memory; the
    # defaults (16 MB) hold a few thousand windows, a catch-up batch makes hundreds of thousands.
    conn.execute(text(f"SET SESSION tmp_table_size = {SCRATCH_BYTES}, max_heap_table_size = {SCRATCH_BYTES}"))
    generation = current_generation(conn)
    if latest.generation != generation:
        latest = LatestReadings()
        latest.load(conn, generation)
    working = latest.copy()
    if all_exact:
        positions, is_append = working.positions(readings.panel_ids), np.zeros(len(readings), dtype=bool)
    else:
        positions, is_append = split(readings, working)
    appended = 0
    appended_buckets = None
    if is_append.any():
        plan = appends.plan_appends(readings.take(is_append), positions, working, max_gap_s)
        appended = appends.write_appends(conn, plan, timings)
        appends.apply_to_latest(working, plan)
        appended_buckets = plan.buckets.bucket_start_s
    exact = readings.take(~is_append)
    corrected = corrections.apply_corrections(conn, exact, max_gap_s, timings)
    if corrected:
        working.refresh(conn, np.asarray(corrections.changed_panels(conn), dtype=object))
    # Daily figures follow late data: mark the buckets this batch changed (storage/history/changes.py).
    changes.mark_changed_buckets(conn, appended_buckets, exact_path_changed=corrected > 0)
    return Committed(appended, corrected, len(exact), working)
