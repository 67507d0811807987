"""Resources shared by every domain: the settings, the Kafka topic's views and Spark.

`SolarSettingsResource` holds the one typed `Settings`: every asset, check and sensor reads its
settings (thresholds included) from it, so a test or a second deployment points all of them at
another database, topic or threshold by configuring this one resource. The long-running processes
are driven through `solar_platform.runtime.process_control.ProcessControl` (resource `processes`).
"""

from typing import Any

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from solar_platform.settings import Settings, load_settings


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
        default_factory=dict, description="Any other setting by field name, e.g. {'interval_seconds': '60'} or "
                                          "{'health_offline_minutes': '3'}.")

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


class SolarSparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy SparkSession, prepared like the streaming job's: local jars (Kafka
    connector, MariaDB JDBC driver), JVM and session in UTC, loopback only, and submitted where the
    stream submits (`spark_master_url`: the standalone cluster when SOLAR_SPARK_WORKERS > 0).
    Started on first use, so runs that never touch Spark never pay its ~7 s start."""

    solar: dg.ResourceDependency[SolarSettingsResource]

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def _init_session(self) -> None:
        if self._spark_session is not None:
            return
        from solar_platform.streaming.session import build_session

        session = build_session(self.solar.get(), app_name="solar-platform-dagster")
        for key, value in self.spark_config.items():
            try:
                session.conf.set(key, str(value))
            except Exception:  # noqa: BLE001 - static configs cannot change once the JVM runs
                dg.get_dagster_logger().warning(f"Spark config {key} cannot be set on a running session")
        self._spark_session = session
