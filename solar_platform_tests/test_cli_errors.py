"""Errors a user can fix: one line on stderr, `error: ...`, exit code 2, never a traceback.

Unit tests feed `cli_errors.user_error_message` the exceptions the drivers raise (constructed here);
the subprocess tests run the real CLI (`python -m solar_platform`) against a bad time zone, a closed
MariaDB port, a wrong MariaDB password, a database the migrator may not use, a closed Kafka port,
and a wrong Kafka password for the fleet and for the stream (a refused login, not an outage).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import kafka.errors as kafka_errors
import pymysql
import pytest
import sqlalchemy.exc
from typer.testing import CliRunner

from solar_platform import cli, kafka_clients
from solar_platform.cli_errors import user_error_message
from solar_platform.runtime.host import SetupError
from solar_platform.settings import Settings, SettingsError, load_settings

PROJECT_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(mysql_host="db.example", mysql_port=3399, kafka_bootstrap_override="k1:9092,k2:9092")


def mysql_error(code: int, text: str, kind: type[pymysql.err.MySQLError] = pymysql.err.OperationalError):
    return kind(code, text)


def wrapped(error: pymysql.err.MySQLError) -> sqlalchemy.exc.DBAPIError:
    """As SQLAlchemy raises it: the driver's error as `.orig`."""
    kind = sqlalchemy.exc.ProgrammingError if isinstance(error, pymysql.err.ProgrammingError) else (
        sqlalchemy.exc.OperationalError)
    return kind("SELECT 1", {}, error)


# ---------------------------------------------------------------- the mapping, unit by unit
def test_cannot_connect_names_host_port_and_stack_up(settings: Settings) -> None:
    error = mysql_error(2003, "Can't connect to MySQL server on 'db.example' ([Errno 111] Connection refused)")
    for raised in (error, wrapped(error)):
        message = user_error_message(raised, settings)
        assert message is not None
        assert "MariaDB at db.example:3399" in message and "connection refused" in message
        assert "solar-platform stack up" in message


def test_access_denied_names_the_user_and_the_password_variable(settings: Settings) -> None:
    user = settings.mysql_dagster_user
    error = mysql_error(1045, f"Access denied for user '{user}'@'localhost' (using password: YES)")
    message = user_error_message(wrapped(error), settings)
    assert f"refused user '{user}'" in message and "SOLAR_MYSQL_DAGSTER_PASSWORD" in message


def test_missing_grants_say_who_lacks_what(settings: Settings) -> None:
    database = mysql_error(1044, "Access denied for user 'solar_migrator'@'localhost' to database 'other'")
    assert "user 'solar_migrator' may not use database 'other'" in user_error_message(database, settings)
    table = mysql_error(1142, "INSERT command denied to user 'solar_reader'@'localhost' for table `solar`.`panelData`",
                        pymysql.err.ProgrammingError)
    assert ("user 'solar_reader' lacks the INSERT privilege on table `solar`.`panelData`"
            in user_error_message(wrapped(table), settings))
    column = mysql_error(1143, "SELECT command denied to user 'u'@'%' for column 'c' in table 't'",
                         pymysql.err.ProgrammingError)
    assert "user 'u' lacks the SELECT privilege on column 'c' in table 't'" in user_error_message(column, settings)
    needed = mysql_error(1227, "Access denied; you need (at least one of) the SUPER privilege(s) for this operation")
    assert "SUPER privilege" in user_error_message(needed, settings)


def test_unknown_database_and_unmigrated_schema(settings: Settings) -> None:
    assert "has no database 'nope'" in user_error_message(mysql_error(1049, "Unknown database 'nope'"), settings)
    missing = mysql_error(1146, "Table 'solar.panels' doesn't exist", pymysql.err.ProgrammingError)
    assert "solar-platform db migrate" in user_error_message(wrapped(missing), settings)


def test_lost_connection_and_other_server_errors(settings: Settings) -> None:
    lost = user_error_message(wrapped(mysql_error(2013, "Lost connection to MySQL server during query")), settings)
    assert lost.startswith("lost the connection to MariaDB at db.example:3399")
    other = user_error_message(mysql_error(1040, "Too many connections"), settings)
    assert "too many connections" in other


def test_without_settings_the_messages_use_what_the_error_says() -> None:
    error = mysql_error(2003, "Can't connect to MySQL server on '10.0.0.9' ([Errno 113] No route to host)")
    assert user_error_message(error).startswith("cannot connect to MariaDB at 10.0.0.9 (no route to host)")
    timeout = kafka_errors.KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")
    assert "cannot reach Kafka at 127.0.0.1:1" in user_error_message(timeout)


