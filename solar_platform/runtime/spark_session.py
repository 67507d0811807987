"""The SparkSession every Spark job of the platform runs in: the stream, the archive's compaction and
rebuilds (and their tests and benchmarks).

Everything the JVM needs is decided here, once: Java, the extra jars (Kafka connector, MariaDB
driver) as local files resolved by `runtime.jars` (no Ivy, so it starts offline), UTC everywhere,
few shuffle partitions for a 2-core machine, and quiet logs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from solar_platform.runtime.host import java_home
from solar_platform.runtime.jars import ensure_jars
from solar_platform.settings import Settings

# Spark's default log4j2 config logs every Kafka consumer setting and every micro-batch at
# INFO; a streaming job that runs for days should only say something when something is wrong.
_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.kafka.name = org.apache.kafka
logger.kafka.level = warn
# "Current batch is falling behind" is a normal state during a catch-up run.
logger.trigger.name = org.apache.spark.sql.execution.streaming.runtime.ProcessingTimeExecutor
logger.trigger.level = error
logger.kafkadataconsumer.name = org.apache.spark.sql.kafka010.consumer.KafkaDataConsumer
logger.kafkadataconsumer.level = error
# "Disabling AQE since AQE is not supported in stateful workloads": AQE is off already.
logger.microbatch.name = org.apache.spark.sql.execution.streaming.runtime.MicroBatchExecution
logger.microbatch.level = error
"""

SHUFFLE_PARTITIONS = 4


def log4j2_config(settings: Settings) -> Path:
    """The log config the driver and the executors start with (same path on every host/image)."""
    path = settings.home_dir / "spark" / "log4j2.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != _LOG4J2:
        path.write_text(_LOG4J2)
    return path


def prepare_environment(spark_host: str = "127.0.0.1") -> None:
    """Environment pyspark reads when it launches the JVM; must run before the first session."""
    os.environ["JAVA_HOME"] = str(java_home())
    # Executors must run the same interpreter (and venv) as the driver.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    if spark_host == "auto":
        # Containers / several hosts: Spark picks this machine's own address, which the
        # executors elsewhere can reach (an empty SPARK_LOCAL_IP would mean localhost).
        os.environ.pop("SPARK_LOCAL_IP", None)
    else:
        # Without this Spark binds to the first non-loopback interface: traffic stays on loopback.
        os.environ["SPARK_LOCAL_IP"] = spark_host


def build_session(settings: Settings, *, app_name: str = "solar-platform-stream",
                  master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    """A SparkSession configured for the streaming job; reuses the process' active one if any.

    `conf` adds or overrides Spark settings (e.g. `spark.cores.max` to take part of a cluster).
    JVM options only take effect when this call starts the JVM, so a second call in the same
    process returns the first session unchanged (Spark's own `getOrCreate` rule).
    """
    prepare_environment(settings.spark_host)
    master = master or settings.spark_master_url
    jars = ensure_jars(settings, "spark")
    jvm_options = " ".join((
        # java.sql.Timestamp <-> wall clock conversions in the JDBC writer use the JVM default
        # zone, so UTC here is what makes DATETIME columns hold UTC.
        "-Duser.timezone=UTC",
        f"-Dlog4j2.configurationFile=file:{log4j2_config(settings)}",
    ))
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        # Local files: the driver serves them to every executor (on a standalone cluster too), so
        # the Kafka connector and the JDBC driver never come from a repository at run time.
        .config("spark.jars", ",".join(str(jar) for jar in jars))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.extraJavaOptions", jvm_options)
        .config("spark.executor.extraJavaOptions", jvm_options)
        # Executors in UTC with the driver's interpreter, for any Python they run (the stream's parse
        # runs in the driver; Dagster's Spark may ship Python functions).
        .config("spark.executorEnv.TZ", "UTC")
        .config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(SHUFFLE_PARTITIONS))
        .config("spark.default.parallelism", str(SHUFFLE_PARTITIONS))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Small micro-batches: planning cost matters more than adaptive re-planning.
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.streaming.metricsEnabled", "false")
    )
    if settings.spark_host != "auto":
        builder = (builder.config("spark.driver.host", settings.spark_host)
                   .config("spark.driver.bindAddress", settings.spark_host))
    if master.startswith("spark://"):
        # A standalone worker only offers the memory it was started with (SOLAR_SPARK_WORKER_MEMORY).
        builder = builder.config("spark.executor.memory", settings.spark_executor_memory)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
