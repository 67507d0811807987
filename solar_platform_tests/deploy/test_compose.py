"""docker-compose.yml, the Dockerfile and docker/ agree with the code they deploy.

No Docker engine is needed: the files are parsed and checked against `Settings`, the pom and the
SQL they must match. When a Compose CLI is on PATH, `compose config` validates the file too.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from solar_platform.credentials import SECRET_NAMES
from solar_platform.runtime.jars import POM, jar_dir
from solar_platform.settings import Settings, load_settings
from solar_platform.storage.users import DAGSTER_DATABASE, provision_statements
from solar_platform_tests.deploy.grafana_sql import PROJECT_DIR, load_yaml

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
DOCKERFILE = PROJECT_DIR / "Dockerfile"
DOCKER_DIR = PROJECT_DIR / "docker"
PLATFORM_IMAGE = "solar-platform:local"

# Settings that have no meaning inside the containers, so compose need not pass them on.
NOT_FOR_CONTAINERS = {
    "SOLAR_KAFKA_BROKER_PORTS",  # the no-Docker stack's ports; compose sets SOLAR_KAFKA_BOOTSTRAP
    "SOLAR_KAFKA_CONTROLLER_PORTS",
    "SOLAR_KAFKA_HEAP",  # used by the Kafka containers (KAFKA_HEAP_OPTS), not the platform's
    "SOLAR_STREAM_CHECKPOINT_DIR",  # under SOLAR_HOME/checkpoints, a volume
    "SOLAR_API_HOST",  # set on the api service only
    "SOLAR_SPARK_WORKERS",  # the no-Docker stack's worker count; compose scales spark-worker instead
    "SOLAR_MYSQL_ROLE",  # set per service: each container is one role
}


def _is_credential(name: str) -> bool:
    """User names keep their defaults; passwords go only to the containers that need them."""
    return name.endswith(("_PASSWORD", "_USER")) and name.startswith(("SOLAR_MYSQL_", "SOLAR_KAFKA_"))


def setting_names() -> set[str]:
    """Every env name Settings reads: SOLAR_* plus the seed's CONTAINERS, PROBABILIDAD, TIME, TOPIC."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        names.update(field.validation_alias.choices)  # type: ignore[union-attr]
    return names


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE_FILE)


def _env(service: dict) -> dict[str, object]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _platform_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == PLATFORM_IMAGE}


def _default(value: object) -> str:
    """A compose value with `${VAR:-default}` interpolation resolved to its default."""
    text = str(value)
    while True:
        new = re.sub(r"\$\{(\w+):?-([^${}]*)\}", r"\2", text)
        if new == text:
            return new
        text = new


def test_compose_has_every_service(compose):
    assert set(compose["services"]) == {
        "mariadb", "provision", "migrate", "kafka-controller", "kafka-1", "kafka-2", "topic", "spark-master",
        "spark-worker", "fleet", "stream", "api", "dagster-webserver", "dagster-daemon", "grafana",
    }
    assert set(_platform_services(compose)) == {
        "provision", "migrate", "topic", "spark-master", "spark-worker", "fleet", "stream", "api",
        "dagster-webserver", "dagster-daemon",
    }
    for name, svc in _platform_services(compose).items():
        assert svc["build"]["context"] == ".", name


def test_platform_env_uses_only_setting_names(compose):
    valid = setting_names()
    for name, svc in _platform_services(compose).items():
        unknown = set(_env(svc)) - valid
        assert not unknown, f"{name}: not a setting of solar_platform.settings.Settings: {sorted(unknown)}"
    for name, svc in compose["services"].items():  # Grafana reads SOLAR_* too: same names
        unknown = {key for key in _env(svc) if key.startswith("SOLAR_")} - valid
        assert not unknown, f"{name}: unknown SOLAR_* setting(s) {sorted(unknown)}"


