"""Latency of every API route at >= 50M raw readings, derived tables built as the platform builds them.

Run by hand against the running local stack (MariaDB started with --local-infile=1):

    .venv/bin/python bench/api_latency.py                          # 2000 panels x 25,000 readings = 50M
    .venv/bin/python bench/api_latency.py --keep                   # keep the database (prints its name)
    .venv/bin/python bench/api_latency.py --database bench_api_x   # reuse a kept database, measure only
    .venv/bin/python bench/api_latency.py --database bench_api_x --before   # also the old code, once each

What it does:
1. Writes readings (`--panels` panels, one every 5 s from 2024-01-01 00:00 UTC, the seed's curve
   with its production window at 11:00 UTC, 2% offline) as CSV chunks sorted by (panel, time), and
   `LOAD DATA LOCAL INFILE`s them into a scratch database migrated like production (day
   partitions on panelData).
2. Builds what the stream keeps, with the platform's own code: `storage.energy.recompute_buckets`,
   `recompute_windows` and `recompute_latest` over the whole range (timed), then the daily rollup
   of every whole day (`storage.rollups.roll_up_days`: stage, check, swap). The panel registry,
   alerts, stream progress rows and dead letters are written as Dagster and the stream write them.
3. Times every route through the Flask app (in-process test client, read-only user, the clock
   pinned to the end of the data, no rate limit): `--queries` requests per route with random
   panels and times, after a warm-up; p50/p99 per route against the 50 ms p99 target.
4. `--before`: the same questions asked of the old query functions (`git show
   <rev>:solar_platform/storage/queries.py`), once each, under a statement time cap.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import text

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from solar_platform.settings import Settings, load_settings  # noqa: E402
from solar_platform.stack.mariadb import drop_database, provision_database  # noqa: E402
from solar_platform.storage import energy, rollups, windows  # noqa: E402
from solar_platform.storage.db import bulk_load_connection, engine  # noqa: E402
from solar_platform.storage.migrations import migrate  # noqa: E402

INTERVAL_S = 5
START = datetime(2024, 1, 1)
TARGET_P99_MS = 50.0
PANELS_PER_CHUNK = 100


def panel_name(i: int) -> str:
    return f"panel-{i:05d}"


def write_chunk(path: Path, first: int, last: int, per_panel: int, rng: np.random.Generator) -> None:
    """Readings of panels first..last-1 sorted by (panel, time): the key's order, fastest to load."""
    base = np.datetime64(START, "ms")
    offsets = np.arange(per_panel, dtype=np.int64) * INTERVAL_S * 1000
    times = np.char.replace(np.datetime_as_string(base + offsets.astype("timedelta64[ms]"), unit="ms"), "T", " ")
    x = (np.mod(offsets / 1000.0, 86400) - 11 * 3600) / 3600 - 0.5
    shape = 1.0 / np.cosh(x) ** 30
    with path.open("w") as out:
        for i in range(first, last):
            off = rng.random(per_panel) < 0.02
            power = np.where(off, 0.0, 400.0 * rng.uniform(0.8, 1.2) * shape)
            status = np.where(off, "0", "1")
            name = panel_name(i)
            out.write(
                "".join(f"{name},{p:.3f},{s},{t}\n" for p, s, t in zip(power.tolist(), status, times, strict=True))
            )


def timed(label: str, action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds


def load(settings: Settings, panels: int, per_panel: int) -> None:
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="solar_bench_") as tmp:
        for first in range(0, panels, PANELS_PER_CHUNK):
            path = Path(tmp) / "chunk.csv"
            last = min(panels, first + PANELS_PER_CHUNK)
            write_chunk(path, first, last, per_panel, rng)
            with bulk_load_connection(settings, "migrator") as conn, conn.cursor() as cur:
                cur.execute("SET unique_checks = 0")
                cur.execute(
                    f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE panelData FIELDS TERMINATED BY ',' "
                    "LINES TERMINATED BY '\\n' (Panel_id, power_panel, current_status, time_data)"
                )
            path.unlink()
            rows = last * per_panel
            print(f"  loaded {rows:,} rows ({rows / (time.perf_counter() - started):,.0f} rows/s)", flush=True)
    with bulk_load_connection(settings, "migrator") as conn, conn.cursor() as cur:
        cur.execute("ANALYZE TABLE panelData")
        cur.fetchall()


