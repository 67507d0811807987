"""MariaDB's disk full, as Dagster shows it: one alarm that names the disk.

The stream holds its batch and retries it while MariaDB's disk is full (`streaming.sink`). It says
so in its wait file beside the checkpoint (`runtime.stream_wait`), which needs no MariaDB, and in
its pulse row when MariaDB still takes that small update. Dagster reads the file first:

- the `stream_heartbeat` sensor never restarts a waiting stream (a restart would replay the batch
  into the same full disk). Its tick says what is wrong and where, it observes `spark_stream`,
  and it evaluates the `mariadb_disk` check on `spark_stream` when the state changes: failed
  (severity ERROR) while the disk is full, passed once the stream committed again;
- the sensor also opens, and then resolves, the `disk_full` row of `platform_alerts` for the API's
  health. That row is a write to the full disk, so it is best effort: the check and the tick are
  recorded in Dagster's own storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from solar_platform.orchestration import keys
from solar_platform.runtime import stream_wait
from solar_platform.settings import Settings
from solar_platform.storage import db, pipeline_status
from solar_platform.storage.health.alerts import DISK_FULL, apply_platform_alarm

CHECK_NAME = "mariadb_disk"


@dataclass(frozen=True)
class DiskAlarm:
    """The stream waits for MariaDB's disk: what to tell an operator."""

    batch_id: int
    waiting_seconds: float
    description: str
    metadata: dict[str, str | int | float]


def disk_alarm(settings: Settings, pulse: pipeline_status.Pulse | None, now: datetime) -> DiskAlarm | None:
    """The stream's wait for MariaDB's disk, from its wait file or else its pulse; None when it does not wait."""
    wait = stream_wait.current_wait(settings, now)
    if wait is not None and wait.kind == stream_wait.MARIADB_DISK_FULL:
        waited = max(0.0, (now - wait.since).total_seconds())
        return DiskAlarm(wait.batch_id, waited, wait.describe(now), {
            "waiting_for": "mariadb_disk", "mariadb": wait.server, "data_dir": wait.data_dir or "unknown",
            "error": wait.error, "batch_in_flight": wait.batch_id, "attempts": wait.attempts,
            "waiting_seconds": round(waited, 1), "source": "wait file"})
    if (pulse is not None and pulse.in_flight and pulse.waiting_for is not None
            and pulse.age_seconds(now) <= settings.stream_stale_after_seconds):
        since = pulse.waiting_since or pulse.batch_started_at
        waited = max(0.0, (now - since).total_seconds())
        return DiskAlarm(pulse.batch_id, waited, (
            f"The stream is paused, MariaDB's {pulse.waiting_for}: it holds batch {pulse.batch_id} "
            f"({waited:.0f} s so far) and resumes by itself once there is space; nothing is lost."), {
            "waiting_for": "mariadb_disk", "error": pulse.waiting_for, "batch_in_flight": pulse.batch_id,
            "waiting_seconds": round(waited, 1), "source": "stream_pulse"})
    return None


def check_evaluation(alarm: DiskAlarm | None) -> dg.AssetCheckEvaluation:
    """The `mariadb_disk` check's verdict, as the sensor records it."""
    if alarm is None:
        return dg.AssetCheckEvaluation(
            asset_key=keys.SPARK_STREAM, check_name=CHECK_NAME, passed=True, severity=dg.AssetCheckSeverity.ERROR,
            description="The stream is not waiting for MariaDB's disk.")
    return dg.AssetCheckEvaluation(
        asset_key=keys.SPARK_STREAM, check_name=CHECK_NAME, passed=False, severity=dg.AssetCheckSeverity.ERROR,
        description=alarm.description, metadata=dict(alarm.metadata))


def record_platform_alarm(settings: Settings, alarm: DiskAlarm | None, now: datetime) -> str:
    """Open or confirm (alarm) or resolve (None) the `disk_full` platform alert; says how it went,
    since on a full disk even this small write may fail."""
    detail = alarm.description if alarm is not None else "the stream committed again"
    try:
        with db.engine(settings).begin() as conn:
            apply_platform_alarm(conn, DISK_FULL, alarm is not None, detail,
                                 None if alarm is None else alarm.waiting_seconds, now)
    except SQLAlchemyError as error:
        return f"not recorded ({type(error).__name__}: {str(getattr(error, 'orig', error))[:120]})"
    return "recorded"
