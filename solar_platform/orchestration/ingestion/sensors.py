"""The stream's heartbeat: observe it, and restart it from its checkpoint when it is stuck; and
raise the one alarm when it waits for MariaDB's disk (`disk_alarm`), which no restart would cure."""

import json
from datetime import UTC, datetime

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from solar_platform.orchestration import keys
from solar_platform.orchestration.ingestion import disk_alarm
from solar_platform.orchestration.ingestion.jobs import restart_stream
from solar_platform.orchestration.ingestion.stream_lag import stream_lag_figures
from solar_platform.orchestration.resources import KafkaResource, SolarSettingsResource
from solar_platform.runtime.process_control import (
    DEAD_STATES,
    EXTERNAL,
    NO_SUPERVISOR,
    STARTING,
    STOPPED,
    ProcessControl,
    ProcessStatus,
)
from solar_platform.settings import Settings
from solar_platform.storage import db, pipeline_status


def pulse_alive(pulse: pipeline_status.Pulse | None, now: datetime, settings: Settings) -> bool:
    return pipeline_status.batch_in_flight(pulse, now, settings.stream_stale_after_seconds,
                                           settings.stream_max_batch_seconds)


@dg.sensor(job=restart_stream, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reads the stream's heartbeat (stream_progress) and its batch in flight (stream_pulse). "
                       "When no micro-batch was recorded within N x the trigger interval, no batch is running, "
                       "and messages wait on the topic, or the process died, it records an observation on "
                       "spark_stream and requests a restart from the checkpoint. A slow batch is never restarted. "
                       "A batch waiting for MariaDB's disk is never restarted either: the sensor raises the one "
                       "alarm instead (check spark_stream/mariadb_disk, platform alert disk_full), naming the disk.")
def stream_heartbeat(context: dg.SensorEvaluationContext, solar: SolarSettingsResource,
                     processes: dg.ResourceParam[ProcessControl],
                     kafka: KafkaResource) -> dg.SensorResult | dg.SkipReason:
    settings = solar.get()
    now = datetime.now(UTC)
    beat: pipeline_status.Heartbeat | None = None
    try:
        with db.engine(settings).connect() as conn:  # an index seek and the last hour's rows: no COUNT(*)
            beat = pipeline_status.heartbeat(conn, now)
    except SQLAlchemyError as error:  # on a full disk MariaDB may be down: the wait file still tells
        unreadable = error
    status = processes.status("stream")
    cursor = json.loads(context.cursor) if context.cursor else {}
    alive = status.state not in (*DEAD_STATES, STOPPED, NO_SUPERVISOR)
    alarm = disk_alarm.disk_alarm(settings, beat.pulse if beat else None, now) if alive else None
    if beat is None and alarm is None:
        raise unreadable
    events, platform_alert = _disk_alarm_events(settings, alarm, cursor, now)
    if alarm is not None:
        context.log.error(alarm.description)
        verdict: dg.SensorResult | dg.SkipReason = dg.SensorResult(
            asset_events=[*events, dg.AssetObservation(asset_key=keys.SPARK_STREAM, metadata={
                **alarm.metadata, "process_state": status.state, "platform_alert": platform_alert,
                "mariadb_answers": beat is not None})],
            skip_reason=dg.SkipReason(f"ALARM: {alarm.description}"))
    else:
        assert beat is not None
        verdict = _heartbeat_verdict(context, settings, beat, status, kafka, cursor, now)
        if events:
            verdict = (dg.SensorResult(asset_events=events, skip_reason=verdict) if isinstance(verdict, dg.SkipReason)
                       else dg.SensorResult(asset_events=[*events, *(verdict.asset_events or [])],
                                            run_requests=verdict.run_requests, skip_reason=verdict.skip_reason))
    context.update_cursor(json.dumps(cursor))
    return verdict


def _disk_alarm_events(settings: Settings, alarm: disk_alarm.DiskAlarm | None, cursor: dict[str, object],
                       now: datetime) -> tuple[list[dg.AssetCheckEvaluation], str]:
    """The `mariadb_disk` check's evaluation when its verdict changed, and the `disk_full` platform
    alert kept in step: confirmed each tick while the disk is full, resolved once it is not (retried
    each tick until MariaDB takes the write). Both remembered in `cursor`; returns how the alert went."""
    events = []
    if (alarm is not None) != bool(cursor.get("disk_check_failed")):
        events.append(disk_alarm.check_evaluation(alarm))
        cursor["disk_check_failed"] = alarm is not None
    outcome = "none"
    if alarm is not None:
        outcome = disk_alarm.record_platform_alarm(settings, alarm, now)
        cursor["disk_alert_open"] = bool(cursor.get("disk_alert_open")) or outcome == "recorded"
    elif cursor.get("disk_alert_open"):
        outcome = disk_alarm.record_platform_alarm(settings, None, now)
        cursor["disk_alert_open"] = outcome != "recorded"
    return events, outcome


