"""What the stack says when the machine is not ready: one clear sentence, no traceback."""

import socket
import sys

import pytest

from solar_platform.runtime.host import SetupError, java_home, require_free_ports
from solar_platform.runtime.processes import OUTPUT_TAIL, run_or_raise
from solar_platform.settings import SettingsError, load_settings


def test_port_in_use_is_named():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SetupError, match=rf"{port} \(mariadb\)"):
            require_free_ports({"mariadb": port})


def test_missing_java_is_explained(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SetupError, match="Java not found"):
        java_home()


def test_java_17_found_here():
    assert (java_home() / "bin" / "java").exists()


def test_a_setup_program_that_succeeds_returns_its_output():
    assert run_or_raise([sys.executable, "-c", "print('ok')"], "printing").stdout == "ok\n"


def test_a_setup_program_that_fails_says_what_and_ends_with_its_output():
    noisy = "import sys; print('x' * 5000); print('the cause', file=sys.stderr); sys.exit(3)"
    with pytest.raises(SetupError, match=r"^formatting failed \(exit 3\):\n") as failed:
        run_or_raise([sys.executable, "-c", noisy], "formatting")
    assert str(failed.value).endswith("the cause\n")
    assert len(str(failed.value)) < OUTPUT_TAIL + 100  # the tail, not the whole output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SOLAR_MYSQL_PORT": "abc"}, "SOLAR_MYSQL_PORT"),
        ({"SOLAR_TOPIC_REPLICATION": "3"}, "exceeds the 2 brokers"),
        ({"SOLAR_SOURCE_TIMEZONE": "Mars/Base"}, "unknown time zone"),
        ({"PROBABILIDAD": "120"}, "SOLAR_OFFLINE_PROBABILITY_PCT"),
        ({"SOLAR_KAFKA_BROKER_PORTS": "3307,19094"}, "must all differ"),
    ],
)
def test_bad_config_is_one_readable_error(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()


def test_seed_env_names_still_work(monkeypatch):
    monkeypatch.setenv("CONTAINERS", "30")
    monkeypatch.setenv("PROBABILIDAD", "5")
    monkeypatch.setenv("TIME", "2")
    monkeypatch.setenv("TOPIC", "legacyTopic")
    settings = load_settings()
    assert (settings.panels, settings.offline_probability_pct, settings.interval_seconds, settings.topic) == (
        30,
        5.0,
        2.0,
        "legacyTopic",
    )


def test_clear_names_win_over_seed_names(monkeypatch):
    monkeypatch.setenv("CONTAINERS", "30")
    monkeypatch.setenv("SOLAR_PANELS", "7")
    assert load_settings().panels == 7


def test_home_never_reads_dollar_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings().home_dir != tmp_path
