"""The history tests share the streaming tests' one SparkSession and the orchestration fakes."""

from solar_platform_tests.orchestration.conftest import offline_processes
from solar_platform_tests.streaming.conftest import spark

__all__ = ["offline_processes", "spark"]
