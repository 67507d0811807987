"""The stream's bookkeeping: the lock that keeps a database to one job, dead letters, progress rows
and the pulse of a batch in flight.

- The stage lock is a server-side `GET_LOCK`, held on a connection of its own; it dies with that
  connection, so a crashed job never leaves it behind.
- Dead letters are `INSERT IGNORE` on (topic, partition, offset).
- Progress rows are keyed by (query_id, batch_id) and written in the batch's own transaction, so
  they are the replay guard too: a batch whose row exists committed whole, and a replay of it (the
  same offsets, from Spark's checkpoint) is skipped without looking at a single reading.
- The pulse (`stream_pulse`, one row per query, autocommitted) says a batch is running and since
  when, refreshed every few seconds from a thread of the job: a slow batch is not a stuck one. A
  batch waiting for MariaDB's disk says so there too (`waiting_for`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Connection, text

from solar_platform.storage.db import DEAD_LETTERS, STREAM_PROGRESS, STREAM_PULSE

# The stream's one query: its name on every progress row and its checkpoint's folder. It writes
# panelData and every derived table (panelDataAgg among them; storage.stream.summaries).
READINGS_QUERY = "readings"

_LOCK_NAME_MAX_CHARS = 64  # MariaDB's limit for GET_LOCK names

# dead_letters.kafka_key is VARBINARY(1024): a longer key is cut rather than failing the batch.
DEAD_LETTER_KEY_BYTES = 1024
# stream_progress.profile is VARCHAR(1024).
PROGRESS_PROFILE_CHARS = 1024
# Rows per executemany of dead letters: a hostile burst is written in bounded statements.
_DEAD_LETTER_CHUNK = 500
# The lock's connection sits idle between batches: the server must not time it out (one year).
_LOCK_CONNECTION_WAIT_TIMEOUT_S = 31_536_000



def stage_lock_name(database: str) -> str:
    """The stage lock of the stream writing `database` (advisory lock names are server-wide)."""
    name = f"solar_platform.stream.{database}"
    if len(name) > _LOCK_NAME_MAX_CHARS:
        name = "solar_platform.stream." + hashlib.sha256(database.encode()).hexdigest()[:40]
    return name


_DEAD_LETTER_INSERT = text(
    f"INSERT IGNORE INTO `{DEAD_LETTERS}` (kafka_topic, kafka_partition, kafka_offset, kafka_key, payload, reason, "
    "kafka_timestamp) VALUES (:topic, :partition, :offset, :key, :payload, :reason, :timestamp)"
)

_PROGRESS_INSERT = text(
    f"INSERT INTO `{STREAM_PROGRESS}` (query_id, query_name, batch_id, rows_in, rows_written, dead_letters, "
    "readings_appended, readings_corrected, max_event_time, frontier_time, duration_ms, profile, recorded_at) "
    "VALUES (:query_id, :query_name, :batch_id, :rows_in, :rows_written, :dead_letters, :appended, :corrected, "
    ":max_event_time, :frontier_time, :duration_ms, :profile, UTC_TIMESTAMP(3))"
)
_COMMITTED = text(f"SELECT 1 FROM `{STREAM_PROGRESS}` WHERE query_id = :query_id AND batch_id = :batch_id")
_PULSE = text(
    f"INSERT INTO `{STREAM_PULSE}` (query_name, batch_id, batch_started_at, pulse_at, in_flight, waiting_for, "
    "waiting_since) VALUES (:query_name, :batch_id, :started_at, UTC_TIMESTAMP(3), :in_flight, :waiting_for, "
    ":waiting_since) "
    "ON DUPLICATE KEY UPDATE batch_id = VALUES(batch_id), batch_started_at = VALUES(batch_started_at), "
    "pulse_at = VALUES(pulse_at), in_flight = VALUES(in_flight), waiting_for = VALUES(waiting_for), "
    "waiting_since = VALUES(waiting_since)"
)
# `stream_pulse.waiting_for` is VARCHAR(255).
WAITING_FOR_CHARS = 255


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


def batch_committed(connection: Connection, query_id: str, batch_id: int) -> bool:
    """True when this batch's progress row exists: it committed whole, and a replay must be skipped.
    Read in the batch's own transaction, after the stage lock is verified."""
    return connection.execute(_COMMITTED, {"query_id": query_id, "batch_id": batch_id}).first() is not None


def record_progress(connection: Connection, *, query_id: str, query_name: str, batch_id: int, rows_in: int,
                    rows_written: int, dead_letters: int, appended: int, corrected: int,
                    max_event_time: datetime | None, frontier_time: datetime | None, duration_ms: int,
                    profile: Mapping[str, int]) -> None:
    """The micro-batch's progress row (the stream's heartbeat and replay guard), stamped with the
    server's UTC clock, in the batch's transaction.

    Times are naive UTC; `profile` (ms per step) is kept as compact JSON, cut to the column.
    """
    connection.execute(_PROGRESS_INSERT, {
        "query_id": query_id, "query_name": query_name, "batch_id": batch_id, "rows_in": rows_in,
        "rows_written": rows_written, "dead_letters": dead_letters, "appended": appended, "corrected": corrected,
        "max_event_time": max_event_time, "frontier_time": frontier_time, "duration_ms": duration_ms,
        "profile": json.dumps(dict(profile), separators=(",", ":"))[:PROGRESS_PROFILE_CHARS],
    })


def record_pulse(connection: Connection, *, query_name: str, batch_id: int, started_at: datetime,
                 in_flight: bool, waiting_for: str | None = None, waiting_since: datetime | None = None) -> None:
    """The batch in flight (or the last one, done): autocommitted, outside the batch's transaction.

    `waiting_for` says what a batch in flight waits for (MariaDB's disk full), since `waiting_since`
    (naive UTC); None while it runs."""
    connection.execute(_PULSE, {"query_name": query_name, "batch_id": batch_id, "started_at": started_at,
                                "in_flight": int(in_flight),
                                "waiting_for": None if waiting_for is None else waiting_for[:WAITING_FOR_CHARS],
                                "waiting_since": waiting_since})
