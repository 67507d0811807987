"""Benchmark: `rebuild` speed (readings/s) over a bulk-loaded day, and the daily rollup of 10k panels.

Loads `--panels` panels x one day at `--interval` s into a scratch database with `LOAD DATA LOCAL
INFILE` (the bulk import `rebuild` exists for), then times `storage.rebuild.rebuild` over that day
(windows, energy buckets, panel_latest, registry, then the day's rollup: stage -> check -> swap),
and the daily rollup alone again (`storage.rollups.roll_up_days`). The scratch database is dropped.

    .venv/bin/python bench/rebuild_and_rollup.py --panels 10000 --interval 60
    .venv/bin/python bench/rebuild_and_rollup.py --panels 10000 --buckets-only   # the rollup alone

`--buckets-only` fills one day of 15-min buckets for every panel server-side (no raw rows) and times
the rollup's steps from the buckets: stage, fleet and peak checks, swap.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text

from solar_platform.settings import load_settings
from solar_platform.stack.scratch import scratch_environment
from solar_platform.storage import db, rollups
from solar_platform.storage.rebuild import rebuild


def write_chunk(path: Path, day: datetime, first: int, last: int, steps: int, interval: float,
                rng: np.random.Generator) -> None:
    base = np.datetime64(day, "ms")
    offsets = (np.arange(steps) * interval * 1000).astype(np.int64)
    times = np.char.replace(np.datetime_as_string(base + offsets.astype("timedelta64[ms]"), unit="ms"), "T", " ")
    shape = 1.0 / np.cosh((offsets / 1000.0 - 10 * 3600) / (4 * 3600) - 0.5) ** 30
    with path.open("w") as out:
        for i in range(first, last):
            power = 400.0 * rng.uniform(0.8, 1.2) * shape
            out.write("".join(f"panel-{i:05d},{p:.3f},1,{t}\n" for p, t in zip(power.tolist(), times, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--panels", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--buckets-only", action="store_true")
    args = parser.parse_args()
    base = load_settings()
    day = datetime.combine(datetime.now(UTC).date() - timedelta(days=2), datetime.min.time())
    steps = int(86_400 / args.interval)
    name = f"bench_rebuild_{uuid.uuid4().hex[:8]}"
    with scratch_environment(base, name) as settings:
        settings = settings.model_copy(update={"interval_seconds": args.interval})
        if args.buckets_only:
            rollup_from_buckets(settings, day, args.panels)
            return
        rng = np.random.default_rng(1)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="solar_bench_") as tmp:
            path = Path(tmp) / "chunk.csv"
            for first in range(0, args.panels, 500):
                write_chunk(path, day, first, min(args.panels, first + 500), steps, args.interval, rng)
                with db.bulk_load_connection(settings, "migrator") as conn, conn.cursor() as cur:
                    cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE panelData FIELDS TERMINATED BY ',' "
                                "(Panel_id, power_panel, current_status, time_data)")
        rows = args.panels * steps
        print(f"loaded {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        report = rebuild(settings, day, day + timedelta(days=1),
                         progress=lambda phase, done, total: print(f"  {phase} {done}/{total}", flush=True))
        print(f"rebuild: {report.readings:,} readings, windows+buckets+latest {report.derived_seconds:.1f} s "
              f"({report.readings_per_second:,.0f} readings/s); whole rebuild incl. rollup {report.seconds:.1f} s",
              flush=True)
        engine = db.engine(settings)
        for attempt in range(2):
            started = time.perf_counter()
            run = rollups.roll_up_days(engine, settings, f"bench-{attempt}", [day.date()])
            print(f"daily rollup of {args.panels} panels ({rows // args.panels} readings each, 96 buckets): "
                  f"{time.perf_counter() - started:.2f} s, served {run.served}, checks "
                  f"{ {k: v.passed for k, v in run.checks.items()} }", flush=True)


def rollup_from_buckets(settings, day: datetime, panels: int) -> None:  # noqa: ANN001
    engine = db.engine(settings)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO panel_energy_15min (panel_id, bucket_start, energy_wh, covered_seconds, readings, "
            "readings_on, peak_w) SELECT CONCAT('panel-', LPAD(p.seq, 5, '0')), "
            "TIMESTAMPADD(MINUTE, 15 * b.seq, :d), 25 + (p.seq MOD 7), 900, 15, 15, 120 "
            f"FROM seq_0_to_{panels - 1} p JOIN seq_0_to_95 b"), {"d": day})
        conn.execute(text(
            "INSERT INTO fleet_energy_15min SELECT bucket_start, SUM(energy_wh), SUM(covered_seconds), SUM(readings), "
            "SUM(readings_on) FROM panel_energy_15min GROUP BY bucket_start"))
    print(f"filled {panels * 96:,} panel buckets in {time.perf_counter() - started:.1f} s", flush=True)
    days = [day.date()]
    for attempt in range(2):
        key = f"bench-{attempt}"
        steps = {}
        t = time.perf_counter()
        staged = rollups.stage_days(engine, settings, key, days)
        steps["stage"] = time.perf_counter() - t
        t = time.perf_counter()
        fleet = rollups.check_fleet(engine, settings, key, days)
        peaks = rollups.check_peaks(engine, key, settings.health_over_range_factor)
        steps["fleet+peak checks"] = time.perf_counter() - t
        t = time.perf_counter()
        served = rollups.swap_in(engine, key, days)
        steps["swap"] = time.perf_counter() - t
        print(f"rollup of {staged} panel-days: " + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items())
              + f"; total {sum(steps.values()):.2f} s; served {served}; checks {fleet.passed, peaks.passed}",
              flush=True)


if __name__ == "__main__":
    main()
