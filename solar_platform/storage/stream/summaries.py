"""Summaries apart from the batch: appends are committed at once, their windows, energy buckets and
latest rows a few seconds later, for every batch since, in one transaction.

Why: a batch writes each panel it touches once in each summary, whatever its number of readings.
At 200k panels every 5 s a 2-4 s batch touches most of the fleet, so writing its summaries in
its own transaction costs ~7 s a batch and the stream falls behind. Summarized every few seconds
instead, a panel's rows are written once a round for all of its readings since.

**Exact by one rule**: the summaries hold exactly panelData's readings up to each panel's
`panel_latest` row; the unsummarized ones are the appends after it. So only appends of known
panels wait (a batch with a correction or a panel's first reading summarizes everything in its own
transaction, as before), and a batch that waits records a mark (`stream_unsummarized`: its query,
batch and oldest append) in its transaction. The round that summarizes it deletes the mark in its
own. A stream killed in between finds the marks at its next start and summarizes panelData's
readings newer than their panel's `panel_latest` row, from the oldest mark on (`leftovers`), first.

**Rebuilds** recompute summaries from panelData and would count a waiting append twice: while one
runs, it holds the summaries in every batch (`in_every_batch`) and waits for the marks to go; with
no stream running, it summarizes what a killed one left itself, under the stream's stage lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

from solar_platform.storage.db import DERIVED_GENERATION, PANEL_LATEST, READINGS, STREAM_UNSUMMARIZED
from solar_platform.storage.history import changes
from solar_platform.storage.stream import appends
from solar_platform.storage.stream.latest import LatestReadings, bump_generation
from solar_platform.storage.stream.offsets import utc_naive
from solar_platform.storage.stream.readings import Readings

log = logging.getLogger(__name__)

SCRATCH_BYTES = 1 << 30
_SCRATCH_IN_MEMORY = text(f"SET SESSION tmp_table_size = {SCRATCH_BYTES}, max_heap_table_size = {SCRATCH_BYTES}")
# A rebuild holds the summaries in every batch this long at a time, renewed as it goes: one that
# dies lets the stream go back to summarizing apart.
HOLD = timedelta(minutes=10)

_EPOCH_US = "TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', {})"
_GENERATION_AND_HOLD = text(
    f"SELECT generation, COALESCE(summaries_in_every_batch_until > UTC_TIMESTAMP(3), 0) FROM {DERIVED_GENERATION} "
    "WHERE id = 1 LOCK IN SHARE MODE")
_MARK = text(f"INSERT INTO {STREAM_UNSUMMARIZED} (query_id, batch_id, earliest_time, readings) "
             "VALUES (:query, :batch, :earliest, :readings)")
_CLEAR_SOME = text(f"DELETE FROM {STREAM_UNSUMMARIZED} WHERE query_id = :query AND batch_id IN :batches"
                   ).bindparams(bindparam("batches", expanding=True))
_OLDEST_MARK = text(f"SELECT MIN(earliest_time) FROM {STREAM_UNSUMMARIZED}")
_LEFTOVERS = text(
    f"SELECT d.Panel_id, {_EPOCH_US.format('d.time_data')}, d.power_panel, d.current_status "
    f"FROM {READINGS} d JOIN {PANEL_LATEST} l ON l.panel_id = d.Panel_id "
    "WHERE d.time_data >= :oldest AND d.time_data > l.last_seen")


class Unsummarized:
    """Appends stored in panelData whose summaries wait, and the latest rows the summaries hold."""

    def __init__(self, summarized: LatestReadings, readings: Readings | None = None) -> None:
        self.summarized = summarized
        self.readings = readings if readings is not None else Readings.empty()

    def live(self) -> LatestReadings:
        """The latest readings as panelData holds them: the summarized ones, moved on by the appends."""
        live = self.summarized.copy()
        if len(self.readings):
            positions = self.summarized.positions(self.readings.panel_ids)
            appends.apply_to_latest(live, self.readings, appends.latest_rows(self.readings, positions,
                                                                             self.summarized))
        return live


def concat(parts: Sequence[Readings]) -> Readings:
    """Appends of several batches as one `Readings`, sorted by (panel, time). A panel's appends of a
    later batch are all newer than those of an earlier one, so (panel, time) stays unique."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return Readings.empty()
    if len(parts) == 1:
        return parts[0]
    codes, ids = pd.factorize(np.concatenate([part.panel_ids[part.panel] for part in parts]))
    panel = codes.astype(np.int64)
    time_us = np.concatenate([part.time_us for part in parts])
    order = np.lexsort((time_us, panel))
    return Readings(np.asarray(ids, dtype=object), panel[order], time_us[order],
                    np.concatenate([part.power for part in parts])[order],
                    np.concatenate([part.status for part in parts])[order])