def test_kafka_errors_name_the_bootstrap_servers(settings: Settings) -> None:
    unreachable = user_error_message(kafka_errors.KafkaConnectionError("connection refused"), settings)
    assert unreachable.startswith("cannot reach Kafka at k1:9092,k2:9092") and "stack up" in unreachable
    # The client's own bootstrap (a --bootstrap option) beats the settings'.
    assert "Kafka at other:1 " in user_error_message(
        kafka_errors.KafkaTimeoutError("Unable to bootstrap from other:1"), settings)
    login = user_error_message(kafka_errors.SaslAuthenticationFailedError("Invalid username or password"), settings)
    assert "Kafka at k1:9092,k2:9092 refused the login" in login and "SOLAR_KAFKA_" in login
    for denied in (kafka_errors.TopicAuthorizationFailedError("panelInfo"),
                   kafka_errors.ClusterAuthorizationFailedError(),
                   kafka_errors.GroupAuthorizationFailedError("solar-stream-1")):
        message = user_error_message(denied, settings)
        assert "Kafka at k1:9092,k2:9092" in message and "not allowed" in message and type(denied).__name__ in message
    assert "Kafka at k1:9092,k2:9092" in user_error_message(kafka_errors.UnknownTopicOrPartitionError("x"), settings)


def test_a_refused_kafka_login_names_the_user_and_the_password_variable(settings: Settings) -> None:
    refused = kafka_clients.KafkaLoginRefused(user="solar-dagster", role="dagster", server="k1:9092",
                                              reason="SaslAuthenticationFailedError: Authentication failed")
    # As kafka_clients raises it when the client's bootstrap timed out first: the refusal wins.
    try:
        try:
            raise kafka_errors.KafkaTimeoutError("Unable to bootstrap from k1:9092,k2:9092")
        except kafka_errors.KafkaTimeoutError:
            raise refused  # noqa: B904 - raised in the except block, as the client factories do
    except kafka_errors.KafkaError as raised:
        message = user_error_message(raised, settings)
    assert message.startswith("login refused for user 'solar-dagster' by Kafka at k1:9092")
    assert "SOLAR_KAFKA_DAGSTER_PASSWORD" in message and "cannot reach" not in message


def test_platform_errors_keep_their_words_and_a_cause_anywhere_in_the_chain_counts(settings: Settings) -> None:
    assert user_error_message(SetupError("Java not found"), settings) == "Java not found"
    assert user_error_message(SettingsError("invalid configuration: x"), settings) == "invalid configuration: x"
    try:
        try:
            raise mysql_error(1049, "Unknown database 'nope'")
        except pymysql.err.MySQLError as exc:
            raise RuntimeError("while locking the stages") from exc
    except RuntimeError as outer:
        assert "no database 'nope'" in user_error_message(outer, settings)


def test_bugs_are_not_user_errors(settings: Settings) -> None:
    syntax = mysql_error(1064, "You have an error in your SQL syntax", pymysql.err.ProgrammingError)
    duplicate = mysql_error(1062, "Duplicate entry 'x' for key 'PRIMARY'", pymysql.err.IntegrityError)
    for error in (ValueError("boom"), KeyError("x"), syntax, wrapped(syntax), duplicate):
        assert user_error_message(error, settings) is None


def test_every_message_is_one_line(settings: Settings) -> None:
    error = mysql_error(2013, "Lost connection\nto MySQL server\n\tduring query")
    assert "\n" not in user_error_message(error, settings)


