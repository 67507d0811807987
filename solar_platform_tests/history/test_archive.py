"""The raw archive through the real stream: every accepted reading archived once per batch at a path
named by query and batch id, resolving to exactly the rows panelData keeps (re-sent and changed
readings included); a day compacted into a few files and checked against panelData; a replayed
batch rewrites its own file; SOLAR_ARCHIVE_RETENTION_DAYS keeps everything unless set."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import SparkSession
from sqlalchemy import text

from solar_platform import kafka_clients
from solar_platform.contracts import PANEL_ID, POWER, STATUS, TIME_MICROS, Reading
from solar_platform.history.compaction import check_day, compact_day
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.history import archive as raw_archive
from solar_platform.storage.history.archive import Archive
from solar_platform.streaming.job import run_job
from solar_platform_tests.history.late_data import day_readings, publish
from solar_platform_tests.orchestration.conftest import defs_for

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date()


def _panel_data(settings: Settings, day: date) -> dict[tuple[str, int], tuple[float, int]]:
    start = datetime.combine(day, datetime.min.time())
    with db.engine(settings).connect() as conn:
        return {(p, int(t)): (float(w), int(s)) for p, t, w, s in conn.execute(text(
            "SELECT Panel_id, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', time_data) DIV 1000, power_panel, "
            "current_status FROM panelData WHERE time_data >= :a AND time_data < :b"),
            {"a": start, "b": start + timedelta(days=1)})}


def _resolved(archive: Archive, day: date) -> dict[tuple[str, int], tuple[float, int]]:
    rows = raw_archive.resolve(archive.read_day(day))
    return {(p, int(t.timestamp() * 1000)): (w, s) for p, w, s, t in zip(
        rows.column(PANEL_ID).to_pylist(), rows.column(POWER).to_pylist(), rows.column(STATUS).to_pylist(),
        rows.column(raw_archive.TIME).to_pylist(), strict=True)}


@pytest.mark.integration
def test_the_archive_resolves_to_what_panel_data_keeps(fresh_settings: Settings, spark: SparkSession,
                                                       offline_processes) -> None:
    settings = fresh_settings.model_copy(update={"archive_compacted_files_per_day": 2})
    archive = Archive.of(settings)
    readings = day_readings(YESTERDAY, 11, 11.5, 5)
    changed = readings[10]
    producer = kafka_clients.producer(settings, "fleet", acks="all")
    try:  # within one batch, the later of two messages for the same (panel, time) wins; junk and a wrong
        # clock are rejected (dead letters), never archived
        for message in (*(r.to_message() for r in readings), {**changed.to_message(), "power_panel": 1.5}):
            producer.send(settings.topic, key=b"k", value=json.dumps(message).encode())
        producer.send(settings.topic, key=b"k", value=b"{not json")
        five_years_ahead = Reading("panel-a", 1.0, 1, datetime.now(UTC) + timedelta(days=5 * 365))  # a wrong clock
        producer.send(settings.topic, key=b"k", value=json.dumps(five_years_ahead.to_message()).encode())
        producer.flush()
    finally:
        producer.close()
    run_job(settings, "available-now", spark=spark)
    later = day_readings(YESTERDAY, 12, 12.1, 5)
    publish(settings, [Reading(changed.panel_id, 99.25, 0, changed.time_utc), *later])
    run_job(settings, "available-now", spark=spark)

    assert archive.days() == [YESTERDAY]  # nothing five years ahead
    files = [Path(f).name for f in archive.files(YESTERDAY)]
    assert len(files) == 2 and all(f.startswith("batch-") for f in files)
    assert archive.read_day(YESTERDAY).num_rows == len(readings) + 2 + len(later)  # every accepted reading
    kept = _panel_data(settings, YESTERDAY)
    assert kept[(changed.panel_id, int(changed.time_utc.timestamp() * 1000))] == (99.25, 0)
    assert _resolved(archive, YESTERDAY) == kept

    compaction = compact_day(spark, archive, YESTERDAY, settings.archive_compacted_files_per_day)
    assert compaction.files_before == 2 and 1 <= compaction.files_after <= 2
    assert compaction.rows_in == len(readings) + 2 + len(later) and compaction.rows_kept == len(kept)
    assert all(Path(f).name.startswith("compacted-") for f in archive.files(YESTERDAY))
    assert _resolved(archive, YESTERDAY) == kept
    check = check_day(spark, archive, db.engine(settings), settings, YESTERDAY)
    assert check.passed and check.checked and check.archive_rows == len(kept) and check.panels_sampled == 3
    assert check.rows_compared == len(kept)
    # Dagster's asset does the same for its partition (again: the same rows), and runs the check.
    defs = defs_for(settings, processes=offline_processes)
    result = defs.resolve_job_def("compact_raw_archive").execute_in_process(partition_key=YESTERDAY.isoformat())
    (materialization,) = result.get_asset_materialization_events()
    assert materialization.materialization.metadata["rows_kept"].value == len(kept)
    assert [(e.asset_check_key.name, e.passed) for e in result.get_asset_check_evaluations()] == [
        ("matches_panel_data", True)]

    with db.engine(settings, role="migrator").begin() as conn:  # panelData and the archive now disagree
        conn.execute(text("UPDATE panelData SET power_panel = 7 WHERE Panel_id = :p AND time_data = :t"),
                     {"p": changed.panel_id, "t": changed.time_utc.replace(tzinfo=None)})
    check = check_day(spark, archive, db.engine(settings), settings, YESTERDAY)
    assert not check.passed and len(check.differences) == 1 and "(99.25, 0)" in check.differences[0]


def test_a_replayed_batch_rewrites_its_own_files(tmp_path: Path) -> None:
    archive = Archive.at(str(tmp_path / "archive"))
    midnight = datetime(2025, 6, 10, tzinfo=UTC)
    micros = [int((midnight + timedelta(seconds=s) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6)
              for s in (-5, 0, 5)]  # across a UTC midnight: two days, a file each
    table = pa.table({PANEL_ID: ["p"] * 3, POWER: [1.0, 2.0, 3.0], STATUS: pa.array([1, 1, 0], pa.int8()),
                      TIME_MICROS: micros, "partition": pa.array([0] * 3, pa.int32()), "offset": [7, 8, 9]})
    assert raw_archive.write_batch(archive, "q", 41, midnight, table) == 2
    assert raw_archive.write_batch(archive, "q", 41, midnight + timedelta(seconds=9), table) == 2  # the replay
    assert archive.days() == [date(2025, 6, 9), date(2025, 6, 10)]
    for day, rows in ((date(2025, 6, 9), 1), (date(2025, 6, 10), 2)):
        (name,) = archive.files(day)
        assert Path(name).name == "batch-q-000000000041.parquet"
        assert archive.read_day(day).num_rows == rows
    assert not [p for p in (tmp_path / "archive").rglob("*") if p.name.startswith(".")]  # no temporary left


def test_the_archive_keeps_every_day_unless_told(tmp_path: Path) -> None:
    settings = Settings(archive_uri=str(tmp_path / "archive"), archive_retention_days=0)
    archive = Archive.of(settings)
    today = date(2026, 1, 10)
    for age in (0, 1, 30, 400):
        archive.write(f"{archive.day_dir(today - timedelta(days=age))}/batch-q-0.parquet",
                      raw_archive.SCHEMA.empty_table())
    assert raw_archive.drop_expired_days(settings, today=today) == []  # the default: for ever
    assert len(archive.days()) == 4
    dropped = raw_archive.drop_expired_days(settings.model_copy(update={"archive_retention_days": 30}), today=today)
    assert dropped == [today - timedelta(days=400)]
    assert archive.days() == [today - timedelta(days=30), today - timedelta(days=1), today]
