"""Fast checks of the job's pure parts and of `stream run`'s options and exit codes (no services)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from solar_platform.runtime.jdbc import jdbc_url
from solar_platform.settings import Settings, load_settings
from solar_platform.streaming import job
from solar_platform.streaming.commands import app
from solar_platform.streaming.errors import StreamAlreadyRunning, StreamQueryFailed
from solar_platform.streaming.stage_lock import stage_lock_name


def test_jdbc_url_uses_the_mysql_scheme_with_the_mariadb_driver_and_utc() -> None:
    settings = load_settings(mysql_host="127.0.0.1", mysql_port=3307, mysql_database="solar")
    url = jdbc_url(settings, "useBulkStmts=true")
    assert url.startswith("jdbc:mysql://127.0.0.1:3307/solar?")
    assert "permitMysqlScheme" in url
    assert "sessionVariables=time_zone='+00:00'" in url
    assert url.endswith("&useBulkStmts=true")
    assert not jdbc_url(settings, "").endswith("&")


def test_stage_lock_name_is_per_database_and_fits_mysql_limit() -> None:
    short = stage_lock_name(load_settings(mysql_database="solar"))
    assert short == "solar_platform.stream.solar"
    long_a = stage_lock_name(load_settings(mysql_database="a" * 64))
    long_b = stage_lock_name(load_settings(mysql_database="a" * 63 + "b"))
    assert len(long_a) <= 64 and len(long_b) <= 64 and long_a != long_b


def test_summarize_error_finds_the_sinks_python_cause() -> None:
    spark_text = (
        "[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch "
        "sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent "
        "call last):\n  File \"x.py\", line 1, in f\n    cursor.execute(statement)\n"
        "pymysql.err.OperationalError: (2003, \"Can't connect to MySQL server on '127.0.0.1'\")\n\n"
        "The above exception was the direct cause of the following exception:\n\nTraceback (most recent call "
        "last):\nsqlalchemy.exc.OperationalError: (pymysql.err.OperationalError) (2003, ...)\n"
    )
    assert job.summarize_error(spark_text) == (
        "pymysql.err.OperationalError: (2003, \"Can't connect to MySQL server on '127.0.0.1'\")"
    )
    plain = "[STREAM_FAILED] plain JVM error\n\tat org.apache..."
    assert job.summarize_error(plain) == "[STREAM_FAILED] plain JVM error"


@pytest.fixture
def recorded_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Settings, str]]:
    runs: list[tuple[Settings, str]] = []
    monkeypatch.setattr(job, "run_job", lambda settings, trigger: runs.append((settings, trigger)))
    return runs


def test_run_passes_trigger_and_overrides(recorded_runs: list[tuple[Settings, str]]) -> None:
    result = CliRunner().invoke(app, [
        "run", "--trigger", "available-now", "--master", "spark://127.0.0.1:7077", "--topic", "other-topic",
        "--starting-offsets", "latest",
    ])
    assert result.exit_code == 0, result.output
    [(settings, trigger)] = recorded_runs
    assert trigger == "available-now"
    assert (settings.spark_master, settings.topic, settings.stream_starting_offsets) == (
        "spark://127.0.0.1:7077", "other-topic", "latest")


def test_run_defaults_to_continuous_and_settings(recorded_runs: list[tuple[Settings, str]]) -> None:
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    [(settings, trigger)] = recorded_runs
    assert trigger == "continuous"
    assert settings.topic == load_settings().topic


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [(StreamAlreadyRunning("another job holds it"), 2), (StreamQueryFailed("query 'readings' failed"), 1)],
)
def test_run_turns_errors_into_one_line_and_an_exit_code(
    monkeypatch: pytest.MonkeyPatch, error: Exception, exit_code: int
) -> None:
    def fail(_settings: Settings, _trigger: str) -> None:
        raise error

    monkeypatch.setattr(job, "run_job", fail)
    result = CliRunner().invoke(app, ["run", "--trigger", "available-now"])
    assert result.exit_code == exit_code
    assert f"error: {error}" in result.output


def test_run_rejects_an_unknown_trigger(recorded_runs: list[tuple[Settings, str]]) -> None:
    result = CliRunner().invoke(app, ["run", "--trigger", "sometimes"])
    assert result.exit_code == 2
    assert not recorded_runs
