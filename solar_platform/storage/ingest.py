"""The stream's writes: its stage, the lock that keeps the stage to one job, dead letters, progress rows.

Every statement the streaming job sends to MariaDB lives here; `streaming/` only decides when.

- The stage (`stage_panel_data`) is shared by every job on a database, so rows carry the writing
  job's id and a job only ever touches its own (`clear_stage`, `merge_stage`).
- The stage lock is a server-side `GET_LOCK`, held on a connection of its own; it dies with that
  connection, so a crashed job never leaves it behind.
- Dead letters are `INSERT IGNORE` on (topic, partition, offset) and progress rows are keyed by
  (query_id, batch_id): a replayed micro-batch writes the same rows again, never new ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Connection, text

from solar_platform import contracts
from solar_platform.storage import energy
from solar_platform.storage.db import DEAD_LETTERS, STAGE_READINGS, STREAM_PROGRESS

# The stream's one query: its name on every progress row and its checkpoint's folder. It writes
# panelData and, in the same transaction, every derived table (panelDataAgg among them).
READINGS_QUERY = "readings"

# The stage's columns, in the order Spark's JDBC writer appends them.
STAGE_JOB_ID = "job_id"
STAGE_COLUMNS = (STAGE_JOB_ID, *contracts.FIELDS)

# dead_letters.kafka_key is VARBINARY(1024): a longer key is cut rather than failing the batch.
DEAD_LETTER_KEY_BYTES = 1024
# stream_progress.profile is VARCHAR(1024).
PROGRESS_PROFILE_CHARS = 1024
# Rows per executemany of dead letters: a hostile burst is written in bounded statements.
_DEAD_LETTER_CHUNK = 500
# The lock's connection sits idle between batches: the server must not time it out (one year).
_LOCK_CONNECTION_WAIT_TIMEOUT_S = 31_536_000

_CLEAR_STAGE = text(f"DELETE FROM `{STAGE_READINGS}` WHERE {STAGE_JOB_ID} = :job")

_DEAD_LETTER_INSERT = text(
    f"INSERT IGNORE INTO `{DEAD_LETTERS}` (kafka_topic, kafka_partition, kafka_offset, kafka_key, payload, reason, "
    "kafka_timestamp) VALUES (:topic, :partition, :offset, :key, :payload, :reason, :timestamp)"
)

_PROGRESS_UPSERT = text(
    f"INSERT INTO `{STREAM_PROGRESS}` (query_id, query_name, batch_id, rows_in, rows_written, dead_letters, "
    "max_event_time, duration_ms, profile, recorded_at) VALUES (:query_id, :query_name, :batch_id, :rows_in, "
    ":rows_written, :dead_letters, :max_event_time, :duration_ms, :profile, UTC_TIMESTAMP(3)) "
    "ON DUPLICATE KEY UPDATE rows_in = VALUES(rows_in), rows_written = VALUES(rows_written), "
    "dead_letters = VALUES(dead_letters), max_event_time = VALUES(max_event_time), "
    "duration_ms = VALUES(duration_ms), profile = VALUES(profile), recorded_at = VALUES(recorded_at)"
)


# ------------------------------------------------------------------------------------ stage lock
def take_stage_lock(connection: Connection, name: str) -> bool:
    """Try to take the advisory lock `name` on `connection`, without waiting; True when it is ours.

    Also keeps the (otherwise idle) connection from timing out, since the lock lives as long as it.
    """
    connection.execute(text(f"SET SESSION wait_timeout = {_LOCK_CONNECTION_WAIT_TIMEOUT_S}"))
    return connection.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar() == 1


def stage_lock_holder(connection: Connection, name: str) -> int | None:
    """The MariaDB connection id holding the lock `name`, or None when nobody does."""
    holder = connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": name}).scalar()
    return None if holder is None else int(holder)


def connection_id(connection: Connection) -> int:
    return int(connection.execute(text("SELECT CONNECTION_ID()")).scalar_one())


def release_stage_lock(connection: Connection, name: str) -> None:
    connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})


# ------------------------------------------------------------------------------------ the stage
def clear_stage(connection: Connection, job_id: int) -> None:
    """Drop what this job left on the stage (a batch that crashed after staging)."""
    connection.execute(_CLEAR_STAGE, {"job": job_id})


def merge_stage(connection: Connection, job_id: int, max_gap_s: float, timings: dict[str, float] | None = None) -> int:
    """Move this job's staged readings into panelData with every derived table kept in step
    (`energy.apply_batch`), then clear them from the stage; returns the readings new or changed.

    Runs in the caller's transaction, so the batch's dead letters and progress row commit with it.
    """
    written = energy.apply_batch(connection, STAGE_READINGS, job_id, max_gap_s, timings)
    clear_stage(connection, job_id)
    return written


# ------------------------------------------------------------------------- dead letters, progress
def insert_dead_letters(connection: Connection, rows: Iterable[Mapping[str, object]]) -> None:
    """Rows of (topic, partition, offset, key, payload, reason, timestamp); a repeat is ignored."""
    chunk: list[Mapping[str, object]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= _DEAD_LETTER_CHUNK:
            connection.execute(_DEAD_LETTER_INSERT, chunk)
            chunk = []
    if chunk:
        connection.execute(_DEAD_LETTER_INSERT, chunk)


def record_progress(connection: Connection, *, query_id: str, query_name: str, batch_id: int, rows_in: int,
                    rows_written: int, dead_letters: int, max_event_time: datetime | None, duration_ms: int,
                    profile: Mapping[str, int]) -> None:
    """The micro-batch's progress row (the stream's heartbeat), stamped with the server's UTC clock.

    `max_event_time` is naive UTC; `profile` (ms per step) is kept as compact JSON, cut to the column.
    """
    connection.execute(_PROGRESS_UPSERT, {
        "query_id": query_id, "query_name": query_name, "batch_id": batch_id, "rows_in": rows_in,
        "rows_written": rows_written, "dead_letters": dead_letters, "max_event_time": max_event_time,
        "duration_ms": duration_ms,
        "profile": json.dumps(dict(profile), separators=(",", ":"))[:PROGRESS_PROFILE_CHARS],
    })
