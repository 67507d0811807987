"""The stream on a real Spark standalone cluster (pyspark's own master and workers, supervised).

The cluster is the test's own: a master and two workers added to the running stack's supervisord
on free loopback ports, stopped and forgotten afterwards, so the shared stack is never touched.
While the stream runs on it and readings keep arriving, one worker is killed with SIGKILL: the job
must carry on, supervisord must bring the worker back, and in the end every reading must be in
panelData exactly once with every derived table equal to a recompute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from solar_platform.fleet.publisher import fast_forward
from solar_platform.fleet.simulation import simulate_readings
from solar_platform.settings import Settings, load_settings
from solar_platform.stack import lifecycle, spark_cluster
from solar_platform.stack.spark_cluster import ClusterSpec
from solar_platform.stack.supervisor import log_dir, supervisor
from solar_platform.storage import db
from solar_platform_tests.storage.derived import assert_derived_equal_recompute

PANELS = 100
SEED = 7
START = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
BEFORE = (START, START + timedelta(minutes=2))  # on the topic before the stream starts
SLICE = timedelta(seconds=30)
SLICES = 12  # published while the stream runs, one slice at a time, across the worker kill


# ------------------------------------------------------------------------------- unit: settings
def test_workers_decide_where_jobs_submit() -> None:
    assert load_settings(spark_workers=0).spark_master_url == "local[*]"
    two = load_settings(spark_workers=2, spark_master_port=17777)
    assert two.spark_master_url == "spark://127.0.0.1:17777"
    assert two.spark_worker_ui_ports == [two.spark_worker_ui_port, two.spark_worker_ui_port + 1]
    # An explicit SOLAR_SPARK_MASTER always wins.
    assert load_settings(spark_workers=2, spark_master="spark://elsewhere:7077").spark_master_url == (
        "spark://elsewhere:7077")


def test_cluster_ports_must_not_collide() -> None:
    from solar_platform.settings import SettingsError

    with pytest.raises(SettingsError, match="Spark cluster ports"):
        # Worker 1 on the master's UI port (both given: a developer's SOLAR_SPARK_* ports must not matter).
        load_settings(spark_workers=2, spark_master_ui_port=18080, spark_worker_ui_port=18080)


def test_cluster_programs_run_pyspark_spark_on_loopback(tmp_path: Path) -> None:
    settings = load_settings(home=str(tmp_path), spark_workers=2, spark_worker_cores=1, spark_worker_memory="1g")
    spec = ClusterSpec.from_settings(settings)
    progs = {p.name: p for p in spark_cluster.cluster_programs(settings, spec)}
    assert list(progs) == ["spark-master", "spark-worker-1", "spark-worker-2"]
    spark_class = str(spark_cluster.spark_home() / "bin" / "spark-class")
    master = progs["spark-master"].command
    assert master[:2] == [spark_class, spark_cluster.MASTER_CLASS]
    assert master[master.index("--host") + 1] == "127.0.0.1"
    assert master[master.index("--port") + 1] == str(settings.spark_master_port)
    for i, name in enumerate(["spark-worker-1", "spark-worker-2"]):
        worker = progs[name].command
        assert worker[:2] == [spark_class, spark_cluster.WORKER_CLASS]
        assert worker[-1] == settings.spark_master_url
        assert worker[worker.index("--host") + 1] == "127.0.0.1"
        assert worker[worker.index("--cores") + 1] == "1" and worker[worker.index("--memory") + 1] == "1g"
        assert worker[worker.index("--webui-port") + 1] == str(settings.spark_worker_ui_port + i)
        assert progs[name].environment["SPARK_LOCAL_IP"] == "127.0.0.1"  # type: ignore[index]
    assert spec.ui_urls == {
        "spark-master": f"http://127.0.0.1:{settings.spark_master_ui_port}",
        "spark-worker-1": f"http://127.0.0.1:{settings.spark_worker_ui_port}",
        "spark-worker-2": f"http://127.0.0.1:{settings.spark_worker_ui_port + 1}",
    }
    assert lifecycle.status(settings)["spark_ui_urls"] == spec.ui_urls
    assert lifecycle.status(settings)["spark_master"] == settings.spark_master_url


# ----------------------------------------------------------------------------- integration
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_workers(stack_settings: Settings) -> Iterator[ClusterSpec]:
    """A master and two workers of this test's own, beside (never instead of) the shared stack."""
    spec = ClusterSpec(
        name=f"spark-t{uuid.uuid4().hex[:6]}", host="127.0.0.1", master_port=_free_port(),
        master_ui_port=_free_port(), worker_ui_ports=(_free_port(), _free_port()),
        worker_cores=1, worker_memory="1g",
    )
    try:
        spark_cluster.start_cluster(stack_settings, spec, log=lambda _line: None)
        yield spec
    finally:
        spark_cluster.stop_cluster(stack_settings, spec.name)
        for program in spec.programs:
            shutil.rmtree(stack_settings.home_dir / "spark" / "work" / program, ignore_errors=True)
            (log_dir(stack_settings) / f"{program}.log").unlink(missing_ok=True)


def _count(settings: Settings, sql: str, params: dict[str, object] | None = None) -> int:
    with db.engine(settings).connect() as conn:
        return int(conn.execute(text(sql), params or {}).scalar() or 0)


