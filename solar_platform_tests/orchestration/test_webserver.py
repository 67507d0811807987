"""Smoke test: the real dagster-webserver loads our workspace, lists the assets, runs a job, and the
asset graph renders in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from solar_platform.stack.supervisor import PROJECT_DIR

pytestmark = pytest.mark.integration

ASSET_NAMES = {"mysql_schema", "panels", "kafka_topic", "panel_fleet", "spark_stream", "panelData",
               "panelDataAgg", "panel_alerts", "panel_daily_energy", "fleet_daily_energy"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query, "variables": variables or {}})
                                     .encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def webserver(fresh_settings, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    # No daemon here: launch runs straight from the webserver instead of queueing them.
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "SOLAR_MYSQL_DATABASE": fresh_settings.mysql_database,
           "SOLAR_TOPIC": fresh_settings.topic, "SOLAR_HOME": str(fresh_settings.home_dir)}
    log = (tmp_path / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(PROJECT_DIR / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_webserver_lists_assets_and_runs_the_setup_job(webserver, fresh_settings, tmp_path):
    nodes = _graphql(webserver, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    names = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert names >= ASSET_NAMES
    assert {n["groupName"] for n in nodes} >= {"storage", "ingestion", "live", "rollups"}

    launched = _graphql(webserver, """
        mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
          __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
          ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }""",
        {"params": {"selector": {"repositoryLocationName": "solar_platform", "repositoryName": "__repository__",
                                 "jobName": "setup_platform"}, "runConfigData": {}}})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline, status = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        status = _graphql(webserver, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                          {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    assert status == "SUCCESS"


def test_asset_graph_renders_in_headless_chromium(webserver, tmp_path):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1600,1000", "--virtual-time-budget=15000",
             # the UI shows a newsletter pop-up on 127.0.0.1/localhost origins; a mapped name (still
             # loopback, no DNS) keeps it out of the screenshot
             "--host-resolver-rules=MAP solar-dagster.test 127.0.0.1"]
    webserver = webserver.replace("127.0.0.1", "solar-dagster.test")
    url = f"{webserver}/asset-groups"
    shot = tmp_path / "asset_graph.png"
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 10_000
    dom = subprocess.run(["chromium", *flags, "--dump-dom", f"{webserver}/assets"], capture_output=True,
                         text=True, timeout=120, check=False).stdout
    shown = {name for name in ASSET_NAMES if name in dom}
    assert {"mysql_schema", "panel_daily_energy", "spark_stream"} <= shown, dom[-2000:]
    keep = os.environ.get("SOLAR_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "asset_graph.png")
