"""The stream's heartbeat: observe it, and restart it from its checkpoint when it is stuck."""

import json
from datetime import UTC, datetime

import dagster as dg

from solar_platform.orchestration import keys
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
                       "spark_stream and requests a restart from the checkpoint. A slow batch is never restarted.")
def stream_heartbeat(context: dg.SensorEvaluationContext, solar: SolarSettingsResource,
                     processes: dg.ResourceParam[ProcessControl],
                     kafka: KafkaResource) -> dg.SensorResult | dg.SkipReason:
    settings = solar.get()
    now = datetime.now(UTC)
    with db.engine(settings).connect() as conn:  # an index seek and the last hour's rows: no COUNT(*)
        beat = pipeline_status.heartbeat(conn, now)
    heartbeat, batches = beat.last, beat.batches_last_hour
    status = processes.status("stream")
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

    cursor = json.loads(context.cursor) if context.cursor else {}
    last_request = cursor.get("last_restart_request", 0.0)
    observation = dg.AssetObservation(asset_key=keys.SPARK_STREAM, metadata={
        "heartbeat_stale": stale, "process_state": state, "pid": status.pid,
        "last_heartbeat": heartbeat.isoformat() if heartbeat else "never",
        "heartbeat_age_seconds": round(age, 1) if age is not None else -1.0,
        "stale_after_seconds": limit, "batches_last_hour": batches,
        "messages_behind": behind if behind is not None else -1})
    if now.timestamp() - last_request < settings.stream_restart_grace_seconds:
        return dg.SensorResult(asset_events=[observation], skip_reason=dg.SkipReason(
            "stream still unhealthy; a restart was requested less than the grace period ago"))
    context.update_cursor(json.dumps({"last_restart_request": now.timestamp()}))
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