def _wait(what: str, condition: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")
        time.sleep(0.5)


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _executors_of(app_id: str, worker_ui: str) -> list[dict]:
    try:
        return [e for e in _json(f"{worker_ui}/json/")["executors"] if e["appid"] == app_id]
    except OSError:
        return []


@pytest.mark.integration
def test_stream_survives_a_killed_worker(fresh_settings: Settings, stack_settings: Settings,
                                         two_workers: ClusterSpec, tmp_path: Path) -> None:
    settings, spec = fresh_settings, two_workers
    server = supervisor(stack_settings).supervisor
    assert fast_forward(settings, start=BEFORE[0], end=BEFORE[1], panels=PANELS, seed=SEED).all_delivered
    expected = {(r.panel_id, r.time_utc.replace(tzinfo=None)): r.power_w for r in simulate_readings(
        settings, start=BEFORE[0], end=BEFORE[1], panels=PANELS, seed=SEED).readings()}

    log = tmp_path / "stream.log"
    env = {
        **os.environ,
        "SOLAR_HOME": str(settings.home_dir),
        "SOLAR_MYSQL_DATABASE": settings.mysql_database,
        "SOLAR_TOPIC": settings.topic,
        "SOLAR_STREAM_TRIGGER_SECONDS": "1",
        # Small batches: several of them run while the worker is down and comes back.
        "SOLAR_STREAM_MAX_OFFSETS_PER_TRIGGER": "2500",
    }
    with log.open("wb") as out:
        stream = subprocess.Popen(
            [sys.executable, "-m", "solar_platform", "stream", "run", "--trigger", "continuous",
             "--master", spec.master_url],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    publisher_error: list[BaseException] = []

    def publish_while_running() -> None:
        try:
            for i in range(SLICES):
                lo = BEFORE[1] + i * SLICE
                assert fast_forward(settings, start=lo, end=lo + SLICE, panels=PANELS, seed=SEED).all_delivered
                time.sleep(0.5)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            publisher_error.append(exc)

    publisher = threading.Thread(target=publish_while_running, daemon=True)
    try:
        # 1. The job runs on the cluster: its first batch lands (the executors read the Kafka partitions
        #    with the connector jar the driver shipped; the driver parses and commits), with an
        #    executor on each worker.
        _wait("the first micro-batch", lambda: stream.poll() is not None
              or _count(settings, f"SELECT COUNT(*) FROM `{db.READINGS}`") > 0, 150, log)
        assert stream.poll() is None, log.read_text(errors="replace")[-3000:]
        [app] = spark_cluster.master_state(spec)["activeapps"]
        worker_uis = [spec.ui_urls[name] for name in spec.worker_programs]
        _wait("an executor on each worker", lambda: all(_executors_of(app["id"], ui) for ui in worker_uis), 60)

        # 2. Readings keep coming; one worker dies with SIGKILL (the JVM supervisord runs).
        publisher.start()
        victim = spec.worker_programs[0]
        before_kill = server.getProcessInfo(victim)
        assert spark_cluster.WORKER_CLASS in Path(f"/proc/{before_kill['pid']}/cmdline").read_text()
        alive_before = {w["id"] for w in spark_cluster.alive_workers(spec)}
        time.sleep(2)
        killed_at = datetime.now(UTC).replace(tzinfo=None)
        os.kill(before_kill["pid"], signal.SIGKILL)

        # 3. supervisord brings the worker back; it registers anew and the job gets an executor on it.
        _wait("supervisord to restart the worker", lambda: (
            (info := server.getProcessInfo(victim))["statename"] == "RUNNING"
            and info["pid"] != before_kill["pid"]), 60)
        spark_cluster.wait_for_workers(spec, 2, timeout=90,
                                       ready=lambda ws: {w["id"] for w in ws} != alive_before)
        _wait("the job's executor on the restarted worker",
              lambda: all(_executors_of(app["id"], ui) for ui in worker_uis), 90)
        # The kill reached the job itself, not only the worker's daemon: the driver lost that executor.
        _wait("the driver to report the killed worker's executor lost",
              lambda: "Lost executor" in log.read_text(errors="replace"), 60, log)

        publisher.join(timeout=120)
        assert not publisher.is_alive() and not publisher_error, publisher_error
        for i in range(SLICES):
            lo = BEFORE[1] + i * SLICE
            expected |= {(r.panel_id, r.time_utc.replace(tzinfo=None)): r.power_w for r in simulate_readings(
                settings, start=lo, end=lo + SLICE, panels=PANELS, seed=SEED).readings()}

        # 4. The same job (same process, same Spark application) carried on through it all.
        _wait("every reading in panelData", lambda: stream.poll() is not None
              or _count(settings, f"SELECT COUNT(*) FROM `{db.READINGS}`") >= len(expected), 150, log)
        assert stream.poll() is None, log.read_text(errors="replace")[-3000:]
        assert [a["id"] for a in spark_cluster.master_state(spec)["activeapps"]] == [app["id"]]
        batches_after_kill = _count(settings, f"SELECT COUNT(*) FROM `{db.STREAM_PROGRESS}` "
                                              "WHERE recorded_at > :t", {"t": killed_at})
        assert batches_after_kill > 0
    finally:
        if stream.poll() is None:
            stream.send_signal(signal.SIGTERM)
            try:
                stream.wait(timeout=90)
            except subprocess.TimeoutExpired:
                stream.kill()
                stream.wait()
    assert stream.returncode == 0, log.read_text(errors="replace")[-3000:]

    # 5. Nothing lost, nothing twice, and every derived table equals a recompute from panelData.
    with db.engine(settings).connect() as conn:
        stored = {(panel, moment): power for panel, moment, power in conn.execute(text(
            f"SELECT Panel_id, time_data, power_panel FROM `{db.READINGS}`"))}
    assert stored.keys() == expected.keys()
    assert all(abs(stored[key] - power) < 1e-6 for key, power in expected.items())
    assert_derived_equal_recompute(settings)