def scratch_in_memory(conn: Connection) -> None:
    """The scratch tables (MEMORY, sized when created) and GROUP BYs stay in memory: the defaults
    (16 MB) hold a few thousand windows, a batch or a round at 200k panels makes hundreds of thousands."""
    conn.execute(_SCRATCH_IN_MEMORY)


def generation_and_hold(conn: Connection) -> tuple[int, bool]:
    """The derived generation and whether a rebuild holds the summaries in every batch, read under a
    shared lock: neither moves until this transaction ends."""
    generation, held = conn.execute(_GENERATION_AND_HOLD).one()
    return int(generation), bool(held)


def mark(conn: Connection, query_id: str, batch_id: int, readings: Readings) -> None:
    """Record, in the batch's transaction, that its appends wait for their summaries."""
    conn.execute(_MARK, {"query": query_id, "batch": batch_id, "earliest": utc_naive(int(readings.time_us.min())),
                         "readings": len(readings)})


def clear_marks(conn: Connection, batches: Sequence[tuple[str, int]] | None = None) -> int:
    """Delete the marks of `batches` (query id, batch id), or all of them: their appends are
    summarized. Returns the marks deleted."""
    if batches is None:
        return conn.execute(text(f"DELETE FROM {STREAM_UNSUMMARIZED}")).rowcount
    deleted = 0
    for query_id in {query for query, _ in batches}:
        ids = [batch for query, batch in batches if query == query_id]
        deleted += conn.execute(_CLEAR_SOME, {"query": query_id, "batches": ids}).rowcount
    return deleted


def marks_left(conn: Connection) -> bool:
    """Whether any batch waits for its summaries."""
    return conn.execute(text(f"SELECT 1 FROM {STREAM_UNSUMMARIZED} LIMIT 1")).first() is not None


def leftovers(conn: Connection, summarized: LatestReadings) -> Readings:
    """What a stream left unsummarized (see the module docstring): panelData's readings newer than
    their panel's `panel_latest` row, from the oldest mark on. Empty without marks."""
    oldest = conn.execute(_OLDEST_MARK).scalar()
    if oldest is None:
        return Readings.empty()
    rows = conn.execute(_LEFTOVERS, {"oldest": oldest}).all()
    if not rows:
        return Readings.empty()
    ids, time_us, power, status = (np.asarray(column) for column in zip(*rows, strict=True))
    codes, unique = pd.factorize(ids.astype(object))
    panel, time_us = codes.astype(np.int64), time_us.astype(np.int64)
    order = np.lexsort((time_us, panel))
    log.warning("%d readings of %d panels were stored without their summaries (a stream stopped in between): "
                "summarizing them first", len(rows), len(unique))
    return Readings(np.asarray(unique, dtype=object), panel[order], time_us[order],
                    power.astype(np.float64)[order], status.astype(np.int8)[order])


