"""Latency of "one panel, one hour of readings": the platform's schema and query vs the seed's.

Run by hand against the running local stack (MariaDB started with --local-infile=1):

    .venv/bin/python bench/api_latency.py                 # 10M rows, 300 new-path queries, 10 seed queries

What it does:
1. Writes `--rows` synthetic readings (`--panels` panels, one every 5 s, the seed's power curve)
   to one CSV file, sorted by (panel, time).
2. LOAD DATA LOCAL INFILE into two scratch databases:
   - `bench_new_*`: the migrated schema (`panelData` with PRIMARY KEY (Panel_id, time_data));
   - `bench_seed_*`: the seed's table, no keys at all
     (`Panel_id varchar(250), power_panel DECIMAL(20,3), current_status INT, time_data TIMESTAMP`).
3. Times the same question, "panel P's readings in [t, t + 1 h)", for random panels and hours:
   - new: `solar_platform.storage.queries.readings` (the API's query) as the read-only user;
   - api: the same through the Flask app's `/api/v1/panels/<id>/readings` (in-process test client);
   - seed: the seed's `SELECT * FROM panelData WHERE Panel_id = %s`, filtered by time.
4. Prints p50/p99 per path and the seed/new ratio, then drops both scratch databases.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pymysql
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solar_platform.settings import Settings, load_settings  # noqa: E402
from solar_platform.stack import services  # noqa: E402
from solar_platform.storage import queries  # noqa: E402
from solar_platform.storage.db import engine, migrate  # noqa: E402

INTERVAL_S = 5
START = datetime(2024, 1, 1, tzinfo=UTC)
SEED_DDL = (
    "CREATE TABLE panelData (Panel_id varchar(250), power_panel DECIMAL(20,3), current_status INT, "
    "time_data TIMESTAMP NULL)"
)


def write_csv(path: Path, panels: int, per_panel: int, seed: int = 1) -> None:
    """Readings sorted by (panel, time): the primary key's order, which LOAD DATA ingests fastest."""
    rng = np.random.default_rng(seed)
    base = np.datetime64(START.replace(tzinfo=None), "ms")
    offsets = np.arange(per_panel, dtype=np.int64) * INTERVAL_S * 1000
    times = np.datetime_as_string(base + offsets.astype("timedelta64[ms]"), unit="ms")
    times = np.char.replace(times, "T", " ")
    x = (np.mod(offsets / 1000.0, 86400) - 11 * 3600) / 3600 - 0.5
    shape = 1.0 / np.cosh(x) ** 30
    with path.open("w") as out:
        for i in range(panels):
            pmax = 400.0 * rng.uniform(0.8, 1.2)
            power = np.char.mod("%.3f", pmax * shape)
            status = np.where(rng.random(per_panel) < 0.02, "0", "1")
            panel = f"panel-{i:05d}"
            out.write("".join(f"{panel},{p},{s},{t}\n" for p, s, t in zip(power, status, times, strict=True)))


def root(settings: Settings, database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(
        unix_socket=str(services.mysql_socket(settings)),
        user="root",
        database=database,
        autocommit=True,
        local_infile=True,
        init_command="SET time_zone = '+00:00'",
    )


def load(settings: Settings, database: str, csv_path: Path) -> float:
    started = time.perf_counter()
    with root(settings, database) as conn, conn.cursor() as cur:
        cur.execute("SET unique_checks = 0")
        cur.execute(
            f"LOAD DATA LOCAL INFILE '{csv_path}' INTO TABLE panelData FIELDS TERMINATED BY ',' "
            "LINES TERMINATED BY '\\n' (Panel_id, power_panel, current_status, time_data)"
        )
        cur.execute("ANALYZE TABLE panelData")
        cur.fetchall()
    return time.perf_counter() - started


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples_s)
    p99_index = min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))
    return statistics.median(ms), ms[p99_index]


