"""The stream's own check: is it holding a batch because MariaDB's disk is full?

The heartbeat sensor evaluates it whenever the verdict changes (`disk_alarm`); run by hand, it
reads the same wait file and pulse."""

from datetime import UTC, datetime

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.ingestion import disk_alarm
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db, pipeline_status


@dg.asset_check(asset=keys.SPARK_STREAM, name=disk_alarm.CHECK_NAME, description=(
    "Fails (ERROR) while the stream holds a batch because MariaDB's disk is full; names the server, its data "
    "directory and MariaDB's error. The stream retries and resumes by itself once there is space."))
def mariadb_disk(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    settings = solar.get()
    now = datetime.now(UTC)
    with db.engine(settings).connect() as conn:  # a read: a full disk allows it
        pulse = pipeline_status.pulse(conn)
    evaluation = disk_alarm.check_evaluation(disk_alarm.disk_alarm(settings, pulse, now))
    return dg.AssetCheckResult(passed=evaluation.passed, severity=evaluation.severity,
                               description=evaluation.description, metadata=evaluation.metadata)
