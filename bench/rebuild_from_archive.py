"""Benchmark: `rebuild` on Spark from panelData and from the raw archive, against Spark's JDBC append of
the same rows, in the same run; and the storage budget: bytes per reading in MariaDB and the archive.

Fills a scratch database and its archive with `--panels` panels x `--minutes` at `--interval` s (the
seed's curve): panelData with `LOAD DATA LOCAL INFILE`, the archive as the stream writes it (one
Parquet file per batch of `--panels-per-batch` panels). Then, on the same machine, one after the other:

1. Spark's JDBC append of the same rows into a copy of panelData (the issue's yardstick);
2. `rebuild` on Spark reading panelData (windows + buckets + panel_latest), then reading the archive
   (retention's horizon set past the range: buckets, as for an expired day);
3. `rebuild` in MariaDB (`--engine sql`) over the first `--sql-minutes`, for reference;
4. sizes: panelData, panelDataAgg, the buckets (information_schema after ANALYZE), the archive
   before and after compaction (`history.compaction`).

    .venv/bin/python bench/rebuild_from_archive.py --panels 10000 --minutes 60 --interval 5
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from sqlalchemy import text

from solar_platform.contracts import PANEL_ID, POWER, STATUS, TIME_MICROS
from solar_platform.history.compaction import compact_day
from solar_platform.history.rebuild import rebuild
from solar_platform.history.sources import archive_frame
from solar_platform.runtime.jdbc import jdbc_append
from solar_platform.runtime.spark_session import build_session
from solar_platform.settings import Settings, load_settings
from solar_platform.stack.scratch import scratch_environment
from solar_platform.storage import db, retention
from solar_platform.storage.history.archive import Archive, write_batch
from solar_platform.storage.stream import bulk

JDBC_TABLE = "bench_jdbc_append"


def readings_block(first: int, last: int, start: datetime, steps: int, interval: float,
                   rng: np.random.Generator) -> pa.Table:
    """Panels `first..last` x `steps` readings: the seed's curve over the range, 10 % status-0 blips."""
    offsets = np.arange(steps) * interval
    shape = 1.0 / np.cosh(offsets / offsets[-1] - 0.5) ** 30
    micros = int((start.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6)
    panels = last - first
    power = (400.0 * rng.uniform(0.8, 1.2, size=(panels, 1)) * shape).round(3)
    status = (rng.random((panels, steps)) > 0.1).astype(np.int8)
    power = np.where(status == 1, power, 0.0)
    ids = np.repeat(np.array([f"panel-{i:06d}" for i in range(first, last)], dtype=object), steps)
    return pa.table({PANEL_ID: pa.array(ids, pa.string()), POWER: power.ravel(), STATUS: status.ravel(),
                     TIME_MICROS: np.tile(micros + (offsets * 1e6).astype(np.int64), panels),
                     "partition": pa.array(np.zeros(panels * steps, dtype=np.int32)),
                     "offset": np.arange(panels * steps, dtype=np.int64)})


def table_bytes(settings: Settings, table: str) -> tuple[int, int]:
    """(data + index bytes, rows estimate) of a table, from information_schema after ANALYZE."""
    with db.engine(settings).connect() as conn:
        conn.execute(text(f"ANALYZE TABLE `{table}`"))
        size, rows = conn.execute(text(
            "SELECT SUM(DATA_LENGTH + INDEX_LENGTH), SUM(TABLE_ROWS) FROM information_schema.PARTITIONS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"), {"t": table}).one()
    return int(size or 0), int(rows or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--panels", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--panels-per-batch", type=int, default=500)
    parser.add_argument("--chunk-minutes", type=int, default=15)
    parser.add_argument("--sql-minutes", type=int, default=15)
    args = parser.parse_args()
    steps = int(args.minutes * 60 / args.interval)
    start = datetime.combine(datetime.now(UTC).date() - timedelta(days=2), datetime.min.time()) + timedelta(hours=11)
    end = start + timedelta(minutes=args.minutes)
    results: dict[str, object] = {"panels": args.panels, "readings": args.panels * steps, "interval_s": args.interval,
                                  "chunk_minutes": args.chunk_minutes}
    with scratch_environment(load_settings(), f"bench_history_{uuid.uuid4().hex[:8]}") as settings:
        settings = settings.as_role("migrator").model_copy(update={"interval_seconds": args.interval})
        archive = Archive.of(settings)
        rng = np.random.default_rng(7)
        loading = archiving = 0.0
        engine = db.engine(settings, bulk_load=True)
        for batch, first in enumerate(range(0, args.panels, args.panels_per_batch)):
            block = readings_block(first, min(args.panels, first + args.panels_per_batch), start, steps,
                                   args.interval, rng)
            t = time.perf_counter()
            with engine.begin() as conn:
                bulk.load(conn, "panelData", [
                    bulk.Column("Panel_id", block.column(PANEL_ID).combine_chunks()),
                    bulk.Column("power_panel", block.column(POWER).to_numpy()),
                    bulk.Column("current_status", block.column(STATUS).to_numpy()),
                    bulk.Column("time_data", block.column(TIME_MICROS).to_numpy(), "time_us")])
            loading += time.perf_counter() - t
            t = time.perf_counter()
            write_batch(archive, "bench", batch, datetime.now(UTC), block)
            archiving += time.perf_counter() - t
        rows = args.panels * steps
        results["load_data rows/s"] = round(rows / loading)
        results["archive write (pyarrow) rows/s"] = round(rows / archiving)
        print(json.dumps(results), flush=True)

        spark = build_session(settings, app_name="bench-history")
        day = start.date()
        frame = archive_frame(spark, archive, [day]).select("Panel_id", "power_panel", "current_status",
                                                             "time_data").repartition(4).persist()
        frame.count()
        with db.engine(settings).begin() as conn:
            conn.execute(text(f"CREATE TABLE {JDBC_TABLE} LIKE panelData"))
        t = time.perf_counter()
        jdbc_append(frame, settings, JDBC_TABLE)
        jdbc_rate = rows / (time.perf_counter() - t)
        frame.unpersist()
        with db.engine(settings).begin() as conn:
            conn.execute(text(f"DROP TABLE {JDBC_TABLE}"))
        results["spark jdbc append rows/s"] = round(jdbc_rate)
        print(json.dumps(results), flush=True)

        chunk = timedelta(minutes=args.chunk_minutes)
        from_raw = rebuild(settings, start, end, chunk=chunk, spark=spark, rollups=False)
        results["rebuild spark from panelData readings/s"] = round(from_raw.readings_per_second)
        results["rebuild spark from panelData / jdbc append"] = round(from_raw.readings_per_second / jdbc_rate, 3)
        print(json.dumps(results), flush=True)

        with db.engine(settings).begin() as conn:  # as if retention had dropped the range from panelData
            retention.record_dropped_before(conn, "panelData", end.date() + timedelta(days=1))
        from_archive = rebuild(settings, start, end, chunk=chunk, spark=spark, rollups=False)
        assert from_archive.chunks_from_archive == from_archive.chunks
        results["rebuild spark from archive readings/s"] = round(from_archive.readings_per_second)
        results["rebuild spark from archive / jdbc append"] = round(from_archive.readings_per_second / jdbc_rate, 3)
        with db.engine(settings).begin() as conn:
            conn.execute(text("DELETE FROM retention_horizons"))
        print(json.dumps(results), flush=True)

        in_sql = rebuild(settings, start, start + timedelta(minutes=args.sql_minutes), engine="sql", chunk=chunk,
                         rollups=False)
        results["rebuild sql (MariaDB) readings/s"] = round(in_sql.readings_per_second)
        results["rebuild sql / jdbc append"] = round(in_sql.readings_per_second / jdbc_rate, 3)

        for table in ("panelData", "panelDataAgg", "panel_energy_15min", "fleet_energy_15min"):
            size, estimate = table_bytes(settings, table)
            results[f"{table} bytes per reading"] = round(size / rows, 1)
        batch_bytes = sum(info.size for info in archive.fs.get_file_info(archive.files(day)))
        results["archive bytes per reading (batch files)"] = round(batch_bytes / rows, 2)
        t = time.perf_counter()
        compaction = compact_day(spark, archive, day, settings.archive_compacted_files_per_day)
        results["compaction rows/s"] = round(rows / (time.perf_counter() - t))
        results["archive bytes per reading (compacted)"] = round(compaction.bytes_after / rows, 2)
        results["archive files (compacted)"] = compaction.files_after
        print(json.dumps(results, indent=1), flush=True)


if __name__ == "__main__":
    main()
