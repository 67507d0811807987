"""Materializing the storage and ingestion assets against a fresh database and topic."""

from __future__ import annotations

import dagster as dg
import pytest
from sqlalchemy import text

from solar_platform.orchestration.ingestion import assets as ingestion
from solar_platform.orchestration.platform import assets as platform
from solar_platform.storage import db
from solar_platform_tests.orchestration.conftest import defs_for

pytestmark = pytest.mark.integration


def test_schema_topic_and_registry(fresh_settings, offline_processes):
    settings = fresh_settings.model_copy(update={"seed": 42, "panels": 25})
    defs = defs_for(settings, processes=offline_processes)
    result = defs.resolve_job_def("setup_platform").execute_in_process()
    assert result.success
    by_key = {m.asset_key.to_user_string(): m.metadata for m in result.get_asset_materialization_events()
              and [e.materialization for e in result.get_asset_materialization_events()]}
    assert "panel_daily_energy" in by_key["mysql_schema"]["tables"].value
    assert by_key["kafka_topic"]["replication_factor"].value == 2
    assert by_key["kafka_topic"]["partitions"].value == settings.topic_partitions
    assert by_key["panels"]["with_pmax"].value == 25

    # the registry holds exactly the Pmax the simulator draws
    from solar_platform.fleet.state import FleetState

    fleet = FleetState.create(settings)
    with db.engine(settings).connect() as conn:
        stored = dict(conn.execute(text("SELECT panel_id, pmax_w FROM panels")).all())
    assert stored == dict(zip(fleet.panel_ids, fleet.pmax_w.tolist(), strict=True))

    # materializing again changes nothing (idempotent)
    again = dg.materialize([platform.mysql_schema], resources=defs.resources)
    assert again.success
    assert again.get_asset_materialization_events()[0].materialization.metadata["applied"].value == []


def test_stream_and_fleet_assets_launch_processes_outside_the_run(fresh_settings, offline_processes):
    defs = defs_for(fresh_settings, processes=offline_processes)
    result = dg.materialize([ingestion.spark_stream, ingestion.panel_fleet], resources=defs.resources,
                            selection=["spark_stream", "panel_fleet"])
    assert result.success
    assert set(offline_processes.calls) == {("start", "stream"), ("start", "fleet")}
    meta = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["spark_stream"]["state"].value == "RUNNING"
    assert meta["spark_stream"]["checkpoint"].value == str(fresh_settings.checkpoint_dir)
    restart = defs.resolve_job_def("restart_stream").execute_in_process()
    assert restart.success
    assert offline_processes.calls[-2:] == [("stop", "stream"), ("start", "stream")]


def test_supervisord_control_reads_the_real_stream_program(stack_settings):
    from solar_platform.stack.process_control import SupervisordProcessControl

    status = SupervisordProcessControl(stack_settings).status("stream")
    assert status.state in ("RUNNING", "STOPPED", "STARTING", "EXITED", "FATAL", "BACKOFF")


def test_kafka_topic_with_a_wrong_password_fails_naming_the_login(fresh_settings, offline_processes):
    """Dagster's own Kafka user refused: the run fails with the user and its password variable, not a timeout."""
    wrong = fresh_settings.model_copy(update={"kafka_dagster_password": "not-the-password"})
    defs = defs_for(wrong, processes=offline_processes)
    result = dg.materialize([ingestion.kafka_topic], resources=defs.resources, raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    chain, error = [], failure.step_failure_data.error
    while error is not None:  # Dagster wraps the asset's exception in its own
        chain.append(error)
        error = error.cause
    [refused] = [error for error in chain if error.cls_name == "KafkaLoginRefused"]
    assert f"login refused for user '{fresh_settings.kafka_dagster_user}'" in refused.message
    assert "SOLAR_KAFKA_DAGSTER_PASSWORD" in refused.message
    assert not any(error.cls_name == "KafkaTimeoutError" for error in chain)
