"""Resources: the platform's settings, its supervised processes, Kafka, Spark and the monitoring knobs.

`SolarSettingsResource` wraps the one typed `Settings`, so a test (or a second deployment) points
every asset, check and sensor at another database or topic by configuring one resource.
`ProcessControl` is an abstract base with a real (supervisord) and an offline (in-memory)
implementation, as in Dagster's project_fully_featured example, and a compose one that reports
that docker compose owns the processes.
"""


import abc
import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from solar_platform.settings import Settings, load_settings
from solar_platform.storage.faults import FaultThresholds


# ---------------------------------------------------------------- settings
def _setting_text(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    return str(value)


class SolarSettingsResource(dg.ConfigurableResource):
    """The platform's settings (env / `.env`), with optional per-deployment overrides.

    Leave everything empty to use the environment, as the supervised platform does.
    """

    mysql_database: str | None = Field(None, description="Database to use instead of SOLAR_MYSQL_DATABASE.")
    topic: str | None = Field(None, description="Kafka topic to use instead of SOLAR_TOPIC.")
    home: str | None = Field(None, description="Stack home (data, logs, checkpoints) instead of SOLAR_HOME.")
    overrides: dict[str, str] = Field(
        default_factory=dict, description="Any other setting by field name, e.g. {'interval_seconds': '60'}.")

    @classmethod
    def for_settings(cls, settings: Settings) -> "SolarSettingsResource":
        """A resource that reproduces `settings` exactly (every field that differs from the default)."""
        overrides = {}
        for name, info in Settings.model_fields.items():
            value = getattr(settings, name)
            if value != info.default and value is not None:
                overrides[name] = _setting_text(value)
        return cls(mysql_database=overrides.pop("mysql_database", None), topic=overrides.pop("topic", None),
                   home=overrides.pop("home", None), overrides=overrides)

    def get(self) -> Settings:
        return load_settings(mysql_database=self.mysql_database, topic=self.topic, home=self.home, **self.overrides)


# ---------------------------------------------------------------- monitoring knobs
class MonitoringResource(dg.ConfigurableResource):
    """Thresholds of the live checks, the stream heartbeat and the panel-health classifier."""

    freshness_max_lag_seconds: float = Field(120.0, description="Newest reading at most this old (wall clock).")
    completeness_window_minutes: float = Field(10.0, description="Window the completeness check counts over.")
    completeness_min_share: float = Field(0.9, description="Median panel must have this share of its readings.")
    bounds_window_minutes: float = Field(60.0, description="Power-bounds and duplicate checks look this far back.")
    dead_letter_window_minutes: float = Field(60.0, description="Dead-letter rate is measured over this window.")
    dead_letter_max_rate: float = Field(0.01, description="Highest acceptable share of dead-lettered messages.")
    stream_lag_max_seconds: float = Field(60.0, description="Unprocessed messages, in seconds of fleet output.")
    heartbeat_stale_triggers: float = Field(12.0, description="Stale after this many trigger intervals without "
                                                              "a stream_progress row.")
    heartbeat_min_stale_seconds: float = Field(60.0, description="...but never before this many seconds.")
    restart_grace_seconds: float = Field(180.0, description="After requesting a restart, wait this long before "
                                                           "requesting another.")
    health_overrides: dict[str, float] = Field(
        default_factory=dict, description="Fault-detection thresholds to change from their SOLAR_HEALTH_* settings, "
                                          "by name without the prefix, e.g. {'offline_minutes': 3}.")
    rollup_sample_panels: int = Field(20, description="Panels per day the rollup check recomputes with numpy.")
    rollup_relative_tolerance: float = Field(1e-6, description="Allowed relative energy difference between a "
                                                               "rollup and its numpy recompute.")

    def fault_thresholds(self, settings: Settings) -> FaultThresholds:
        """The fault rules' thresholds: the SOLAR_HEALTH_* settings, then `health_overrides`."""
        return dataclasses.replace(FaultThresholds.from_settings(settings), **self.health_overrides)

    def heartbeat_limit_seconds(self, settings: Settings) -> float:
        return max(self.heartbeat_stale_triggers * settings.stream_trigger_seconds, self.heartbeat_min_stale_seconds)


# ---------------------------------------------------------------- supervised processes
class ProcessControl(dg.ConfigurableResource):
    """Starts, stops and describes the platform's long-running processes ('stream', 'fleet').

    Abstract: use `SupervisordProcessControl` (real) or `OfflineProcessControl` (tests).
    """

    @abc.abstractmethod
    def info(self, name: str) -> dict[str, Any]:
        """`{'name', 'state', 'pid', 'started_at', 'log'}` of one program."""

    @abc.abstractmethod
    def start(self, name: str) -> dict[str, Any]:
        """Start the program unless it already runs; returns its info."""

    @abc.abstractmethod
    def stop(self, name: str) -> dict[str, Any]:
        """Stop the program if it runs; returns its info."""

    def restart(self, name: str) -> dict[str, Any]:
        self.stop(name)
        return self.start(name)


class SupervisordProcessControl(ProcessControl):
    """The local stack's supervisord, over its XML-RPC socket; processes outlive every Dagster run."""

    solar: dg.ResourceDependency[SolarSettingsResource]
    start_timeout_seconds: float = 60.0

    def info(self, name: str) -> dict[str, Any]:
        from solar_platform.stack import services

        settings = self.solar.get()
        if not services.supervisor_running(settings):
            return {"name": name, "state": "NO_SUPERVISOR", "pid": 0, "started_at": None, "log": ""}
        raw = services.supervisor(settings).supervisor.getProcessInfo(name)
        return {
            "name": name,
            "state": raw["statename"],
            "pid": int(raw["pid"]),
            "started_at": (datetime.fromtimestamp(raw["start"], UTC).isoformat() if raw["start"] else None),
            "log": raw.get("stdout_logfile", ""),
            "description": raw.get("description", ""),
        }

    def start(self, name: str) -> dict[str, Any]:
        from solar_platform.stack import services

        settings = self.solar.get()
        services.start_platform(settings, [name])
        deadline = time.monotonic() + self.start_timeout_seconds
        info = self.info(name)
        while info["state"] == "STARTING" and time.monotonic() < deadline:
            time.sleep(0.5)
            info = self.info(name)
        return info

    def stop(self, name: str) -> dict[str, Any]:
        from solar_platform.stack import services

        services.stop_programs(self.solar.get(), [name])
        return self.info(name)


# The state a process control reports for a program some other manager owns (docker compose).
EXTERNAL_STATE = "EXTERNAL"


class ComposeProcessControl(ProcessControl):
    """docker compose runs 'fleet' and 'stream' as services (`restart: unless-stopped`): there is no
    supervisord in the containers, and Dagster cannot start or stop other containers. Every call
    reports that plainly, with the command that does it, instead of failing the run."""

    def info(self, name: str) -> dict[str, Any]:
        return {
            "name": name, "state": EXTERNAL_STATE, "pid": 0, "started_at": None, "log": "",
            "description": (f"docker compose owns '{name}' and restarts it when it exits; from the host: "
                            f"`docker compose restart {name}` (or `stop` / `up -d {name}`), "
                            f"logs with `docker compose logs {name}`"),
        }

    def start(self, name: str) -> dict[str, Any]:
        return self.info(name)

    def stop(self, name: str) -> dict[str, Any]:
        return self.info(name)

    def restart(self, name: str) -> dict[str, Any]:
        return self.info(name)


def process_control(solar: SolarSettingsResource) -> ProcessControl:
    """The process control for where the platform runs (SOLAR_PROCESS_MANAGER)."""
    if solar.get().process_manager == "compose":
        return ComposeProcessControl()
    return SupervisordProcessControl(solar=solar)


_OFFLINE_STATE: dict[str, dict[str, Any]] = {}


class OfflineProcessControl(ProcessControl):
    """In-memory stand-in for tests: remembers states and the calls made, per `namespace`.

    Dagster copies resources per run, so the state lives in a module-level table keyed by the
    namespace, shared by every copy in this process.
    """

    namespace: str = "default"

    def _book(self) -> dict[str, Any]:
        return _OFFLINE_STATE.setdefault(self.namespace, {"states": {}, "calls": []})

    def info(self, name: str) -> dict[str, Any]:
        state = self._book()["states"].get(name, "STOPPED")
        return {"name": name, "state": state, "pid": 4242 if state == "RUNNING" else 0,
                "started_at": None, "log": ""}

    def start(self, name: str) -> dict[str, Any]:
        self._book()["calls"].append(("start", name))
        self._book()["states"][name] = "RUNNING"
        return self.info(name)

    def stop(self, name: str) -> dict[str, Any]:
        self._book()["calls"].append(("stop", name))
        self._book()["states"][name] = "STOPPED"
        return self.info(name)

    def set_state(self, name: str, state: str) -> None:
        self._book()["states"][name] = state

    @property
    def calls(self) -> list[tuple[str, str]]:
        return list(self._book()["calls"])


# ---------------------------------------------------------------- Kafka
class KafkaResource(dg.ConfigurableResource):
    """Read-only views of the topic: its layout and its end offsets (kafka-python admin/consumer)."""

    solar: dg.ResourceDependency[SolarSettingsResource]

    def describe_topic(self) -> dict[str, Any]:
        from solar_platform import kafka_clients

        settings = self.solar.get()
        with kafka_clients.admin(settings, "dagster", request_timeout_ms=30000) as admin:
            described = admin.describe_topics([settings.topic])[0]
        partitions = sorted(described["partitions"], key=lambda p: p["partition_index"])
        return {
            "topic": settings.topic,
            "partitions": len(partitions),
            "replication_factors": sorted({len(p["replica_nodes"]) for p in partitions}),
            "min_isr": min((len(p["isr_nodes"]) for p in partitions), default=0),
            "leaders": {str(p["partition_index"]): p["leader_id"] for p in partitions},
        }

    def end_offsets(self) -> dict[int, int]:
        from kafka import TopicPartition

        from solar_platform import kafka_clients

        settings = self.solar.get()
        # No group: end offsets need DESCRIBE on the topic only.
        consumer = kafka_clients.consumer(settings, role="dagster", client_id="solar-dagster-lag",
                                          enable_auto_commit=False, request_timeout_ms=30000)
        try:
            parts = consumer.partitions_for_topic(settings.topic) or set()
            ends = consumer.end_offsets([TopicPartition(settings.topic, p) for p in parts])
        finally:
            consumer.close()
        return {tp.partition: int(offset) for tp, offset in ends.items()}


# ---------------------------------------------------------------- Spark
class SolarSparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy SparkSession, prepared like the streaming job's: local jars (Kafka
    connector, MariaDB JDBC driver), JVM and session in UTC, loopback only, and submitted where the
    stream submits (`spark_master_url`: the standalone cluster when SOLAR_SPARK_WORKERS > 0).
    Started on first use, so runs that never touch Spark never pay its ~7 s start."""

    solar_home: str | None = Field(None, description="Stack home holding the jars; default from settings.")

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def _init_session(self) -> None:
        if self._spark_session is not None:
            return
        from solar_platform.streaming.session import build_session

        settings = load_settings(home=self.solar_home)
        session = build_session(settings, app_name="solar-platform-dagster")
        for key, value in self.spark_config.items():
            try:
                session.conf.set(key, str(value))
            except Exception:  # noqa: BLE001 - static configs cannot change once the JVM runs
                dg.get_dagster_logger().warning(f"Spark config {key} cannot be set on a running session")
        self._spark_session = session