def test_every_setting_reaches_the_platform_containers(compose):
    """A new setting must be passed on by compose (or listed in NOT_FOR_CONTAINERS)."""
    for name, svc in _platform_services(compose).items():
        env = set(_env(svc))
        missing = {
            field.validation_alias.choices[0]  # type: ignore[union-attr]
            for field in Settings.model_fields.values()
        } - env - NOT_FOR_CONTAINERS
        missing = {key for key in missing if not _is_credential(key)}
        assert not missing, f"{name}: add to x-solar-env in docker-compose.yml: {sorted(missing)}"


def test_platform_env_makes_valid_settings(compose, monkeypatch):
    """The fixed values (defaults of the ${...}) load as Settings pointing at the containers."""
    env = {k: _default(v) for k, v in _env(compose["services"]["api"]).items() if v is not None}
    for key in setting_names():
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(PROJECT_DIR / "docker")  # no .env here
    settings = load_settings()
    assert settings.mysql_host == "mariadb" and settings.mysql_port == 3306
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.api_host == "0.0.0.0"
    assert settings.topic_replication == 2
    assert settings.home_dir == Path("/opt/solar")
    assert settings.mysql_role == "reader"
    assert settings.mysql_readonly_user == Settings.model_fields["mysql_readonly_user"].default


def test_published_ports_are_loopback_only(compose):
    published = 0
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+(/tcp)?", str(port)), f"{name}: {port!r}"
            published += 1
        assert "network_mode" not in svc, f"{name}: host networking would bypass the loopback binding"
    assert published >= 5


def _pom_version(artifact: str) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(POM).getroot()
    versions = {
        dep.findtext("m:version", namespaces=ns)
        for dep in root.iterfind(".//m:dependency", ns)
        if dep.findtext("m:artifactId", namespaces=ns) == artifact
    }
    assert len(versions) == 1, f"{artifact}: {versions}"
    return versions.pop()


def test_kafka_version_matches_the_pom(compose):
    kafka = _pom_version("kafka_2.13")
    images = {svc["image"] for svc in compose["services"].values() if "kafka" in svc.get("image", "")}
    assert images == {f"apache/kafka:{kafka}"}