def summarize(conn: Connection, pending: Unsummarized, max_gap_s: float,
              timings: dict[str, float] | None = None) -> LatestReadings:
    """Write `pending`'s windows, energy buckets (and their change marks) and latest rows in the
    caller's transaction; returns the latest readings the summaries then hold."""
    working = pending.summarized.copy()
    readings = pending.readings
    if not len(readings):
        return working
    scratch_in_memory(conn)
    positions = pending.summarized.positions(readings.panel_ids)
    plan = appends.plan_appends(readings, positions, pending.summarized, max_gap_s)
    appends.write_summaries(conn, plan, timings)
    appends.apply_to_latest(working, readings, plan.latest)
    # Daily figures follow late data: mark the buckets changed (storage/history/changes.py).
    changes.mark_changed_buckets(conn, plan.buckets.bucket_start_s, exact_path_changed=False)
    return working


def write_round(conn: Connection, summarized: LatestReadings, waiting: Sequence[tuple[str, int, Readings]],
                max_gap_s: float, timings: dict[str, float] | None = None) -> LatestReadings | None:
    """One round, in the caller's transaction: the summaries of the `waiting` batches (query id,
    batch id, appends) on top of `summarized`, and their marks deleted. Returns the latest readings the
    summaries then hold, or None when `panel_latest` or the marks moved behind the caller (a rebuild
    or another job): the caller rolls back and reloads."""
    generation, _ = generation_and_hold(conn)
    if generation != summarized.generation:
        return None
    readings = concat([chunk for _, _, chunk in waiting])
    now = summarize(conn, Unsummarized(summarized, readings), max_gap_s, timings)
    if clear_marks(conn, [(query, batch) for query, batch, _ in waiting]) != len(waiting):
        return None
    return now


def summarize_leftovers(conn: Connection, max_gap_s: float) -> int:
    """Summarize what a killed stream left, in the caller's transaction (the caller holds the stream's
    stage lock); returns the readings summarized."""
    generation, _ = generation_and_hold(conn)
    summarized = LatestReadings()
    summarized.load(conn, generation)
    left = leftovers(conn, summarized)
    summarize(conn, Unsummarized(summarized, left), max_gap_s)
    clear_marks(conn)
    bump_generation(conn)  # panel_latest moved behind any stream's copy
    return len(left)


# ---------------------------------------------------------------------------------- rebuilds
def _hold(engine: Engine, until: str) -> None:
    with engine.begin() as conn:  # waits for the batches in flight (they read the row under a shared lock)
        conn.execute(text(f"UPDATE {DERIVED_GENERATION} SET summaries_in_every_batch_until = {until} WHERE id = 1"))


def _marks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {STREAM_UNSUMMARIZED}")).scalar_one())


def _summarize_if_no_stream(engine: Engine, stage_lock: str, max_gap_s: float) -> bool:
    """Summarize a killed stream's leftovers when no stream holds `stage_lock`; False if one does."""
    with engine.connect() as conn:
        taken = conn.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": stage_lock}).scalar()
        conn.commit()  # the lock is the connection's, not the transaction's
        if not taken:
            return False
        try:
            with conn.begin():
                summarized = summarize_leftovers(conn, max_gap_s)
            log.info("summarized %d readings a stopped stream left", summarized)
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": stage_lock})
            conn.commit()
    return True


@contextmanager
def in_every_batch(engine: Engine, stage_lock: str, max_gap_s: float, wait_seconds: float = 300.0
                   ) -> Iterator[Callable[[], None]]:
    """For a rebuild: the stream writes summaries in every batch's transaction until the block ends,
    and none wait when it begins (see the module docstring). Yields a function that renews the hold
    (call it between chunks). `engine` must allow `LOAD DATA LOCAL` (`db.engine(..., bulk_load=True)`).

    Raises `TimeoutError` when a running stream leaves marks for `wait_seconds`."""
    hold_until = f"UTC_TIMESTAMP(3) + INTERVAL {int(HOLD.total_seconds())} SECOND"
    _hold(engine, hold_until)
    try:
        deadline = time.monotonic() + wait_seconds
        while _marks(engine):
            if _summarize_if_no_stream(engine, stage_lock, max_gap_s):
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stream still had readings to summarize after {wait_seconds:.0f} s")
            time.sleep(0.5)
        yield lambda: _hold(engine, hold_until)
    finally:
        _hold(engine, "NULL")
