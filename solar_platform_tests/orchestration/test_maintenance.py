"""The upkeep jobs and the rebuild command on real MariaDB: raw retention with its figures, the rebuild
job, and `solar-platform rebuild` (progress, summary, and one line + exit 2 on bad arguments)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from solar_platform.storage import db
from solar_platform_tests.orchestration.conftest import defs_for, insert_readings

pytestmark = pytest.mark.integration

DAY = datetime(2025, 6, 10)


def _rows(panels: int = 3, hours: int = 2) -> list[tuple[str, float, int, datetime]]:
    return [(f"p-{i}", 100.0 + i, 1, DAY + timedelta(hours=11, seconds=5 * k))
            for i in range(panels) for k in range(hours * 720)]


def test_raw_retention_job_reports_its_figures(fresh_settings, offline_processes):
    old = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=48)
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO stream_progress (query_id, query_name, batch_id, rows_in, rows_written, "
                          "dead_letters, duration_ms, recorded_at) VALUES ('q', 'readings', 1, 1, 1, 0, 1, :t)"),
                     {"t": old})
    result = defs_for(fresh_settings, processes=offline_processes).resolve_job_def(
        "raw_retention").execute_in_process()
    assert result.success
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert metadata["stream_progress_rows_pruned"].value == 1
    assert metadata["partitions_dropped"].value == 0 and metadata["raw_retention_days"].value == 30


def test_rebuild_job_rebuilds_from_raw(fresh_settings, offline_processes):
    insert_readings(fresh_settings, _rows())
    result = defs_for(fresh_settings, processes=offline_processes).resolve_job_def(
        "rebuild_derived_tables").execute_in_process(run_config={"ops": {"rebuild_from_raw": {"config": {
            "start": "2025-06-10T11:00:00", "end": "2025-06-10T13:00:00", "chunk_minutes": 30}}}})
    assert result.success
    assert result.output_for_node("rebuild_from_raw") == 3 * 1440
    with db.engine(fresh_settings).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM panel_energy_15min")).scalar() == 3 * 8
        assert conn.execute(text("SELECT COUNT(*) FROM panel_daily_energy")).scalar() == 3
        assert conn.execute(text("SELECT COUNT(*) FROM panels WHERE first_seen IS NOT NULL")).scalar() == 3


def _cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SOLAR_MYSQL_DATABASE": settings.mysql_database, "SOLAR_TOPIC": settings.topic,
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "solar_platform", "rebuild", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_rebuild_command(fresh_settings):
    insert_readings(fresh_settings, _rows(panels=2, hours=1))
    done = _cli(fresh_settings, "--from", "2025-06-10T11:00:00Z", "--to", "2025-06-10T12:00:00Z")
    assert done.returncode == 0, done.stderr
    assert "rebuilt 2025-06-10 11:00 .. 2025-06-10 12:00 UTC: 1440 readings" in done.stdout
    assert "windows and buckets" in done.stderr  # the progress bar
    again = _cli(fresh_settings, "--from", "2025-06-10T11:00:00Z", "--to", "2025-06-10T12:00:00Z")
    assert again.returncode == 0 and "1440 readings" in again.stdout  # idempotent
    for args, message in ((("--from", "yesterday", "--to", "2025-06-10"), "not an ISO 8601 timestamp"),
                          (("--from", "2025-06-11", "--to", "2025-06-10"), "need from < to"),
                          (("--from", "2025-06-10", "--to", "2025-06-11", "--chunk-minutes", "10"), "15 minutes")):
        bad = _cli(fresh_settings, *args)
        assert bad.returncode == 2 and message in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