def _heartbeat_verdict(context: dg.SensorEvaluationContext, settings: Settings, beat: pipeline_status.Heartbeat,
                       status: ProcessStatus, kafka: KafkaResource, cursor: dict[str, object],
                       now: datetime) -> dg.SensorResult | dg.SkipReason:
    """Healthy, busy, idle, or stuck (a restart requested, noted in `cursor`)."""
    heartbeat, batches = beat.last, beat.batches_last_hour
    state = status.state
    limit = settings.stream_stale_after_seconds
    age = pipeline_status.heartbeat_age_seconds(heartbeat, now)
    since_start = None if status.started_at is None else (now - status.started_at).total_seconds()

    if state in (STOPPED, NO_SUPERVISOR):
        return dg.SkipReason(f"stream is {state}: not launched (or stopped by an operator); nothing to restart")
    if state == EXTERNAL:  # compose restarts the container when it exits; a stuck one is the operator's
        return dg.SkipReason(f"the stream is not Dagster's to restart: {status.description}")
    stale = pipeline_status.heartbeat_is_stale(age, limit)
    if state == STARTING or (since_start is not None and since_start < limit and stale):
        return dg.SkipReason(f"stream started {since_start or 0:.0f} s ago; waiting for its first heartbeat")
    dead = state in DEAD_STATES
    if not dead and not stale:
        return dg.SkipReason(f"stream healthy: last batch {age:.0f} s ago (limit {limit:.0f} s), state {state}")
    pulse = beat.pulse
    if not dead and pulse_alive(pulse, now, settings):
        assert pulse is not None
        # A catch-up batch can take longer than the staleness limit: restarting it would replay it
        # from the checkpoint and lose the work, again and again.
        return dg.SensorResult(asset_events=[dg.AssetObservation(asset_key=keys.SPARK_STREAM, metadata={
            "busy": True, "batch_in_flight": pulse.batch_id, "process_state": state,
            "batch_running_seconds": round(pulse.running_seconds(now), 1),
            "heartbeat_age_seconds": round(age, 1) if age is not None else -1.0})],
            skip_reason=dg.SkipReason(
                f"stream busy: batch {pulse.batch_id} in flight for {pulse.running_seconds(now):.0f} s "
                f"(pulse {pulse.age_seconds(now):.0f} s ago); a slow batch is not a stuck stream"))

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
            return dg.SensorResult(asset_events=[dg.AssetObservation(asset_key=keys.SPARK_STREAM, metadata={
                "idle": True, "messages_behind": 0, "process_state": state,
                "heartbeat_age_seconds": round(age, 1) if age is not None else -1.0})],
                skip_reason=dg.SkipReason("stream idle: every message on the topic is committed; nothing to do"))

    last_request = float(cursor.get("last_restart_request", 0.0))  # type: ignore[arg-type]
    observation = dg.AssetObservation(asset_key=keys.SPARK_STREAM, metadata={
        "heartbeat_stale": stale, "process_state": state, "pid": status.pid,
        "last_heartbeat": heartbeat.isoformat() if heartbeat else "never",
        "heartbeat_age_seconds": round(age, 1) if age is not None else -1.0,
        "stale_after_seconds": limit, "batches_last_hour": batches,
        "messages_behind": behind if behind is not None else -1})
    if now.timestamp() - last_request < settings.stream_restart_grace_seconds:
        return dg.SensorResult(asset_events=[observation], skip_reason=dg.SkipReason(
            "stream still unhealthy; a restart was requested less than the grace period ago"))
    cursor["last_restart_request"] = now.timestamp()
    overrun = pulse is not None and pulse.in_flight and pulse.running_seconds(now) > settings.stream_max_batch_seconds
    reason = (f"process {state}" if dead else
              f"batch {pulse.batch_id} in flight for {pulse.running_seconds(now):.0f} s, past the longest a batch "
              f"may take ({settings.stream_max_batch_seconds:.0f} s)" if overrun and pulse is not None else
              f"no heartbeat for {age if age is not None else float('inf'):.0f} s with {behind} messages waiting")
    context.log.warning(f"stream unhealthy ({reason}); requesting a restart from its checkpoint")
    return dg.SensorResult(
        asset_events=[observation],
        run_requests=[dg.RunRequest(run_key=f"restart-stream-{int(now.timestamp())}",
                                    tags={"solar/reason": reason[:200]})],
    )