# ---------------------------------------------------------------- cli.main, in process
def test_main_prints_one_line_and_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from solar_platform.storage.health import commands as health_commands

    refused = mysql_error(2003, "Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)")

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise wrapped(refused)

    monkeypatch.setattr(health_commands.alerts, "run_health", unreachable)
    monkeypatch.setattr(health_commands.db, "engine", lambda settings: None)
    monkeypatch.setattr(sys, "argv", ["solar-platform", "health", "check"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot connect to MariaDB at ")


def test_main_keeps_the_traceback_of_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    from solar_platform.storage.health import commands as health_commands

    def bug(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(health_commands.alerts, "run_health", bug)
    monkeypatch.setattr(health_commands.db, "engine", lambda settings: None)
    monkeypatch.setattr(sys, "argv", ["solar-platform", "health", "check"])
    with pytest.raises(ZeroDivisionError):
        cli.main()


def test_api_serve_on_a_port_in_use(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(sys, "argv", ["solar-platform", "api", "serve", "--host", "127.0.0.1", "--port", str(port)])
        with pytest.raises(SystemExit) as exited:
            cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: port {port} on 127.0.0.1 is already in use")


@pytest.mark.parametrize("command", [["register", "x' OR '1'='1", "--pmax", "400"], ["retire", "../../etc"],
                                     ["register", "--pmax", "400", "--", "-panel"]])
def test_panels_refuse_an_invalid_id_before_touching_the_database(command: list[str]) -> None:
    result = CliRunner().invoke(cli.app, ["panels", *command])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: invalid panel id ")
    assert "letters, digits" in result.stderr and not result.stdout


# ---------------------------------------------------------------- the real CLI, as a user runs it
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m solar_platform ARGS` with SOLAR_* overrides; a `prelude` runs first, in the same process."""
    command = [sys.executable, "-m", "solar_platform", *args]
    if prelude:
        command = [sys.executable, "-c", f"{prelude}\nimport runpy, sys\nsys.argv = ['solar-platform', *{list(args)!r}]"
                   "\nrunpy.run_module('solar_platform', run_name='__main__')"]
    return subprocess.run(command, cwd=PROJECT_DIR, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120, check=False)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def the_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 2 and one `error:` line, the last one (progress or an announcement may come before it)."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [result.stderr.splitlines()[-1]], result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def test_cli_unknown_time_zone() -> None:
    result = run_cli("health", "check", env={"SOLAR_SITE_TIMEZONE": "Mars/Olympus_Mons"})
    assert_one_error_line(result, "unknown time zone 'Mars/Olympus_Mons'")


def test_cli_mariadb_port_with_nothing_listening() -> None:
    port = free_port()
    result = run_cli("panels", "retire", "panel-1",
                     env={"SOLAR_MYSQL_PORT": str(port), "SOLAR_MYSQL_DAGSTER_PASSWORD": "any"})
    assert_one_error_line(result, f"cannot connect to MariaDB at 127.0.0.1:{port}", "solar-platform stack up")


def test_cli_kafka_port_with_nothing_listening() -> None:
    """`fleet run` against a closed port; the admin client's 30 s bootstrap wait is cut to 1 s here."""
    port = free_port()
    prelude = ("from kafka.admin.client import KafkaAdminClient\n"
               "KafkaAdminClient.DEFAULT_CONFIG['bootstrap_timeout_ms'] = 1000")
    result = run_cli("fleet", "run", "--panels", "1", "--cycles", "1", "--bootstrap", f"127.0.0.1:{port}",
                     env={"SOLAR_KAFKA_FLEET_PASSWORD": "any"}, prelude=prelude)
    # Live mode announces itself on stderr first; then the one error line, naming the bootstrap.
    line = the_one_error_line(result, f"cannot reach Kafka at 127.0.0.1:{port}")
    assert "login refused" not in line


@pytest.mark.integration
def test_cli_fleet_run_with_a_wrong_kafka_password(stack_settings: Settings) -> None:
    # A topic that does not exist: were the login accepted, nothing would be published anywhere.
    result = run_cli("fleet", "run", "--panels", "1", "--cycles", "1", "--topic", "t_cli_no_such_topic",
                     env={"SOLAR_KAFKA_FLEET_PASSWORD": "not-the-password"})
    line = the_one_error_line(result, f"login refused for user '{stack_settings.kafka_fleet_user}'",
                              "SOLAR_KAFKA_FLEET_PASSWORD", stack_settings.kafka_bootstrap.split(",")[0])
    assert "cannot reach" not in line


@pytest.mark.integration
def test_cli_stream_run_with_a_wrong_kafka_password(stack_settings: Settings) -> None:
    """The stream checks its Kafka login before Spark starts (and before its stage lock): exit 2, one line."""
    # A database that does not exist: were the login accepted, the job would stop at its stage lock.
    result = run_cli("stream", "run", "--trigger", "available-now",
                     env={"SOLAR_KAFKA_STREAM_PASSWORD": "not-the-password", "SOLAR_MYSQL_DATABASE": "t_cli_no_db"})
    assert_one_error_line(result, f"login refused for user '{stack_settings.kafka_stream_user}'",
                          "SOLAR_KAFKA_STREAM_PASSWORD")


@pytest.mark.integration
def test_cli_wrong_mysql_password(stack_settings: Settings) -> None:
    result = run_cli("health", "check", env={"SOLAR_MYSQL_DAGSTER_PASSWORD": "not-the-password"})
    assert_one_error_line(result, f"refused user '{stack_settings.mysql_dagster_user}'", "SOLAR_MYSQL_DAGSTER_PASSWORD")


@pytest.mark.integration
def test_cli_migrate_a_database_the_migrator_may_not_use(stack_settings: Settings) -> None:
    result = run_cli("db", "migrate", env={"SOLAR_MYSQL_DATABASE": "not_the_platforms_db"})
    assert_one_error_line(result, f"user '{stack_settings.mysql_migrator_user}' may not use database "
                                  "'not_the_platforms_db'", "SOLAR_MYSQL_DATABASE")