def questions(count: int, panels: int, per_panel: int, rng: random.Random) -> list[tuple[str, datetime, datetime]]:
    hours = per_panel * INTERVAL_S // 3600
    picked = []
    for _ in range(count):
        start = START.replace(tzinfo=None) + timedelta(hours=rng.randrange(hours - 1))
        picked.append((f"panel-{rng.randrange(panels):05d}", start, start + timedelta(hours=1)))
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--panels", type=int, default=100)
    parser.add_argument("--queries", type=int, default=300, help="queries on the new schema (and via the API)")
    parser.add_argument("--seed-queries", type=int, default=10, help="queries on the seed's table (full scans)")
    args = parser.parse_args()

    base = load_settings()
    per_panel = args.rows // args.panels
    suffix = uuid.uuid4().hex[:8]
    new_db, seed_db = f"bench_new_{suffix}", f"bench_seed_{suffix}"
    new_settings = load_settings(mysql_database=new_db)
    seed_settings = load_settings(mysql_database=seed_db)
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="solar_bench_") as tmp:
        csv_path = Path(tmp) / "readings.csv"
        try:
            t0 = time.perf_counter()
            write_csv(csv_path, args.panels, per_panel)
            size_mb = os.path.getsize(csv_path) / 1e6
            print(f"csv: {args.panels * per_panel:,} rows, {size_mb:.0f} MB in {time.perf_counter() - t0:.1f} s")

            services.provision_database(new_settings)
            migrate(new_settings)
            services.provision_database(seed_settings)
            with root(base, seed_db) as conn, conn.cursor() as cur:
                cur.execute(SEED_DDL)
            for name, db in (("new (PK Panel_id, time_data)", new_db), ("seed (no keys)", seed_db)):
                seconds = load(base, db, csv_path)
                print(f"load {name}: {seconds:.1f} s ({args.panels * per_panel / seconds:,.0f} rows/s)")
            csv_path.unlink()

            new_engine = engine(new_settings, readonly=True)
            seed_engine = engine(seed_settings, readonly=True)
            warmup = questions(20, args.panels, per_panel, rng)
            timed = questions(args.queries, args.panels, per_panel, rng)

            def ask_new(panel: str, start: datetime, end: datetime) -> int:
                with new_engine.connect() as conn:
                    return len(queries.readings(conn, panel, start=start, end=end, limit=10_000))

            seed_sql = text("SELECT * FROM panelData WHERE Panel_id = :p AND time_data >= :a AND time_data < :b")

            def ask_seed(panel: str, start: datetime, end: datetime) -> int:
                with seed_engine.connect() as conn:
                    return len(conn.execute(seed_sql, {"p": panel, "a": start, "b": end}).all())

            from solar_platform.api.app import create_app

            client = create_app(new_settings, rate_per_second=None).test_client()

            def ask_api(panel: str, start: datetime, end: datetime) -> int:
                response = client.get(
                    f"/api/v1/panels/{panel}/readings",
                    query_string={"from": start.isoformat() + "Z", "to": end.isoformat() + "Z", "limit": 10_000},
                )
                assert response.status_code == 200, response.get_data(as_text=True)
                return len(response.get_json()["items"])

            results = {}
            for label, ask, cases in (
                ("new", ask_new, timed),
                ("api", ask_api, timed),
                ("seed", ask_seed, timed[: args.seed_queries]),
            ):
                for case in warmup[:2] if label == "seed" else warmup:
                    ask(*case)
                samples, rows = [], set()
                for case in cases:
                    started = time.perf_counter()
                    rows.add(ask(*case))
                    samples.append(time.perf_counter() - started)
                results[label] = percentiles(samples)
                p50, p99 = results[label]
                print(f"{label:>4}: n={len(samples):4d} rows/query={sorted(rows)} p50={p50:9.2f} ms p99={p99:9.2f} ms")

            new_p50, new_p99 = results["new"]
            seed_p50, seed_p99 = results["seed"]
            print(f"seed/new ratio: p50 {seed_p50 / new_p50:,.0f}x  p99 {seed_p99 / new_p99:,.0f}x")
            verdict = new_p99 <= 25 and seed_p50 / new_p50 >= 100
            print(f"target (new p99 <= 25 ms and >= 100x faster): {'met' if verdict else 'NOT met'}")
        finally:
            for db in (new_db, seed_db):
                services.drop_database(base, db)
            print(f"dropped {new_db}, {seed_db}")


if __name__ == "__main__":
    main()