def derive(settings: Settings, end: datetime) -> dict[str, float]:
    """The derived tables, built by the platform's own functions, in 6-hour slices (timed)."""
    writer = engine(settings)
    gap = settings.energy_max_gap_seconds
    costs = {"buckets": 0.0, "windows": 0.0}
    cursor = START
    while cursor < end:
        following = min(end + timedelta(hours=1), cursor + timedelta(hours=6))
        for name, action in (
            ("buckets", lambda a=cursor, b=following: energy.recompute_buckets(conn, a, b, gap)),
            ("windows", lambda a=cursor, b=following: windows.recompute_windows(conn, a, b)),
        ):
            with writer.begin() as conn:
                costs[name] += timed(f"{name} {cursor:%m-%d %H:%M}", action)
        cursor = following
    with writer.begin() as conn:
        costs["latest"] = timed("panel_latest", lambda: energy.recompute_latest(conn))
    whole_days = [d for d in rollups.days_between(START.date(), end.date()) if d < end.date()]
    started = time.perf_counter()
    run = rollups.roll_up_days(writer, settings, f"bench-{uuid.uuid4().hex[:8]}", whole_days)
    costs["daily rollup"] = time.perf_counter() - started
    print(f"  daily rollup of {whole_days}: {costs['daily rollup']:.1f} s, served {run.served}", flush=True)
    return costs


def registry_and_ops(settings: Settings, panels: int, now: datetime) -> None:
    """What Dagster and the stream write beside the readings: registry, alerts, heartbeats, dead letters."""
    rng = random.Random(3)
    with engine(settings).begin() as conn:
        conn.execute(
            text("INSERT IGNORE INTO panels (panel_id, pmax_w, first_seen, last_seen) VALUES (:p, :w, :f, :l)"),
            [{"p": panel_name(i), "w": 400.0, "f": START, "l": now} for i in range(panels)],
        )
        conn.execute(
            text(
                "INSERT INTO panel_alerts (panel_id, kind, state, opened_at, resolved_at, last_checked, detail) "
                "VALUES (:p, :k, :s, :o, :r, :o, 'bench')"
            ),
            [
                {
                    "p": panel_name(rng.randrange(panels)),
                    "k": rng.choice(("offline", "silent", "underperforming")),
                    "s": "resolved",
                    "o": now - timedelta(minutes=i),
                    "r": now,
                }
                for i in range(5000)
            ],
        )
        conn.execute(
            text(
                "INSERT INTO stream_progress (query_id, query_name, batch_id, rows_in, rows_written, "
                "dead_letters, max_event_time, duration_ms, recorded_at) "
                "VALUES ('00000000-0000-0000-0000-000000000001', 'readings', :b, 2000, 2000, 0, :e, 900, :t)"
            ),
            [{"b": b, "e": now - timedelta(seconds=5 * b), "t": now - timedelta(seconds=5 * b)} for b in range(20_000)],
        )
    with engine(settings, role="stream").begin() as conn:  # dead letters are the stream's to write
        conn.execute(
            text(
                "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, kafka_key, payload, reason, "
                "kafka_timestamp, recorded_at) VALUES ('panelInfo', 0, :o, NULL, 'x', 'invalid_json', :t, :t)"
            ),
            [{"o": o, "t": now - timedelta(seconds=o)} for o in range(50_000)],
        )


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]


