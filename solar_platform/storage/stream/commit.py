"""A batch's readings into `panelData` with the derived tables, in the caller's one transaction:
appends in bulk, the rest exactly.

1. The generation of `panel_latest` is read under a shared lock; the in-memory copy is reloaded
   when it moved (a rebuild rewrote `panel_latest`), with what a stopped stream left unsummarized.
2. Each reading is an **append** (newer than its panel's newest stored reading) or a **correction**
   (late, re-sent, or a changed value). Appends go the bulk path (`appends`), corrections the exact
   one (`corrections`), after the appends, so their neighbours include them.
3. `defer_batch` commits a batch of appends of known panels alone, its summaries left for a later
   round (`summaries`); `commit_batch` writes everything, the earlier batches' waiting summaries
   first.
4. The caller swaps in the returned copy of the latest readings only once its transaction commits.

If an append turns out to be stored already (panel_latest behind panelData: a bulk import that
was not rebuilt), `AppendConflict` is raised; the caller rolls back and commits the batch again
with `all_exact=True`, which is right whatever panel_latest says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection

from solar_platform.storage.history import changes
from solar_platform.storage.stream import appends, corrections, summaries
from solar_platform.storage.stream.latest import NONE, LatestReadings
from solar_platform.storage.stream.readings import Readings


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


def all_appends_of_known_panels(readings: Readings, latest: LatestReadings) -> bool:
    """Every reading is its panel's next one, and every panel has readings stored already."""
    positions, is_append = split(readings, latest)
    return bool(is_append.all() and (positions >= 0).all())


def defer_batch(conn: Connection, readings: Readings, latest: LatestReadings, *, query_id: str, batch_id: int,
                timings: dict[str, float] | None = None) -> LatestReadings | None:
    """Commit a batch of appends of known panels without their summaries (`summaries`): raw rows and a
    mark. Returns the latest readings it moves on to, or None (nothing written) when the batch must
    go `commit_batch`'s way: a correction or a new panel in it, a rebuild holding the summaries in
    every batch, or `panel_latest` rewritten since `latest` was read."""
    generation, held = summaries.generation_and_hold(conn)
    if held or latest.generation != generation or not all_appends_of_known_panels(readings, latest):
        return None
    appends.load_appended(conn, readings, timings)
    if len(readings):
        summaries.mark(conn, query_id, batch_id, readings)
    return summaries.Unsummarized(latest, readings).live()


def commit_batch(conn: Connection, readings: Readings, latest: LatestReadings, max_gap_s: float, *,
                 all_exact: bool = False, timings: dict[str, float] | None = None,
                 unsummarized: summaries.Unsummarized | None = None) -> Committed:
    """Write `readings` in the caller's transaction, every derived table in step (see the module
    docstring). `unsummarized`: earlier batches' appends whose summaries wait, summarized here first;
    `latest` then includes them."""
    summaries.scratch_in_memory(conn)
    generation, _ = summaries.generation_and_hold(conn)
    pending = unsummarized or summaries.Unsummarized(latest)
    if latest.generation != generation or pending.summarized.generation != generation:
        summarized = LatestReadings()
        summarized.load(conn, generation)
        pending = summaries.Unsummarized(summarized, summaries.leftovers(conn, summarized))
        latest = pending.live()
    if all_exact:
        is_append = np.zeros(len(readings), dtype=bool)
    else:
        _, is_append = split(readings, latest)
    batch_appends = readings.take(is_append)
    appended = appends.load_appended(conn, batch_appends, timings)
    everything = summaries.Unsummarized(pending.summarized, summaries.concat([pending.readings, batch_appends]))
    working = summaries.summarize(conn, everything, max_gap_s, timings)
    summaries.clear_marks(conn)
    exact = readings.take(~is_append)
    corrected = corrections.apply_corrections(conn, exact, max_gap_s, timings)
    if corrected:
        working.refresh(conn, np.asarray(corrections.changed_panels(conn), dtype=object))
        # Daily figures follow late data: mark the buckets the exact path changed.
        changes.mark_changed_buckets(conn, None, exact_path_changed=True)
    return Committed(appended, corrected, len(exact), working)
