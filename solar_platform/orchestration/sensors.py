"""Sensors: the stream's heartbeat, panel health, and a record of failed runs."""


import json
from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from solar_platform.orchestration.assets.live import PANEL_ALERTS
from solar_platform.orchestration.checks import stream_lag_figures
from solar_platform.orchestration.jobs import restart_stream
from solar_platform.orchestration.resources import (
    EXTERNAL_STATE,
    KafkaResource,
    MonitoringResource,
    ProcessControl,
    SolarSettingsResource,
)
from solar_platform.storage import alerts, db, retention

STREAM_ASSET = dg.AssetKey("spark_stream")
# supervisord states in which the stream should be running but is not (STOPPED = an operator's choice)
_DEAD_STATES = ("EXITED", "FATAL", "BACKOFF", "UNKNOWN")


@dg.sensor(job=restart_stream, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reads the stream's heartbeat (stream_progress). When no micro-batch was recorded "
                       "within N x the trigger interval while 'stream' should run, or the process died, it "
                       "records an observation on spark_stream and requests a restart from the checkpoint.")
def stream_heartbeat(context: dg.SensorEvaluationContext, solar: SolarSettingsResource,
                     monitoring: MonitoringResource, processes: ProcessControl,
                     kafka: KafkaResource) -> dg.SensorResult | dg.SkipReason:
    settings = solar.get()
    now = datetime.now(UTC)
    with db.engine(settings).connect() as conn:  # an index seek and the last hour's rows: no COUNT(*)
        beat = retention.heartbeat(conn, now)
    heartbeat, batches = beat.last, beat.batches_last_hour
    info = processes.info("stream")
    state = info["state"]
    limit = monitoring.heartbeat_limit_seconds(settings)
    age = None if heartbeat is None else (now - heartbeat).total_seconds()
    started = datetime.fromisoformat(info["started_at"]) if info.get("started_at") else None
    since_start = None if started is None else (now - started).total_seconds()

    if state in ("STOPPED", "NO_SUPERVISOR"):
        return dg.SkipReason(f"stream is {state}: not launched (or stopped by an operator); nothing to restart")
    if state == EXTERNAL_STATE:  # compose restarts the container when it exits; a stuck one is the operator's
        return dg.SkipReason(f"the stream is not Dagster's to restart: {info['description']}")
    if state == "STARTING" or (since_start is not None and since_start < limit and (age is None or age > limit)):
        return dg.SkipReason(f"stream started {since_start or 0:.0f} s ago; waiting for its first heartbeat")
    dead = state in _DEAD_STATES
    stale = age is None or age > limit
    if not dead and not stale:
        return dg.SkipReason(f"stream healthy: last batch {age:.0f} s ago (limit {limit:.0f} s), state {state}")

    # No batch runs without new input: a stale heartbeat with nothing left to read is an idle
    # stream (fleet stopped, night), never restarted. Only input waiting behind it means stuck.
    behind: int | None = None
    if not dead:
        try:
            behind = int(stream_lag_figures(settings, kafka)["messages_behind"])
        except Exception as exc:  # noqa: BLE001 - Kafka down: a restart would not help either
            return dg.SkipReason(f"heartbeat {age if age is not None else float('inf'):.0f} s old and Kafka's end "
                                 f"offsets are unreadable ({type(exc).__name__}); not restarting")
        if behind == 0:
            return dg.SensorResult(asset_events=[dg.AssetObservation(asset_key=STREAM_ASSET, metadata={
                "idle": True, "messages_behind": 0, "process_state": state,
                "heartbeat_age_seconds": round(age, 1) if age is not None else -1.0})],
                skip_reason=dg.SkipReason("stream idle: every message on the topic is committed; nothing to do"))

    cursor = json.loads(context.cursor) if context.cursor else {}
    last_request = cursor.get("last_restart_request", 0.0)
    observation = dg.AssetObservation(asset_key=STREAM_ASSET, metadata={
        "heartbeat_stale": stale, "process_state": state, "pid": info.get("pid", 0),
        "last_heartbeat": heartbeat.isoformat() if heartbeat else "never",
        "heartbeat_age_seconds": round(age, 1) if age is not None else -1.0,
        "stale_after_seconds": limit, "batches_last_hour": batches,
        "messages_behind": behind if behind is not None else -1})
    if now.timestamp() - last_request < monitoring.restart_grace_seconds:
        return dg.SensorResult(asset_events=[observation], skip_reason=dg.SkipReason(
            "stream still unhealthy; a restart was requested less than the grace period ago"))
    context.update_cursor(json.dumps({"last_restart_request": now.timestamp()}))
    reason = (f"process {state}" if dead else
              f"no heartbeat for {age if age is not None else float('inf'):.0f} s with {behind} messages waiting")
    context.log.warning(f"stream unhealthy ({reason}); requesting a restart from its checkpoint")
    return dg.SensorResult(
        asset_events=[observation],
        run_requests=[dg.RunRequest(run_key=f"restart-stream-{int(now.timestamp())}",
                                    tags={"solar/reason": reason[:200]})],
    )


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Fault detection every minute: judges every active panel for offline, silent, "
                       "zero_production, stuck, underperforming and over_range (storage/faults.py) and keeps "
                       "panel_alerts in step: opens after the delay, resolves after a sustained recovery, "
                       "never for lack of data. Open alerts by kind are recorded on panel_alerts.")