def z(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def routes(panels: int, end: datetime, rng: random.Random) -> dict[str, Callable[[], tuple[str, dict]]]:
    """Route label -> a maker of one random request (path, query string)."""
    hours = int((end - START).total_seconds() // 3600)

    def panel() -> str:
        return panel_name(rng.randrange(panels))

    def hour_range(**extra: str) -> dict:
        start = START + timedelta(hours=rng.randrange(hours - 1))
        return {"from": z(start), "to": z(start + timedelta(hours=1)), **extra}

    def cursor() -> str:
        return base64.urlsafe_b64encode(panel().encode()).decode().rstrip("=")

    made: dict[str, Callable[[], tuple[str, dict]]] = {
        "GET /power/{id} (1 h)": lambda: (f"/power/{panel()}", hour_range()),
        "GET /panels (page of 100)": lambda: ("/api/v1/panels", {"cursor": cursor()}),
        "GET /panels/{id}": lambda: (f"/api/v1/panels/{panel()}", {}),
        "GET /panels/{id}/readings (1 h)": lambda: (f"/api/v1/panels/{panel()}/readings", hour_range()),
        "GET /panels/{id}/readings csv (1 h)": lambda: (
            f"/api/v1/panels/{panel()}/readings",
            hour_range(format="csv"),
        ),
        "GET /panels/{id}/windows (1 h)": lambda: (f"/api/v1/panels/{panel()}/windows", hour_range()),
        "GET /fleet/overview": lambda: ("/api/v1/fleet/overview", {}),
        "GET /alerts": lambda: ("/api/v1/alerts", {"state": "all"}),
        "GET /health": lambda: ("/api/v1/health", {}),
    }
    energy_cases = {  # unit -> (days of range or None for the default, extra parameters)
        "QUARTER_OF_AN_HOUR": (1, {}),
        "HOUR": (1, {}),
        "DAY": (31, {}),
        "WEEK": (None, {}),
        "MONTH": (None, {}),
        "YEAR": (None, {}),
    }

    def energy_query(unit: str, days: int | None, extra: dict) -> dict:
        query = {"unit": unit, **extra}
        if days is not None:
            query |= {"from": z(end - timedelta(days=days)), "to": z(end)}
        return query

    for unit, (days, extra) in energy_cases.items():
        query = energy_query(unit, days, extra)
        made[f"GET /panels/{{id}}/energy {unit}"] = partial(lambda q: (f"/api/v1/panels/{panel()}/energy", q), query)
        made[f"GET /fleet/energy {unit}"] = partial(lambda q: ("/api/v1/fleet/energy", q), query)
    madrid = energy_query("DAY", 31, {"tz": "Europe/Madrid"})
    made["GET /fleet/energy DAY tz=Europe/Madrid"] = lambda: ("/api/v1/fleet/energy", madrid)
    made["GET /panels/{id}/energy DAY tz=Europe/Madrid"] = lambda: (f"/api/v1/panels/{panel()}/energy", madrid)
    return made


def measure(settings: Settings, panels: int, end: datetime, count: int) -> list[tuple[str, float, float]]:
    from solar_platform.api.app import create_app

    client = create_app(settings, rate_per_second=None, clock=lambda: end.replace(tzinfo=UTC)).test_client()
    rng = random.Random(42)
    results = []
    for label, make in routes(panels, end, rng).items():
        samples = []
        for i in range(count + 10):
            path, query = make()
            started = time.perf_counter()
            response = client.get(path, query_string=query)
            body = response.get_data()
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, (label, response.status_code, body[:300])
            if i >= 10:  # warm-up
                samples.append(elapsed)
        p50, p99 = percentiles(samples)
        results.append((label, p50, p99))
        print(f"{label:<48} n={count:4d} p50={p50:8.2f} ms p99={p99:8.2f} ms", flush=True)
    return results


def export_whole_day(settings: Settings, end: datetime) -> tuple[int, float]:
    from solar_platform.api.app import create_app

    client = create_app(settings, rate_per_second=None, clock=lambda: end.replace(tzinfo=UTC)).test_client()
    started = time.perf_counter()
    response = client.get(
        f"/api/v1/panels/{panel_name(7)}/readings",
        query_string={"from": z(START), "to": z(START + timedelta(days=1)), "format": "csv"},
    )
    lines = response.get_data(as_text=True).count("\n") - 1
    return lines, time.perf_counter() - started


def old_queries(rev: str):  # noqa: ANN201 - a module loaded from git
    source = subprocess.run(
        ["git", "show", f"{rev}:solar_platform/storage/queries.py"],
        cwd=PROJECT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="solar_old_")) / "old_queries.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_queries", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["old_queries"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def measure_before(settings: Settings, end: datetime, rev: str, cap_s: int) -> list[tuple[str, float | None]]:
    """The old code's answer to the issue's questions, once each (they scan panelData)."""
    old = old_queries(rev)
    reader = engine(settings, readonly=True)
    today = end.replace(hour=0, minute=0, second=0, microsecond=0)
    cases: list[tuple[str, Callable]] = [
        (
            "GET /fleet/overview",
            lambda c: (
                old.fleet_now(c, end - timedelta(minutes=1)),
                old.daily_energy(c, None, today.date(), today.date()),
                old.lifetime_energy(c, None),
            ),
        ),
        ("GET /fleet/energy DAY (2 days)", lambda c: old.energy_buckets(c, None, START, end, old.EnergyUnit.DAY)),
        (
            "GET /fleet/energy HOUR (1 day)",
            lambda c: old.energy_buckets(c, None, end - timedelta(days=1), end, old.EnergyUnit.HOUR),
        ),
        ("GET /panels/{id} (lifetime)", lambda c: old.lifetime_energy(c, panel_name(3))),
        ("GET /panels (page of 100)", lambda c: old.list_panels(c, limit=101)),
        ("GET /health", lambda c: old.stream_health(c, end)),
    ]
    results = []
    for label, ask in cases:
        with reader.connect() as conn:
            conn.execute(text(f"SET SESSION max_statement_time = {cap_s}"))
            started = time.perf_counter()
            try:
                ask(conn)
                seconds: float | None = time.perf_counter() - started
            except Exception as exc:  # noqa: BLE001 - a statement over the cap is the result
                print(f"  {label}: stopped at the {cap_s} s cap ({type(exc).__name__})")
                seconds = None
        results.append((label, seconds))
        if seconds is not None:
            print(f"before {label:<40} {seconds * 1000:12.1f} ms", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panels", type=int, default=2000)
    parser.add_argument("--per-panel", type=int, default=25_000, help="readings per panel, 5 s apart")
    parser.add_argument("--queries", type=int, default=200, help="timed requests per route")
    parser.add_argument("--database", help="reuse this kept database (skip loading and deriving)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--before", action="store_true", help="also time the old query functions, once each")
    parser.add_argument("--before-rev", default="HEAD", help="git revision of the old queries.py")
    parser.add_argument("--before-cap", type=int, default=300, help="statement time cap for the old code, s")
    args = parser.parse_args()

    base = load_settings()
    end = START + timedelta(seconds=args.per_panel * INTERVAL_S)
    name = args.database or f"bench_api_{uuid.uuid4().hex[:8]}"
    settings = base.model_copy(update={"mysql_database": name})
    rows = args.panels * args.per_panel
    try:
        if not args.database:
            provision_database(settings)
            migrate(settings)
            print(f"database {name}: {rows:,} readings, {args.panels} panels, {START} .. {end} UTC", flush=True)
            load_s = timed("load", lambda: load(settings, args.panels, args.per_panel))
            print(f"  load: {rows / load_s:,.0f} rows/s")
            costs = derive(settings, end)
            print("derive: " + ", ".join(f"{k} {v:.1f} s" for k, v in costs.items()))
            registry_and_ops(settings, args.panels, end)
        lines, seconds = export_whole_day(settings, end)
        print(f"csv export of one panel's whole day: {lines:,} rows in {seconds * 1000:.0f} ms")
        results = measure(settings, args.panels, end, args.queries)
        worst = max(p99 for _, _, p99 in results)
        print(
            f"worst p99 {worst:.2f} ms: target p99 <= {TARGET_P99_MS:.0f} ms "
            f"{'met' if worst <= TARGET_P99_MS else 'NOT met'} for every route"
        )
        if args.before:
            measure_before(settings, end, args.before_rev, args.before_cap)
    finally:
        if args.keep or args.database:
            print(f"kept database {name}")
        else:
            drop_database(base, name)
            print(f"dropped {name}")


if __name__ == "__main__":
    main()
