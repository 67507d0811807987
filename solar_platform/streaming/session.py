"""The stream's SparkSession: built by `runtime.spark_session`, which the history jobs share."""

from solar_platform.runtime.spark_session import SHUFFLE_PARTITIONS, build_session, log4j2_config, prepare_environment

__all__ = ["SHUFFLE_PARTITIONS", "build_session", "log4j2_config", "prepare_environment"]