def panel_health(context: dg.SensorEvaluationContext, solar: SolarSettingsResource,
                 monitoring: MonitoringResource) -> dg.SensorResult | dg.SkipReason:
    settings = solar.get()
    run = alerts.run_health(db.engine(settings), settings, now=datetime.now(UTC),
                            thresholds=monitoring.fault_thresholds(settings),
                            heartbeat_limit=monitoring.heartbeat_limit_seconds(settings))
    if not run.evaluation.panel_ids:
        return dg.SkipReason("no panels registered or seen yet")
    changes = run.changes
    if run.evaluation.silence_suppressed:
        context.log.warning("stream heartbeat is stale: panel silence is not judged (one pipeline alarm, "
                            "raised by stream_heartbeat, instead of an alert per panel)")
    context.log.info(f"panel health: open {changes.open_by_kind}; opened {changes.opened}, "
                     f"resolved {changes.resolved}")
    return dg.SensorResult(asset_events=[dg.AssetObservation(asset_key=PANEL_ALERTS, metadata={
        **{f"open_{kind}": n for kind, n in changes.open_by_kind.items()},
        "alerts_open": changes.open_now, "alerts_opened": changes.opened, "alerts_resolved": changes.resolved,
        "panels_judged": len(run.evaluation.panel_ids),
        "silence_suppressed": run.evaluation.silence_suppressed,
        "window": f"{run.window_start.isoformat()} .. {run.window_end.isoformat()}"})])


@dg.run_failure_sensor(name="record_run_failures", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Logs every failed run and records it in orchestration_run_failures.")
def record_run_failures(context: dg.RunFailureSensorContext, solar: SolarSettingsResource) -> None:
    run = context.dagster_run
    message = (context.failure_event.message or "")[:4000] if context.failure_event else ""
    context.log.error(f"run {run.run_id} of job {run.job_name} failed: {message}")
    try:
        with db.engine(solar.get()).begin() as conn:
            conn.execute(text(
                "INSERT INTO orchestration_run_failures (run_id, job_name, failed_at, message) "
                "VALUES (:id, :job, UTC_TIMESTAMP(3), :msg) ON DUPLICATE KEY UPDATE message = VALUES(message)"),
                {"id": run.run_id, "job": run.job_name, "msg": message})
    except Exception as exc:  # noqa: BLE001 - the database may be what failed; the log line still stands
        context.log.warning(f"could not record the failure in MySQL: {exc}")


all_sensors = [stream_heartbeat, panel_health, record_run_failures]
