"""Ingestion: the Kafka topic, the simulated fleet and the Spark stream.

The fleet and the stream are long-running processes ('fleet' and 'stream'), never held inside a
Dagster run: materializing these assets starts (or restarts, or stops) the process through the
`processes` resource and records what runs; the run itself ends in seconds. Under docker compose
the containers are compose's: the runs record that, with the command to use.
"""

from enum import Enum

import dagster as dg
from pydantic import Field

from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import KafkaResource, SolarSettingsResource
from solar_platform.runtime.kafka_provisioning import ensure_topic
from solar_platform.runtime.process_control import EXTERNAL, RUNNING, STARTING, ProcessControl, ProcessStatus

GROUP = "ingestion"


class Action(Enum):
    ENSURE = "ensure"
    RESTART = "restart"
    STOP = "stop"


class ProcessConfig(dg.Config):
    action: Action = Field(Action.ENSURE, description="ensure = start unless running; restart; stop.")


@dg.asset(key=keys.KAFKA_TOPIC, group_name=GROUP, kinds={"kafka"})
def kafka_topic(solar: SolarSettingsResource, kafka: KafkaResource) -> dg.MaterializeResult:
    """The Kafka topic the fleet publishes panel readings to (key = panel id), with its partitions
    and replication factor.

    Creates it when missing, grows its partitions to the configured count, then describes it:
    partitions, replication factor and in-sync replicas per partition as metadata.
    """
    settings = solar.get()
    # As Dagster's own Kafka user: the stack (or compose's `topic` job) granted it this topic only.
    ensure_topic(settings, role="dagster")
    described = kafka.describe_topic()
    return dg.MaterializeResult(metadata={
        "topic": settings.topic,
        "bootstrap": settings.kafka_bootstrap,
        "partitions": described["partitions"],
        "replication_factor": max(described["replication_factors"], default=0),
        "min_in_sync_replicas": described["min_isr"],
        "leaders": dg.MetadataValue.json(described["leaders"]),
    })


def _process_metadata(status: ProcessStatus, extra: dict | None = None) -> dict:
    meta = {
        "program": status.name,
        "state": status.state,
        "pid": status.pid,
        "started_at": status.started_at.isoformat() if status.started_at else "",
        "log": status.log,
    }
    if status.description:
        meta["description"] = status.description
    return {**meta, **(extra or {})}


def _apply(context: dg.AssetExecutionContext, processes: ProcessControl, name: str, action: Action
           ) -> ProcessStatus:
    """Ensure, restart or stop one program; fail the run if it is not up when it should be."""
    if action is Action.STOP:
        status = processes.stop(name)
    elif action is Action.RESTART:
        status = processes.restart(name)
    else:
        status = processes.start(name)
    if status.state == EXTERNAL:  # docker compose runs it: say so and how, do not fail
        context.log.warning(f"{name} {action.value}: nothing done here. {status.description}")
        return status
    context.log.info(f"{name} {action.value}: {status}")
    if action is not Action.STOP and status.state not in (RUNNING, STARTING):
        raise dg.Failure(f"{name} is {status.state} after {action.value}", metadata=_process_metadata(status))
    return status


@dg.asset(key=keys.PANEL_FLEET, group_name=GROUP, kinds={"python", "kafka"}, deps=[keys.KAFKA_TOPIC])
def panel_fleet(context: dg.AssetExecutionContext, config: ProcessConfig, solar: SolarSettingsResource,
                processes: dg.ResourceParam[ProcessControl]) -> dg.MaterializeResult:
    """The simulated panel fleet: the supervised 'fleet' process publishing one reading per panel
    per interval to the topic.

    Materialize to launch it (action ensure), restart or stop it; the process outlives the run.
    Metadata: pid, state, fleet size, interval, seed.
    """
    settings = solar.get()
    status = _apply(context, processes, "fleet", config.action)
    return dg.MaterializeResult(metadata=_process_metadata(status, {
        "panels": settings.panels, "interval_seconds": settings.interval_seconds,
        "seed": settings.seed, "topic": settings.topic,
    }))


@dg.asset(key=keys.SPARK_STREAM, group_name=GROUP, kinds={"spark"}, deps=[keys.KAFKA_TOPIC, keys.MYSQL_SCHEMA])
def spark_stream(context: dg.AssetExecutionContext, config: ProcessConfig, solar: SolarSettingsResource,
                 processes: dg.ResourceParam[ProcessControl]) -> dg.MaterializeResult:
    """The Spark Structured Streaming job: topic -> panelData, panelDataAgg, dead_letters and
    stream_progress, run as the supervised 'stream' process (continuous trigger) outside any run.

    Materialize to launch it (ensure), restart it from its checkpoint, or stop it. A restart resumes
    exactly where the checkpoint left off; the sinks upsert, so nothing is duplicated.
    Metadata: pid, state, checkpoint directory.
    """
    settings = solar.get()
    status = _apply(context, processes, "stream", config.action)
    return dg.MaterializeResult(metadata=_process_metadata(status, {
        "checkpoint": str(settings.checkpoint_dir),
        "trigger_seconds": settings.stream_trigger_seconds,
        "topic": settings.topic,
        "database": settings.mysql_database,
    }))
