"""A record of every failed run, whatever its domain."""

import dagster as dg

from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage.pipeline_status import record_run_failure


@dg.run_failure_sensor(name="record_run_failures", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Logs every failed run and records it in orchestration_run_failures.")
def record_run_failures(context: dg.RunFailureSensorContext, solar: SolarSettingsResource) -> None:
    run = context.dagster_run
    message = (context.failure_event.message or "")[:4000] if context.failure_event else ""
    context.log.error(f"run {run.run_id} of job {run.job_name} failed: {message}")
    try:
        record_run_failure(db.engine(solar.get()), run.run_id, run.job_name, message)
    except Exception as exc:  # noqa: BLE001 - the database may be what failed; the log line still stands
        context.log.warning(f"could not record the failure in MySQL: {exc}")