def test_kafka_is_a_controller_apart_from_two_brokers(compose):
    services = compose["services"]
    nodes = {n: _env(s) for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")}
    roles = {n: env["KAFKA_PROCESS_ROLES"] for n, env in nodes.items()}
    assert sorted(roles.values()) == ["broker", "broker", "controller"]
    ids = [str(env["KAFKA_NODE_ID"]) for env in nodes.values()]
    assert len(set(ids)) == len(ids)
    assert len({env["CLUSTER_ID"] for env in nodes.values()}) == 1
    controller = next(n for n, r in roles.items() if r == "controller")
    for name, env in nodes.items():
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{nodes[controller]['KAFKA_NODE_ID']}@{controller}:9093"
        if roles[name] == "broker":
            for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "KAFKA_DEFAULT_REPLICATION_FACTOR"):
                assert 1 <= int(env[key]) <= 2, f"{name} {key}"
            for key in ("KAFKA_MIN_INSYNC_REPLICAS", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
                        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"):
                assert int(env[key]) == 1, f"{name} {key}"
            assert services[name]["depends_on"][controller]["condition"] == "service_healthy"
            assert f"CLIENT://{name}:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    platform = _env(services["topic"])
    assert platform["SOLAR_KAFKA_BOOTSTRAP"] == ",".join(
        f"{n}:9092" for n in sorted(n for n, r in roles.items() if r == "broker")
    )
    assert platform["SOLAR_TOPIC_REPLICATION"] == "2"


def test_kafka_authenticates_and_authorizes_everyone(compose):
    """As in the no-Docker stack: SASL on every listener, ACLs on every node, the admin the only super user."""
    from solar_platform.kafka_clients import LOGIN_MODULES

    services = compose["services"]
    admin = Settings.model_fields["kafka_admin_user"].default
    nodes = {n: _env(s) for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")}
    for name, env in nodes.items():
        protocols = {entry.split(":")[1] for entry in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")}
        assert protocols == {"SASL_PLAINTEXT"}, name
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert env["KAFKA_SUPER_USERS"] == f"User:{admin}" and env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        jaas = env["KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG"]
        assert jaas.startswith(LOGIN_MODULES["PLAIN"]) and f'username="{admin}"' in jaas and f"user_{admin}=" in jaas
        assert "${SOLAR_KAFKA_ADMIN_PASSWORD:?" in jaas
        check = " ".join(services[name]["healthcheck"]["test"])
        assert "--command-config" in check and "umask 077" in check, name
    # The Kafka passwords go where they are used; only the one-shot `topic` job holds the admin's.
    holders = {secret: {n for n, svc in _platform_services(compose).items() if secret in _secrets_of(svc)}
               for secret in ("SOLAR_KAFKA_ADMIN_PASSWORD", "SOLAR_KAFKA_FLEET_PASSWORD",
                              "SOLAR_KAFKA_STREAM_PASSWORD", "SOLAR_KAFKA_DAGSTER_PASSWORD")}
    assert holders == {
        "SOLAR_KAFKA_ADMIN_PASSWORD": {"topic"},
        "SOLAR_KAFKA_FLEET_PASSWORD": {"topic", "fleet", "dagster-webserver", "dagster-daemon"},
        "SOLAR_KAFKA_STREAM_PASSWORD": {"topic", "stream"},
        "SOLAR_KAFKA_DAGSTER_PASSWORD": {"topic", "dagster-webserver", "dagster-daemon"},
    }
    assert "ensure_kafka_users(settings)" in "".join(services["topic"]["command"])


def test_dependencies_wait_for_health_or_completion(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = cond["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy: no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is a one-shot job: restart must be 'no'"
            else:
                pytest.fail(f"{name} -> {dep}: wait for health or completion, not {condition}")
    assert services["provision"]["depends_on"]["mariadb"]["condition"] == "service_healthy"
    for name in ("stream", "api", "dagster-webserver", "dagster-daemon"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("fleet", "stream"):
        assert services[name]["depends_on"]["topic"]["condition"] == "service_completed_successfully"
    for name in ("mariadb", "kafka-controller", "kafka-1", "kafka-2", "api", "dagster-webserver",
                 "dagster-daemon", "grafana", "spark-master", "spark-worker"):
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"


def test_platform_commands(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["python", "-m", "solar_platform", "db", "migrate"]
    assert services["api"]["command"] == ["python", "-m", "solar_platform", "api", "serve"]
    assert services["fleet"]["command"] == ["python", "-m", "solar_platform", "fleet", "run"]
    assert services["stream"]["command"][-4:] == ["stream", "run", "--trigger", "continuous"]
    assert "ensure_topic(settings)" in "".join(services["topic"]["command"])
    for name in ("dagster-webserver", "dagster-daemon"):
        command = services[name]["command"]
        assert command[command.index("-w") + 1] == "workspace.yaml"
        assert (PROJECT_DIR / "workspace.yaml").exists()


# ---------------------------------------------------------------- Spark standalone cluster
def _container_settings(compose: dict, service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a service's container loads (the ${...} defaults, no .env)."""
    env = {k: _default(v) for k, v in _env(compose["services"][service]).items() if v is not None}
    for key in setting_names():
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(PROJECT_DIR / "docker")  # no .env here
    return load_settings()


def test_spark_cluster_services(compose, monkeypatch):
    services = compose["services"]
    master, worker = services["spark-master"], services["spark-worker"]
    assert master["command"] == ["python", "-m", "solar_platform", "stack", "spark-master"]
    assert worker["command"] == ["python", "-m", "solar_platform", "stack", "spark-worker"]
    # The CLI commands the services run exist.
    from typer.testing import CliRunner

    from solar_platform.stack.commands import app

    help_text = CliRunner().invoke(app, ["--help"]).output
    assert "spark-master" in help_text and "spark-worker" in help_text
    # `--scale spark-worker=3`: nothing that can exist only once.
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker
    assert worker["depends_on"]["spark-master"]["condition"] == "service_healthy"
    # The master is reached by its service name; its port is where everyone submits.
    master_settings = _container_settings(compose, "spark-master", monkeypatch)
    assert master_settings.spark_host == "spark-master"
    published = [str(p) for p in master.get("ports", [])]
    assert published == [f"127.0.0.1:{master_settings.spark_master_ui_port}:{master_settings.spark_master_ui_port}"]
    assert f"spark-master:{master_settings.spark_master_ui_port}/json/" in " ".join(master["healthcheck"]["test"])
    assert f"spark-master:{master_settings.spark_master_ui_port}/json/" in "".join(worker["healthcheck"]["test"])


def test_stream_and_dagster_submit_to_the_master(compose, monkeypatch):
    services = compose["services"]
    master_port = _container_settings(compose, "spark-master", monkeypatch).spark_master_port
    for name in ("stream", "dagster-daemon", "dagster-webserver", "spark-worker"):
        settings = _container_settings(compose, name, monkeypatch)
        assert settings.spark_master_url == f"spark://spark-master:{master_port}", name
        # Each binds its container's own address: loopback is unreachable from the other containers.
        assert settings.spark_host == "auto", name
    assert services["stream"]["depends_on"]["spark-worker"]["condition"] == "service_healthy"
    # Nothing in the image pins Spark to loopback.
    assert not re.search(r"^\s*(ENV\s+)?SPARK_LOCAL_IP=", DOCKERFILE.read_text(), re.MULTILINE)


def test_worker_settings_load_and_fit_executors(compose, monkeypatch):
    from solar_platform.stack.spark_cluster import WORKER_CLASS, worker_command

    settings = _container_settings(compose, "spark-worker", monkeypatch)
    command = worker_command("10.0.0.2", settings.spark_worker_ui_port, settings.spark_worker_cores,
                             settings.spark_worker_memory, Path("/opt/solar/spark/work"), settings.spark_master_url)
    assert command[1] == WORKER_CLASS and command[-1] == "spark://spark-master:7077"

    def megabytes(text: str) -> int:
        return int(text[:-1]) * (1024 if text[-1].lower() == "g" else 1)

    assert megabytes(settings.spark_executor_memory) <= megabytes(settings.spark_worker_memory)


def test_dagster_reads_the_stream_checkpoints(compose, monkeypatch):
    """stream_lag reads the committed offsets from the checkpoint volume the stream writes."""
    services = compose["services"]
    stream_settings = _container_settings(compose, "stream", monkeypatch)
    checkpoints = stream_settings.home_dir / "checkpoints"
    assert stream_settings.checkpoint_dir.is_relative_to(checkpoints)
    stream_mounts = services["stream"]["volumes"]
    [volume] = [m.split(":")[0] for m in stream_mounts if m.split(":")[1] == str(checkpoints)]
    for name in ("dagster-webserver", "dagster-daemon"):
        settings = _container_settings(compose, name, monkeypatch)
        assert settings.checkpoint_dir == stream_settings.checkpoint_dir, name
        assert f"{volume}:{checkpoints}:ro" in services[name]["volumes"], name


def test_dagster_in_compose_reports_instead_of_supervising(compose, monkeypatch):
    """No supervisord in the containers: Dagster's process control is compose's, and says so."""
    import dagster as dg

    from solar_platform.orchestration.definitions import build_defs
    from solar_platform.runtime.process_control import EXTERNAL, ComposeProcessControl

    for name in ("dagster-webserver", "dagster-daemon"):
        settings = _container_settings(compose, name, monkeypatch)
        assert settings.process_manager == "compose"
        # As a run or sensor gets it: the resource is made on use.
        with dg.build_resources({"processes": build_defs().resources["processes"]}) as resources:
            control = resources.processes
        assert isinstance(control, ComposeProcessControl)
    for program in ("fleet", "stream"):
        assert compose["services"][program]["restart"] == "unless-stopped"  # compose brings them back
        status = control.restart(program)
        assert status.state == EXTERNAL and f"docker compose restart {program}" in status.description


@pytest.mark.parametrize(("asset_name", "program"), [("panel_fleet", "fleet"), ("spark_stream", "stream")])
@pytest.mark.parametrize("action", ["ENSURE", "RESTART", "STOP"])
def test_fleet_and_stream_runs_succeed_and_say_compose_owns_them(asset_name, program, action):
    """launch_fleet / launch_stream / restart_stream in compose: a successful run that says what to do."""
    import dagster as dg

    from solar_platform.orchestration.ingestion import assets as ingestion
    from solar_platform.orchestration.resources import SolarSettingsResource
    from solar_platform.runtime.process_control import ComposeProcessControl

    asset = getattr(ingestion, asset_name)
    result = dg.materialize(
        [asset], resources={"solar": SolarSettingsResource(), "processes": ComposeProcessControl()},
        run_config={"ops": {asset_name: {"config": {"action": action}}}},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node(asset_name)
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["state"] == "EXTERNAL" and metadata["program"] == program
    assert f"docker compose restart {program}" in metadata["description"]


# ---------------------------------------------------------------- secrets, users and Dagster
SECRET_REFERENCE = re.compile(r"^\$\{(\w+):\?[^}]+\}$")


def _secrets_of(service: dict) -> set[str]:
    return {key for key, value in _env(service).items() if key.endswith("_PASSWORD")}


def test_every_secret_is_required_and_has_no_default(compose):
    """Compose refuses to start without a secret: `${NAME:?message}`, never `${NAME:-default}`."""
    seen = set()
    for name, svc in compose["services"].items():
        for key in _secrets_of(svc):
            match = SECRET_REFERENCE.match(str(_env(svc)[key]))
            assert match, f"{name}: {key} must be ${{...:?message}}, got {_env(svc)[key]!r}"
            assert "stack secrets --compose" in str(_env(svc)[key])  # the message says how to make them
            seen.add(match.group(1))
    assert seen <= set(SECRET_NAMES), sorted(seen - set(SECRET_NAMES))


def test_each_container_gets_only_its_own_secrets(compose):
    services = compose["services"]
    assert _secrets_of(services["api"]) == {"SOLAR_MYSQL_READONLY_PASSWORD"}
    assert _env(services["api"])["SOLAR_MYSQL_ROLE"] == "reader"
    assert _env(services["stream"])["SOLAR_MYSQL_ROLE"] == "stream"
    assert "SOLAR_MYSQL_STREAM_PASSWORD" in _secrets_of(services["stream"])
    assert {"SOLAR_MYSQL_MIGRATOR_PASSWORD", "MARIADB_ROOT_PASSWORD"}.isdisjoint(_secrets_of(services["stream"]))
    assert _secrets_of(services["migrate"]) == {"SOLAR_MYSQL_MIGRATOR_PASSWORD"}
    for name in ("dagster-webserver", "dagster-daemon"):
        assert _env(services[name])["SOLAR_MYSQL_ROLE"] == "dagster"
        assert "SOLAR_MYSQL_DAGSTER_PASSWORD" in _secrets_of(services[name])
    # MariaDB's root password: the server and the one-shot provisioning only.
    holders = {name for name, svc in services.items() if "MARIADB_ROOT_PASSWORD" in _secrets_of(svc)}
    assert holders == {"mariadb", "provision"}
    assert _secrets_of(services["grafana"]) == {"GF_SECURITY_ADMIN_PASSWORD", "SOLAR_MYSQL_READONLY_PASSWORD"}
    for name in ("spark-master", "spark-worker"):
        assert not _secrets_of(services[name])


def test_no_default_secret_in_the_repo():
    """No password equals its user name, and no example file carries one."""
    for path in (COMPOSE_FILE, DOCKER_DIR / "compose.env.example", DOCKER_DIR / "dagster.yaml"):
        text = path.read_text()
        assert not re.search(r"^\s*[A-Z_]*PASSWORD\s*[=:]\s*[\w-]+\s*$", text, re.MULTILINE), path
        for user in ("solar_writer", "solar_reader", "solar_stream", "solar_dagster", "solar_migrator", "admin"):
            assert f"{user}:{user}" not in text and f"IDENTIFIED BY '{user}'" not in text
    for field in Settings.model_fields.values():
        if "password" in str(field.validation_alias.choices[0]).lower():  # type: ignore[union-attr]
            assert field.default is None


def test_provisioning_runs_once_as_root_before_migrations(compose):
    services = compose["services"]
    assert services["provision"]["command"] == ["python", "-m", "solar_platform", "db", "provision"]
    assert services["migrate"]["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert "volumes" not in services["mariadb"] or not any(
        "docker-entrypoint-initdb.d" in str(volume) for volume in services["mariadb"]["volumes"])


def test_dagster_yaml_uses_mysql_storage_from_settings():
    config = load_yaml(DOCKER_DIR / "dagster.yaml")
    db = config["storage"]["mysql"]["mysql_db"]
    env_refs = {value["env"] for value in db.values() if isinstance(value, dict)}
    assert env_refs <= setting_names()
    assert db["username"] == {"env": "SOLAR_MYSQL_DAGSTER_USER"}
    assert db["password"] == {"env": "SOLAR_MYSQL_DAGSTER_PASSWORD"}
    assert db["db_name"] == DAGSTER_DATABASE
    settings = Settings(mysql_migrator_password="a", mysql_stream_password="b", mysql_dagster_password="c",
                        mysql_readonly_password="d")
    statements = [statement for statement, _ in provision_statements(settings, "solar", "%")]
    assert f"CREATE DATABASE IF NOT EXISTS `{DAGSTER_DATABASE}` CHARACTER SET utf8mb4" in statements
    assert f"GRANT ALL PRIVILEGES ON `{DAGSTER_DATABASE}`.* TO %s@%s" in statements
    assert config["telemetry"] == {"enabled": False}
    storage_dirs = {config["local_artifact_storage"]["config"]["base_dir"]}
    assert config["compute_logs"]["config"]["base_dir"].startswith(next(iter(storage_dirs)))


def test_dagster_containers_share_the_storage_volume(compose):
    base = load_yaml(DOCKER_DIR / "dagster.yaml")["local_artifact_storage"]["config"]["base_dir"]
    for name in ("dagster-webserver", "dagster-daemon"):
        assert f"dagster-storage:{base}" in compose["services"][name]["volumes"]


# ---------------------------------------------------------------- Dockerfile
def test_dockerfile_pins_and_jar_layout():
    text = DOCKERFILE.read_text()
    pyproject = (PROJECT_DIR / "pyproject.toml").read_text()
    dagster_lib = re.search(r'"dagster-pyspark==([\d.]+)"', pyproject).group(1)
    assert f'"dagster-mysql=={dagster_lib}"' in text  # the libraries move with dagster's own pin
    assert "FROM python:3.11-slim" in text and "openjdk-17-jre-headless" in text
    assert "FROM maven:3-eclipse-temurin-17 AS jars" in text
    assert "-Pspark dependency:copy-dependencies" in text
    # Where jars.py looks for the spark profile when SOLAR_HOME is the image's.
    home = re.search(r"SOLAR_HOME=(\S+)", text).group(1)
    target = jar_dir(load_settings(home=home), "spark")
    assert f"COPY --from=jars /out/spark {target}" in text
    assert "/out/spark/.pom-sha256" in text


def test_the_dockerfile_stamp_is_what_jars_py_compares(tmp_path):
    """The build stage's shell pipeline writes exactly sha256(pom) as hex, no newline."""
    command = re.search(r"&& (sha256sum pom\.xml \| .+?) > /out/spark/\.pom-sha256", DOCKERFILE.read_text()).group(1)
    shutil.copy(POM, tmp_path / "pom.xml")
    stamp = subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert stamp == hashlib.sha256(POM.read_bytes()).hexdigest()


def test_dockerignore_keeps_what_the_build_copies():
    ignored = {line.strip() for line in (PROJECT_DIR / ".dockerignore").read_text().splitlines()}
    for needed in ("solar_platform", "sql", "workspace.yaml", "pyproject.toml", "README.md", "docker"):
        assert needed not in ignored
        assert (PROJECT_DIR / needed).exists()
    assert {".venv", ".solar", ".env", ".git"} <= ignored
