"""Every periodic path and route at 200k panels, while the stream ingests live readings, with the
old code asked the same questions in the same run (issue 18).

Run by hand against the running local stack (MariaDB started with --local-infile=1); prints JSON:

    .venv/bin/python bench/health_at_scale.py --before-tree <checkout of the old commit>
    .venv/bin/python bench/health_at_scale.py --keep --build-only          # build, keep, print the name
    .venv/bin/python bench/health_at_scale.py --database bench_health_x --before-tree <dir>   # measure only

**Build** (a scratch database and topic on the running stack):
1. The registry: `--panels` panels with their Pmax, written by the registry sync itself.
2. `--minutes` of readings at 5 s for every panel, ending when the build starts, from the fleet's
   own simulator (its power model and offline blips) with injected faults (`fleet.faults`: silent,
   offline, zero production, stuck, underperforming and over-range panels, all outside the live
   fleet). Written the stream's way: `storage.stream.commit.commit_batch` (LOAD DATA inside) one
   minute of the whole fleet per transaction, with the stream's progress row (the pipeline's
   frontier) and its `fleet_now` row.
3. Daily rollups of the `--rollup-days` days before (LOAD DATA, written directly), past alerts and
   dead letters.

**Measure**, while `solar-platform stream run` and a live fleet of `--live-panels` panels of their
own (`live-000000`...) run as subprocesses on the same database and topic:
- fault evaluation (`storage.health.alerts.run_health`) with the platform's clock pinned inside
  the history, minute after minute from its first minute: the sensor's steady state, each run
  reading the one minute completed since the previous run (`--eval-budget` bounds the phase), then
  the last minute read again with its pages in the buffer pool (the read's cost without the disk);
- the live checks' functions (`orchestration/live/checks.py`) on the same pinned clock, the
  registry sync, every API route (in-process client, read-only user) and every Grafana query
  (expanded as Grafana expands them, read-only user, UTC session).
Every statement of the new code is capped too (`--after-cap`): a path past it is reported, not
waited for. The clock is pinned because only the history holds 200k panels: the live fleet is a subset (the
machine does not carry 200k panels live), and its other panels would all be silent at the wall clock.

**Before** (`--before-tree`, a checkout of the old code): the same questions, asked by the old code
in a subprocess with PYTHONPATH on that tree, each statement capped (`--cap`, MariaDB's
`max_statement_time`): "> cap" when it hits the cap. Its writes are rolled back. The old
completeness check measured its window back from the newest reading; it is given the same pinned
moment (its SELECT MAX(time_data) answered with it) so that both judge the same minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
INTERVAL_S = 5.0
SEED = 42
LIVE_PREFIX = "live-"
FAULT_KINDS = {"silent": 100, "offline": 100, "zero_production": 100, "stuck": 100, "underperforming": 100,
               "over_range": 100}
TARGETS = {"fault evaluation (warm)": 5.0, "live check": 2.0, "registry sync": 2.0, "api p99 ms": 50.0,
           "grafana ms": 500.0}


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "median": round(statistics.median(ordered), 4), "max": round(ordered[-1], 4),
            "p99": round(ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))], 4)}


class RollbackEngine:
    """An engine whose `begin()` rolls back: the old code's writes leave no trace. `seconds` is the
    time spent inside the transaction, the rollback left out."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seconds = 0.0

    @contextlib.contextmanager
    def begin(self) -> Iterator[Any]:
        with self.engine.connect() as conn:
            transaction = conn.begin()
            started = time.perf_counter()
            try:
                yield conn
            finally:
                self.seconds += time.perf_counter() - started
                transaction.rollback()

    def connect(self) -> Any:
        return self.engine.connect()


def cap_statements(seconds: int) -> None:
    """Every new pooled connection of this process: MariaDB stops a statement after `seconds`."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION max_statement_time = {seconds}")
        cursor.close()

    event.listen(Pool, "connect", on_connect)


def capped(action: Callable[[], Any], cap: int) -> tuple[float | None, Any, str | None]:
    """(seconds or None past the cap, result, error)."""
    started = time.perf_counter()
    try:
        result = action()
    except Exception as exc:  # noqa: BLE001 - a statement past the cap is a result
        seconds = time.perf_counter() - started
        message = f"{type(exc).__name__}: {str(exc)[:200]}"
        over = "max_statement_time" in message or "1969" in message or seconds >= cap * 0.95
        return (None if over else seconds), None, message
    return time.perf_counter() - started, result, None


# ---------------------------------------------------------------------------------- routes, Grafana
def api_routes(meta: dict, rng: random.Random) -> dict[str, Callable[[], tuple[str, dict]]]:
    """Route label -> a maker of one random request (path, query string); the same in both codes."""
    import base64
    from functools import partial

    panels = meta["panels"]
    first = datetime.fromisoformat(meta["history_start"])
    last = datetime.fromisoformat(meta["history_end"])
    span = int((last - first).total_seconds())

    def z(moment: datetime) -> str:
        return naive(moment).isoformat() + "Z"

    def panel() -> str:
        return f"panel-{rng.randrange(panels):06d}"

    def hour_range(**extra: str) -> dict:  # one hour ending somewhere in the history's second half
        end = first + timedelta(seconds=span // 2 + rng.randrange(span // 2))
        return {"from": z(end - timedelta(hours=1)), "to": z(end), **extra}

    def cursor() -> str:
        return base64.urlsafe_b64encode(panel().encode()).decode().rstrip("=")

    now = datetime.now(UTC)
    made: dict[str, Callable[[], tuple[str, dict]]] = {
        "GET /power/{id} (1 h)": lambda: (f"/power/{panel()}", hour_range()),
        "GET /panels (page of 100)": lambda: ("/api/v1/panels", {"cursor": cursor()}),
        "GET /panels/{id}": lambda: (f"/api/v1/panels/{panel()}", {}),
        "GET /panels/{id}/readings (1 h)": lambda: (f"/api/v1/panels/{panel()}/readings", hour_range()),
        "GET /panels/{id}/readings csv (1 h)": lambda: (f"/api/v1/panels/{panel()}/readings",
                                                        hour_range(format="csv")),
        "GET /panels/{id}/windows (1 h)": lambda: (f"/api/v1/panels/{panel()}/windows", hour_range()),
        "GET /fleet/overview": lambda: ("/api/v1/fleet/overview", {}),
        "GET /alerts": lambda: ("/api/v1/alerts", {"state": "all"}),
        "GET /alerts?state=open": lambda: ("/api/v1/alerts", {"state": "open"}),
        "GET /health": lambda: ("/api/v1/health", {}),
    }
    energy_cases = {"QUARTER_OF_AN_HOUR": 1, "HOUR": 1, "DAY": 31, "WEEK": None, "MONTH": None, "YEAR": None}
    for unit, days in energy_cases.items():
        query = {"unit": unit} | ({"from": z(now - timedelta(days=days)), "to": z(now)} if days else {})
        made[f"GET /panels/{{id}}/energy {unit}"] = partial(lambda q: (f"/api/v1/panels/{panel()}/energy", q), query)
        made[f"GET /fleet/energy {unit}"] = partial(lambda q: ("/api/v1/fleet/energy", q), query)
    return made


def time_api(settings: Any, meta: dict, requests: int, cap_s: float | None) -> dict[str, dict]:
    """Every route, `requests` times after 5 warm-up requests, through the app's test client (the
    read-only user; no rate limit). With `cap_s`, a route stops after a request that took longer."""
    from solar_platform.api.app import create_app

    client = create_app(settings, rate_per_second=None).test_client()
    gc.collect()
    gc.freeze()  # as each API worker does once its app is built (api/commands.py)
    rng = random.Random(SEED)
    results: dict[str, dict] = {}
    for label, make in api_routes(meta, rng).items():
        samples, statuses, note = [], set(), None
        for i in range(requests + 5):
            path, query = make()
            started = time.perf_counter()
            response = client.get(path, query_string=query)
            response.get_data()
            elapsed = time.perf_counter() - started
            statuses.add(response.status_code)
            if response.status_code != 200:
                note = f"HTTP {response.status_code}: {response.get_data(as_text=True)[:160]}"
                if cap_s is not None and elapsed >= cap_s * 0.95:
                    samples, note = [], f"> cap ({note})"
                    break
            if i >= 5 or (cap_s is not None and elapsed > 10):
                samples.append(elapsed * 1000)
            if cap_s is not None and elapsed > 10:  # the old code: one slow answer says enough
                break
        results[label] = {**(stats(samples) if samples else {"n": 0}), "status": sorted(statuses),
                          **({"note": note} if note else {})}
        log(f"  api {label}: {results[label]}")
    return results


def time_grafana(settings: Any, panel_id: str, repeats: int, cap_s: int | None) -> dict[str, dict]:
    """Every dashboard query (panels and variables), expanded the way Grafana does, run as the
    read-only user in a UTC session `repeats` times; the dashboards of the code on sys.path."""
    from solar_platform.storage import db
    from solar_platform_tests.deploy.grafana_sql import QueryContext, dashboards, expand, queries, relative_range

    now = datetime.now(UTC).replace(microsecond=0)
    raw = db.engine(settings, readonly=True).raw_connection()
    results: dict[str, dict] = {}
    try:
        cursor = raw.cursor()
        cursor.execute("SET time_zone = '+00:00'")
        if cap_s:
            cursor.execute(f"SET SESSION max_statement_time = {cap_s}")
        for board in dashboards().values():
            start = relative_range(board["time"]["from"], now)
            for query in queries(board):
                sql = expand(query.sql, QueryContext(start, now, query.interval,
                                                {"panel": panel_id, "site": "(all)", "search": panel_id}))
                samples, rows, error = [], 0, None
                for _ in range(repeats):
                    started = time.perf_counter()
                    try:
                        cursor.execute(sql)
                        rows = len(cursor.fetchall())
                    except Exception as exc:  # noqa: BLE001 - past the cap
                        error = f"{type(exc).__name__}: {str(exc)[:160]}"
                        break
                    samples.append((time.perf_counter() - started) * 1000)
                label = f"{query.dashboard} / {query.where}"
                results[label] = {**(stats(samples) if samples else {"n": 0}), "rows": rows,
                                  **({"error": error} if error else {})}
                log(f"  grafana {label}: {results[label]}")
    finally:
        raw.close()
    return results


def pinned_moments(meta: dict, lookback_minutes: float, settle_s: float) -> list[datetime]:
    """The pinned clock of each fault evaluation: the first with a whole lookback of history behind
    it, then one a minute while the history lasts."""
    first = datetime.fromisoformat(meta["history_start"]).replace(tzinfo=UTC)
    last = datetime.fromisoformat(meta["history_end"]).replace(tzinfo=UTC)
    moment = first + timedelta(minutes=lookback_minutes + 2, seconds=settle_s + 5)
    moments = []
    while moment <= last + timedelta(seconds=settle_s + 5):
        moments.append(moment)
        moment += timedelta(minutes=1)
    return moments


def configured_pmax(meta: dict) -> dict[str, float]:
    from solar_platform.fleet.state import FleetState
    from solar_platform.settings import load_settings

    state = FleetState.create(load_settings(), panels=meta["panels"], seed=SEED)
    return dict(zip(state.panel_ids, state.pmax_w.tolist(), strict=True))


# ---------------------------------------------------------------------------------------- build
def build(settings: Any, panels: int, live_panels: int, minutes: int, rollup_days: int) -> dict:
    """The scratch database's history (see the module docstring); returns the run's metadata."""
    import numpy as np
    from sqlalchemy import text

    from solar_platform.fleet.simulation import FleetSimulator
    from solar_platform.storage import db
    from solar_platform.storage.health.registry import sync_panel_registry
    from solar_platform.storage.stream.commit import commit_batch
    from solar_platform.storage.stream.latest import LatestReadings, record_fleet_now
    from solar_platform.storage.stream.readings import Readings

    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes)
    rng = np.random.default_rng(SEED)
    faulty = rng.choice(np.arange(live_panels, panels), size=sum(FAULT_KINDS.values()), replace=False)
    faults, at = {}, 0
    for kind, count in FAULT_KINDS.items():
        faults[kind] = [f"panel-{i:06d}" for i in sorted(faulty[at:at + count].tolist())]
        at += count
    fault_start = start + timedelta(minutes=3)
    spec = {"seed": SEED, "faults": [{"kind": kind, "panels": ids, "start": fault_start.isoformat()}
                                     for kind, ids in faults.items()]}
    simulator = FleetSimulator(settings, fleet_start=start, panels=panels, seed=SEED, history=True, faults=spec)
    ids = np.asarray(simulator.panel_ids, dtype=object)
    costs: dict[str, float] = {}

    started = time.perf_counter()
    sync_panel_registry(db.engine(settings, bulk_load=True),
                        dict(zip(simulator.panel_ids, simulator.state.pmax_w.tolist(), strict=True)))
    costs["registry_s"] = round(time.perf_counter() - started, 1)
    log(f"registry: {panels:,} panels in {costs['registry_s']} s")

    writer = db.engine(settings.as_role("stream"), bulk_load=True)
    latest = LatestReadings()
    cycles_per_chunk = int(60 / INTERVAL_S)
    time_ms = int(start.timestamp() * 1000)
    written, commit_s = 0, 0.0
    for chunk in range(minutes):
        power = np.empty((cycles_per_chunk, panels))
        status = np.empty((cycles_per_chunk, panels), dtype=np.int8)
        sent = np.ones((cycles_per_chunk, panels), dtype=bool)
        times = np.empty(cycles_per_chunk, dtype=np.int64)
        for k in range(cycles_per_chunk):
            cycle = simulator.cycle(time_ms)
            power[k], status[k], times[k] = cycle.power_w, cycle.status, time_ms
            if cycle.present is not None:
                sent[k] = cycle.present
            time_ms += int(INTERVAL_S * 1000)
        keep = sent.T.ravel()  # sorted by (panel, time), as a batch's readings are
        readings = Readings(ids, np.repeat(np.arange(panels, dtype=np.int64), cycles_per_chunk)[keep],
                            np.tile(times * 1000, panels)[keep], power.T.ravel()[keep], status.T.ravel()[keep])
        recorded = datetime.fromtimestamp(times[-1] / 1000 + INTERVAL_S, UTC).replace(tzinfo=None)
        frontier = readings.frontier_us()
        began = time.perf_counter()
        with writer.begin() as conn:
            committed = commit_batch(conn, readings, latest, settings.energy_max_gap_seconds)
            record_fleet_now(conn, committed.latest, as_of=recorded.replace(tzinfo=UTC), reference_us=frontier,
                             horizon_seconds=settings.current_power_horizon_seconds)
            conn.execute(text(
                f"INSERT INTO {db.STREAM_PROGRESS} (query_id, query_name, batch_id, rows_in, rows_written, "
                "dead_letters, readings_appended, readings_corrected, max_event_time, frontier_time, duration_ms, "
                "recorded_at) VALUES ('bench-history', 'readings', :b, :n, :w, 0, :a, :c, :newest, :frontier, :ms, "
                ":at)"),
                {"b": chunk, "n": len(readings), "w": committed.appended + committed.corrected,
                 "a": committed.appended, "c": committed.corrected,
                 "newest": datetime(1970, 1, 1) + timedelta(milliseconds=int(times[-1])),
                 "frontier": datetime(1970, 1, 1) + timedelta(microseconds=frontier),
                 "ms": int((time.perf_counter() - began) * 1000), "at": recorded})
        latest = committed.latest
        seconds = time.perf_counter() - began
        commit_s += seconds
        written += len(readings)
        log(f"history minute {chunk + 1}/{minutes}: {len(readings):,} readings in {seconds:.1f} s "
            f"({len(readings) / seconds:,.0f}/s); {written:,} so far, load {load_average()}")
    costs["history_commit_s"] = round(commit_s, 1)
    costs["history_readings_per_s"] = round(written / commit_s)

    started = time.perf_counter()
    rollups(settings, simulator.panel_ids, simulator.state.pmax_w, start.date(), rollup_days)
    past_alerts_and_dead_letters(settings, panels, start)
    costs["rollups_alerts_dead_letters_s"] = round(time.perf_counter() - started, 1)
    with db.engine(settings, role="migrator").connect() as conn:
        for table in ("panelData", "panelDataAgg", "panel_energy_15min", "panel_latest", "panels",
                      "panel_daily_energy", "panel_alerts", "stream_progress", "dead_letters"):
            conn.execute(text(f"ANALYZE TABLE `{table}`")).all()
    return {"database": settings.mysql_database, "panels": panels, "live_panels": live_panels,
            "history_start": naive(start).isoformat(), "history_end": naive(end).isoformat(),
            "readings": written, "fault_start": naive(fault_start).isoformat(), "faults": faults,
            "production_start": settings.production_start.isoformat(), "production_hours": settings.production_hours,
            "rollup_days": rollup_days, "build": costs}


def rollups(settings: Any, panel_ids: list[str], pmax: Any, first_history_day: date, days: int) -> None:
    """Daily rollups of the days before the history, loaded directly (the dashboards' daily panels)."""
    import numpy as np
    import pyarrow as pa
    from sqlalchemy import text

    from solar_platform.storage import db
    from solar_platform.storage.stream import bulk

    rng = np.random.default_rng(SEED + 1)
    count = len(panel_ids)
    engine = db.engine(settings, bulk_load=True)
    computed = int(datetime.now(UTC).timestamp() * 1_000_000)
    for back in range(days, 0, -1):
        day = first_history_day - timedelta(days=back)
        energy = pmax * settings.production_hours * 0.35 * rng.uniform(0.9, 1.0, count)
        peak = pmax * rng.uniform(0.97, 1.0, count)
        uptime = rng.uniform(0.8, 0.86, count)
        received = np.full(count, 17280 - 40, dtype=np.int64)
        with engine.begin() as conn:
            bulk.load(conn, db.PANEL_DAILY_ENERGY, [
                bulk.Column("day", pa.array([day.isoformat()] * count)), bulk.Column("panel_id", pa.array(panel_ids)),
                bulk.Column("energy_wh", energy), bulk.Column("covered_seconds", np.full(count, 86_000.0)),
                bulk.Column("peak_w", peak), bulk.Column("pmax_w", np.asarray(pmax, dtype=np.float64)),
                bulk.Column("uptime_share", uptime), bulk.Column("readings_received", received),
                bulk.Column("readings_expected", np.full(count, 17280, dtype=np.int64)),
                bulk.Column("day_seconds", np.full(count, 86400, dtype=np.int64)),
                bulk.Column("time_zone", pa.array([settings.site_timezone] * count)),
                bulk.Column("computed_at", np.full(count, computed, dtype=np.int64), "time_us")])
            conn.execute(text(
                f"INSERT INTO {db.FLEET_DAILY_ENERGY} (day, energy_wh, covered_seconds, peak_panel_w, "
                "panels_reporting, readings_received, readings_expected, mean_uptime_share, day_seconds, time_zone, "
                "computed_at) "
                "SELECT day, SUM(energy_wh), SUM(covered_seconds), MAX(peak_w), COUNT(*), SUM(readings_received), "
                f"SUM(readings_expected), AVG(uptime_share), 86400, :tz, UTC_TIMESTAMP(3) FROM {db.PANEL_DAILY_ENERGY} "
                "WHERE day = :d GROUP BY day"), {"d": day, "tz": settings.site_timezone})
        log(f"rollups of {day}: {count:,} panel rows")


def past_alerts_and_dead_letters(settings: Any, panels: int, start: datetime) -> None:
    """Resolved alerts of the days before and a few dead letters in the history (the alert routes'
    and dashboards' volume)."""
    from sqlalchemy import text

    from solar_platform.storage import db

    rng = random.Random(SEED)
    kinds = ("offline", "silent", "zero_production", "stuck", "underperforming", "over_range")
    begin = naive(start)
    rows = []
    for i in range(20_000):
        opened = begin - timedelta(seconds=rng.randrange(3 * 86400))
        rows.append({"p": f"panel-{rng.randrange(panels):06d}", "k": kinds[i % len(kinds)], "o": opened,
                     "r": opened + timedelta(minutes=rng.randrange(5, 240)), "d": "resolved before the bench"})
    with db.engine(settings).begin() as conn:
        conn.execute(text(
            f"INSERT INTO {db.PANEL_ALERTS} (panel_id, kind, state, opened_at, resolved_at, last_checked, detail) "
            "VALUES (:p, :k, 'resolved', :o, :r, :r, :d)"), rows)
    with db.engine(settings.as_role("stream")).begin() as conn:
        conn.execute(text(
            f"INSERT INTO {db.DEAD_LETTERS} (kafka_topic, kafka_partition, kafka_offset, kafka_key, payload, reason, "
            "kafka_timestamp, recorded_at) VALUES (:topic, 0, :o, 'x', :payload, :reason, :t, :t)"),
            [{"topic": settings.topic, "o": o, "payload": b'{"Panel_id": "x", "power_panel": "?"}',
              "reason": ("invalid_json", "missing_field", "time_in_future")[o % 3],
              "t": begin + timedelta(seconds=o)} for o in range(2000)])


# --------------------------------------------------------------------------------- the live part
class Live:
    """`solar-platform stream run` and a live fleet, as subprocesses on the scratch database/topic."""

    def __init__(self, settings: Any, env: dict[str, str], fleet_env: dict[str, str], live_panels: int,
                 logs: Path) -> None:
        self.settings, self.env, self.fleet_env = settings, env, fleet_env
        self.live_panels, self.logs = live_panels, logs
        self.processes: dict[str, subprocess.Popen] = {}
        self.started: datetime | None = None

    def start(self) -> None:
        from solar_platform.runtime.kafka_provisioning import ensure_topic

        ensure_topic(self.settings)
        self.logs.mkdir(parents=True, exist_ok=True)
        commands = {
            "stream": [sys.executable, "-m", "solar_platform", "stream", "run"],
            "fleet": [sys.executable, "-m", "solar_platform", "fleet", "run", "--panels", str(self.live_panels),
                      "--interval", str(INTERVAL_S), "--seed", str(SEED)],
        }
        self.started = datetime.now(UTC)
        for name, command in commands.items():
            out = (self.logs / f"{self.settings.mysql_database}-{name}.log").open("w")
            self.processes[name] = subprocess.Popen(command, cwd=PROJECT, env=self.fleet_env if name == "fleet"
                                                    else self.env, stdout=out,
                                                    stderr=subprocess.STDOUT, start_new_session=True)
            log(f"started {name} (pid {self.processes[name].pid})")

    def wait_for_batches(self, timeout_s: float = 600) -> None:
        from sqlalchemy import text

        from solar_platform.storage import db

        deadline = time.monotonic() + timeout_s
        with db.engine(self.settings).connect() as conn:
            while time.monotonic() < deadline:
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited with {process.returncode}: see {self.logs}")
                # only this run's batches: a kept database holds an earlier run's
                written = conn.execute(text(
                    f"SELECT COALESCE(SUM(rows_written), 0) FROM {db.STREAM_PROGRESS} "
                    "WHERE query_id <> 'bench-history' AND recorded_at >= :s"),
                    {"s": naive(self.started)}).scalar()
                conn.rollback()
                if written and written >= self.live_panels:
                    log(f"the stream committed {written:,} live readings")
                    return
                time.sleep(5)
        raise RuntimeError(f"the stream committed no live readings within {timeout_s:.0f} s: see {self.logs}")

    def figures(self, since: datetime) -> dict[str, Any]:
        """What the stream did since `since`: readings/s and the lag of each batch."""
        from sqlalchemy import text

        from solar_platform.storage import db

        with db.engine(self.settings).connect() as conn:
            rows = conn.execute(text(
                "SELECT recorded_at, rows_written, TIMESTAMPDIFF(MICROSECOND, max_event_time, recorded_at) / 1e6, "
                f"duration_ms FROM {db.STREAM_PROGRESS} WHERE query_id <> 'bench-history' AND recorded_at >= :s "
                "ORDER BY recorded_at"), {"s": naive(since)}).all()
        if len(rows) < 2:
            return {"batches": len(rows)}
        seconds = (rows[-1][0] - rows[0][0]).total_seconds()
        lags = [float(r[2]) for r in rows if r[2] is not None] or [float("nan")]
        quarter = max(1, len(lags) // 4)
        return {"batches": len(rows), "readings_per_s": round(sum(int(r[1]) for r in rows[1:]) / seconds),
                "offered_per_s": round(self.live_panels / INTERVAL_S),
                "lag_s": stats(lags), "lag_first_quarter_median_s": round(statistics.median(lags[:quarter]), 1),
                "lag_last_quarter_median_s": round(statistics.median(lags[-quarter:]), 1),
                "batch_s": stats([int(r[3]) / 1000 for r in rows])}

    def stop(self) -> None:
        for name in ("fleet", "stream"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log(f"stopped {name} (exit {process.returncode})")


# ------------------------------------------------------------------------------------ after (new)
def measure_after(settings: Any, meta: dict, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from solar_platform.orchestration.ingestion.stream_lag import stream_lag_figures
    from solar_platform.orchestration.resources import KafkaResource, SolarSettingsResource
    from solar_platform.storage import db, pipeline_status
    from solar_platform.storage.health import alerts, features, quality
    from solar_platform.storage.health import faults as fault_rules
    from solar_platform.storage.health.registry import sync_panel_registry

    cap_statements(args.after_cap)  # a statement past the cap is a result ("> cap"), not a hang
    db.engine(settings).dispose()  # connections made before the cap
    out: dict[str, Any] = {"load_before": load_average(), "cap_s": args.after_cap}
    th = fault_rules.FaultThresholds.from_settings(settings)
    judged_at = pinned_moments(meta, th.lookback_minutes, settings.health_settle_seconds)[: args.evaluations][-1]
    # The sensor's steady state: it has run every minute since the history began, so each run reads
    # the one minute completed since the previous run (its first runs judge a partly empty lookback).
    first = datetime.fromisoformat(meta["history_start"]).replace(tzinfo=UTC)
    moments = [first + timedelta(minutes=1 + k, seconds=settings.health_settle_seconds + 5)
               for k in range(args.evaluations)]

    # Fault evaluation: each step of run_health timed (the read, the rules, the writes).
    steps: dict[str, float] = {}

    def timed(name: str, function: Callable) -> Callable:
        def wrapper(*a: Any, **k: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - began
        return wrapper

    originals = (features.load_features, fault_rules.evaluate, fault_rules.decide, alerts.apply_decisions)
    features.load_features = timed("read_features", features.load_features)
    fault_rules.evaluate = timed("rules", fault_rules.evaluate)
    fault_rules.decide = timed("rules", fault_rules.decide)
    alerts.apply_decisions = timed("write_alerts", alerts.apply_decisions)
    engine = db.engine(settings)
    cache = features.FeatureCache()
    runs: list[dict[str, Any]] = []
    spent = 0.0
    try:
        for moment in moments:
            if spent > args.eval_budget:
                log(f"fault evaluation: budget of {args.eval_budget} s spent after {len(runs)} runs")
                break
            steps.clear()
            seconds, run, error = capped(lambda m=moment: alerts.run_health(engine, settings, now=m, cache=cache),
                                         args.after_cap)
            spent += seconds if seconds is not None else args.after_cap
            runs.append({"now": naive(moment).isoformat(), "seconds": None if seconds is None else round(seconds, 3),
                         "steps": {name: round(value, 3) for name, value in steps.items()},
                         **({"error": error} if error else {
                             "opened": run.changes.opened, "confirmed": run.changes.confirmed,
                             "resolved": run.changes.resolved, "open_by_kind": run.changes.open_by_kind,
                             "pipeline_alarm": run.pipeline.open, "panels": len(run.evaluation.panel_ids)})})
            log(f"fault evaluation at {moment:%H:%M:%S}: {runs[-1]}")
            if error:
                break
    finally:
        features.load_features, fault_rules.evaluate, fault_rules.decide, alerts.apply_decisions = originals
    done = [r for r in runs if r["seconds"] is not None]
    out["fault_evaluation"] = {
        "warm": stats([r["seconds"] for r in done]) if done else None,
        "warm_steps_median": {name: round(statistics.median(r["steps"].get(name, 0.0) for r in done), 3)
                              for name in ("read_features", "rules", "write_alerts")} if done else None,
        "runs": runs}
    # The same minute read again: its pages now in the buffer pool (the read's cost without disk).
    if done:
        until_s = features.judged_until(datetime.fromisoformat(done[-1]["now"]).replace(tzinfo=UTC),
                                        settings.health_settle_seconds, None, th.step_seconds)
        hot = []
        for _ in range(3):
            with engine.connect() as conn:
                began = time.perf_counter()
                features._read_minutes(conn, until_s - th.lookback_buckets * th.step_seconds, th.step_seconds,
                                       until_s - th.step_seconds, until_s)
                hot.append(time.perf_counter() - began)
        out["fault_evaluation"]["minute_read_pages_cached"] = stats(hot)
        log(f"one minute's read again, pages cached: {stats(hot)}")

    # The live checks' functions, with their window from the pipeline's frontier at the pinned clock.
    def buckets(conn: Any, minutes: float) -> tuple[datetime, datetime]:
        frontier = pipeline_status.frontier(conn, judged_at, timedelta(minutes=settings.health_lookback_minutes))
        return quality.complete_buckets(frontier or naive(judged_at), minutes)

    def complete() -> dict:
        with db.engine(settings).connect() as conn:
            start, end = buckets(conn, settings.check_completeness_window_minutes)
            return quality.delivery(conn, start=start, end=end, interval_seconds=settings.interval_seconds,
                                    min_share=settings.check_completeness_min_share)

    def power_bounds() -> dict:
        with db.engine(settings).connect() as conn:
            start, end = buckets(conn, settings.check_recent_window_minutes)
            return {**quality.power_out_of_bounds(conn, start=start, end=end,
                                                  tolerance=settings.health_over_range_factor),
                    "window": f"{start:%H:%M}-{end:%H:%M}"}

    def dead_letters() -> dict:
        with db.engine(settings).connect() as conn:
            return quality.dead_letter_rate(conn, since=naive(judged_at) - timedelta(
                minutes=settings.check_dead_letter_window_minutes))

    def fresh(table: str) -> Callable[[], dict]:
        def check() -> dict:
            with db.engine(settings).connect() as conn:
                status = pipeline_status.live_table_status(conn, table)
            return {"newest": str(status.newest_event_time), "rows_estimate": status.rows_estimate}
        return check

    kafka = KafkaResource(solar=SolarSettingsResource.for_settings(settings))
    checks = {"panelData fresh": fresh(db.READINGS), "panelDataAgg fresh": fresh(db.WINDOWS),
              "panelData complete": complete, "panelData no_excess_readings": complete,
              "panelData power_within_bounds": power_bounds, "dead_letter_rate": dead_letters,
              "stream_lag": lambda: stream_lag_figures(settings, kafka)}
    out["live_checks"] = {}
    for name, check in checks.items():
        samples, figures, error = [], None, None
        for _ in range(args.repeats):
            seconds, figures, error = capped(check, args.after_cap)
            if seconds is None or error:
                break
            samples.append(seconds)
        out["live_checks"][name] = {**(stats(samples) if samples else {"n": 0, "max": None}),
                                    "figures": figures, **({"error": error} if error else {})}
        log(f"check {name}: {out['live_checks'][name]}")

    pmax = configured_pmax(meta)
    registry_engine = db.engine(settings, bulk_load=True)
    # One sync that compares the whole config (the record of the last sync cleared, as after a config
    # change or an edit to `panels`), then the steady state: nothing changed since the last sync.
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text(f"DELETE FROM {db.REGISTRY_SYNC}"))
    began = time.perf_counter()
    compared = sync_panel_registry(registry_engine, pmax)
    out["registry_sync_config_compared"] = {"seconds": round(time.perf_counter() - began, 3), "figures": compared}
    samples, figures = [], None
    for _ in range(args.repeats):
        began = time.perf_counter()
        figures = sync_panel_registry(registry_engine, pmax)
        samples.append(time.perf_counter() - began)
    out["registry_sync"] = {**stats(samples), "figures": figures}
    log(f"registry sync comparing the config: {out['registry_sync_config_compared']}")
    log(f"registry sync: {out['registry_sync']}")

    # The API in a process of its own, as it runs: not beside this one's 200k-panel feature cache,
    # whose garbage collections would land in the timings.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        out["api"] = pool.apply(time_api, (settings, meta, args.requests, None))
    out["grafana"] = time_grafana(settings, meta["faults"]["underperforming"][0], args.grafana_repeats,
                                  args.after_cap)
    out["load_after"] = load_average()
    return out


# ------------------------------------------------------------------------- before (old, subprocess)
def measure_before(settings: Any, meta: dict, args: argparse.Namespace) -> dict[str, Any]:
    """Runs inside the subprocess, with the old tree first on PYTHONPATH: only the old modules."""
    from sqlalchemy import text

    from solar_platform.storage import alerts as old_alerts
    from solar_platform.storage import data_quality as old_quality
    from solar_platform.storage import db, pipeline_status
    from solar_platform.storage import faults as old_faults
    from solar_platform.storage import registry as old_registry

    cap = args.cap
    cap_statements(cap)
    out: dict[str, Any] = {"cap_s": cap, "load_before": load_average()}
    th = old_faults.FaultThresholds.from_settings(settings)
    moment = pinned_moments(meta, th.lookback_minutes, settings.health_settle_seconds)[0]
    judged_at = pinned_moments(meta, th.lookback_minutes, settings.health_settle_seconds)[: args.evaluations][-1]

    def result(seconds: float | None, error: str | None, **extra: Any) -> dict:
        return {"seconds": None if seconds is None else round(seconds, 3),
                "over_cap": seconds is None and error is not None, **({"error": error} if error else {}), **extra}

    rolled = RollbackEngine(db.engine(settings))
    seconds, _, error = capped(lambda: old_alerts.run_health(rolled, settings, now=moment), cap)
    out["fault_evaluation"] = result(seconds, error, now=naive(moment).isoformat())
    log(f"old fault evaluation: {out['fault_evaluation']}")

    class AnchoredConnection:
        """The old completeness check's connection, its window's end answered with the pinned moment."""

        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def execute(self, statement: Any, *a: Any, **k: Any) -> Any:
            if str(statement).strip() == "SELECT MAX(time_data) FROM panelData":
                return self.conn.execute(text("SELECT CAST(:t AS DATETIME(3))"), {"t": naive(judged_at)})
            return self.conn.execute(statement, *a, **k)

    since = naive(judged_at) - timedelta(minutes=settings.check_recent_window_minutes)
    checks: dict[str, Callable[[Any], Any]] = {
        "panelData fresh": lambda c: pipeline_status.live_table_status(c, db.READINGS),
        "panelDataAgg fresh": lambda c: pipeline_status.live_table_status(c, db.WINDOWS),
        "panelData complete": lambda c: old_quality.completeness(
            AnchoredConnection(c), window=timedelta(minutes=settings.check_completeness_window_minutes),
            interval_seconds=settings.interval_seconds, min_share=settings.check_completeness_min_share),
        "panelData no_duplicate_readings": lambda c: old_quality.readings_per_tick_duplicates(
            c, since=since, interval_seconds=settings.interval_seconds),
        "panelData power_within_bounds": lambda c: old_quality.power_out_of_bounds(
            c, since=since, tolerance=settings.health_over_range_factor),
        "dead_letter_rate": lambda c: old_quality.dead_letter_rate(c, since=naive(judged_at) - timedelta(
            minutes=settings.check_dead_letter_window_minutes)),
    }
    out["live_checks"] = {}
    for name, check in checks.items():
        def run(check: Callable[[Any], Any] = check) -> Any:
            with db.engine(settings).connect() as conn:
                return check(conn)
        seconds, figures, error = capped(run, cap)
        out["live_checks"][name] = result(seconds, error, figures=str(figures)[:300] if figures else None)
        log(f"old check {name}: {out['live_checks'][name]}")

    rolled = RollbackEngine(db.engine(settings))
    pmax = configured_pmax(meta)
    seconds, figures, error = capped(lambda: old_registry.sync_panel_registry(rolled, pmax), cap)
    out["registry_sync"] = result(None if seconds is None else rolled.seconds, error, figures=figures)
    log(f"old registry sync: {out['registry_sync']}")

    out["api"] = time_api(settings, meta, args.before_requests, cap)
    out["grafana"] = time_grafana(settings, meta["faults"]["underperforming"][0], 1, cap)
    out["load_after"] = load_average()
    return out


# ---------------------------------------------------------------------------------------- report
def ratios(after: dict, before: dict) -> dict[str, Any]:
    """before / after per path (how many times faster), "> x" when the old code hit the cap."""

    def ratio(old: float | None, new: float | None, cap: float) -> str | None:
        if new is None or new <= 0:
            return None
        if old is None:
            return f"> {cap / new:,.0f}x"
        return f"{old / new:,.1f}x"

    cap = before["cap_s"]
    warm = after["fault_evaluation"]["warm"]["median"] if after["fault_evaluation"]["warm"] else None
    checks = {name: figures.get("median") for name, figures in after["live_checks"].items()}
    table: dict[str, Any] = {"fault evaluation (old vs warm)": ratio(
        before["fault_evaluation"]["seconds"], warm, cap)}
    pairs = {"panelData complete": "panelData complete",
             "panelData no_excess_readings": "panelData no_duplicate_readings",
             "panelData power_within_bounds": "panelData power_within_bounds",
             "dead_letter_rate": "dead_letter_rate", "panelData fresh": "panelData fresh",
             "panelDataAgg fresh": "panelDataAgg fresh"}
    for new, old in pairs.items():
        table[f"check {new}"] = ratio(before["live_checks"][old]["seconds"], checks[new], cap)
    table["registry sync"] = ratio(before["registry_sync"]["seconds"], after["registry_sync"]["median"], cap)
    for route, figures in after["api"].items():
        old = before["api"].get(route, {})
        table[f"api {route} p99"] = ratio(old.get("p99", None) and old["p99"] / 1000,
                                          figures["p99"] / 1000, cap) if "p99" in figures else None
    return table


def verdicts(after: dict) -> dict[str, Any]:
    warm = after["fault_evaluation"]["warm"]
    grafana_worst = max(after["grafana"].items(), key=lambda item: item[1].get("max", math.inf))
    api_worst = max(after["api"].items(), key=lambda item: item[1].get("p99", math.inf))
    check_worst = max(after["live_checks"].items(), key=lambda item: math.inf if item[1]["max"] is None
                      else item[1]["max"])
    return {
        "fault evaluation warm max <= 5 s": warm is not None and warm["max"] <= TARGETS["fault evaluation (warm)"],
        "every live check max <= 2 s": (check_worst[1]["max"] or math.inf) <= TARGETS["live check"],
        "worst check": [check_worst[0], check_worst[1]["max"]],
        "registry sync max <= 2 s": after["registry_sync"]["max"] <= TARGETS["registry sync"],
        "every API p99 <= 50 ms": api_worst[1].get("p99", math.inf) <= TARGETS["api p99 ms"],
        "worst API route": [api_worst[0], api_worst[1].get("p99")],
        "every Grafana query max <= 500 ms": grafana_worst[1].get("max", math.inf) <= TARGETS["grafana ms"],
        "worst Grafana query": [grafana_worst[0], grafana_worst[1].get("max")],
    }


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panels", type=int, default=200_000)
    parser.add_argument("--live-panels", type=int, default=20_000, help="the live fleet (a subset of the panels)")
    parser.add_argument("--minutes", type=int, default=36, help="minutes of history at 5 s")
    parser.add_argument("--rollup-days", type=int, default=3)
    parser.add_argument("--database", help="measure a kept database (its metadata from the build)")
    parser.add_argument("--keep", action="store_true", help="keep the database, topic and metadata")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--evaluations", type=int, default=12,
                        help="fault evaluations, each reading the minute since the previous one")
    parser.add_argument("--eval-budget", type=float, default=600, help="no new fault evaluation after this many s")
    parser.add_argument("--after-cap", type=int, default=300, help="statement time cap for the new code, s")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each live check and of the registry sync")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per API route")
    parser.add_argument("--grafana-repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=60, help="seconds of live ingest before measuring")
    parser.add_argument("--probe-live", type=int, metavar="SECONDS",
                        help="on an empty scratch database, only run the live stream and fleet this long and report "
                             "whether the stream keeps up with --live-panels")
    parser.add_argument("--before-tree", help="a checkout of the old code: also ask it, in a subprocess")
    parser.add_argument("--cap", type=int, default=120, help="statement time cap for the old code, s")
    parser.add_argument("--before-requests", type=int, default=20)
    parser.add_argument("--worker", choices=["before"], help=argparse.SUPPRESS)
    parser.add_argument("--meta", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "before":  # the old code, on PYTHONPATH; nothing of this checkout is imported
        from solar_platform.settings import load_settings

        meta = json.loads(Path(args.meta).read_text())
        settings = load_settings(mysql_database=meta["database"], topic=meta["database"])
        print(json.dumps(measure_before(settings, meta, args), default=str))
        return

    sys.path.insert(0, str(PROJECT))
    from solar_platform.runtime.kafka_provisioning import drop_topic
    from solar_platform.settings import load_settings
    from solar_platform.stack.mariadb import drop_database, provision_database
    from solar_platform.storage.migrations import migrate

    base = load_settings()
    name = args.database or f"bench_health_{uuid.uuid4().hex[:8]}"
    meta_path = base.home_dir / "bench" / f"{name}.json"
    if args.database:
        meta = json.loads(meta_path.read_text())
    else:
        start_of_day = (datetime.now(UTC) - timedelta(minutes=args.minutes + 120)).strftime("%H:%M")
        meta = {"production_start": start_of_day, "production_hours": 6.0}
    production = {"SOLAR_PRODUCTION_START": meta["production_start"][:5],
                  "SOLAR_PRODUCTION_HOURS": str(meta["production_hours"])}
    os.environ.update(production)  # the history and the live fleet share one production window
    settings = load_settings(mysql_database=name, topic=name, panels=args.live_panels)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "SOLAR_MYSQL_DATABASE": name, "SOLAR_TOPIC": name,
           "SOLAR_PANELS": str(args.live_panels), **production}
    # The live fleet's panels are panels of their own ("live-000000"...): the history's panels (and
    # its injected faults) stay as the history left them, and the live ones join the platform as
    # panels the stream has seen, as new panels do.
    fleet_env = {**env, "SOLAR_PANEL_ID_PREFIX": LIVE_PREFIX}
    report: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "load_at_start": load_average()}}
    live = Live(settings, env, fleet_env, args.live_panels, base.home_dir / "logs")
    try:
        if args.probe_live and not args.database:  # how many live panels the stream keeps up with
            provision_database(settings)
            migrate(settings)
            live.start()
            live.wait_for_batches()
            probed_from = datetime.now(UTC)
            time.sleep(args.probe_live)
            report["live"] = {"panels": live.live_panels, **live.figures(probed_from)}
            print(json.dumps(report, default=str, indent=1))
            return
        if not args.database:
            provision_database(settings)
            migrate(settings)
            log(f"database {name}: {args.panels:,} panels x {args.minutes} min at 5 s")
            meta = build(settings, args.panels, args.live_panels, args.minutes, args.rollup_days)
            meta_path.parent.mkdir(parents=True, exist_ok=True)
            meta_path.write_text(json.dumps(meta))
        else:
            migrate(settings)  # a kept database gets the migrations made since
        report["data"] = {key: value for key, value in meta.items() if key != "faults"}
        report["data"]["faulty_panels"] = {kind: len(ids) for kind, ids in meta["faults"].items()}
        if args.build_only:
            print(json.dumps(report, default=str, indent=1))
            return
        live.start()
        live.wait_for_batches()
        log(f"live ingest warm-up, {args.warmup} s")
        time.sleep(args.warmup)
        measured_from = datetime.now(UTC)
        report["after"] = measure_after(settings, meta, args)
        if args.before_tree:
            worker_env = {**env, "PYTHONPATH": str(Path(args.before_tree).resolve())}
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", "before", "--meta", str(meta_path),
                       "--cap", str(args.cap), "--evaluations", str(args.evaluations),
                       "--before-requests", str(args.before_requests)]
            meta_path.parent.mkdir(parents=True, exist_ok=True)
            meta_path.write_text(json.dumps(meta))
            done = subprocess.run(command, cwd=Path(args.before_tree), env=worker_env, stdout=subprocess.PIPE,
                                  text=True, check=True)
            report["before"] = json.loads(done.stdout.strip().splitlines()[-1])
            report["before_over_after"] = ratios(report["after"], report["before"])
        report["live"] = {"panels": live.live_panels, **live.figures(measured_from)}
        report["targets"] = verdicts(report["after"])
        report["machine"]["load_at_end"] = load_average()
    finally:
        live.stop()
        if not (args.keep or args.database):
            drop_database(settings, name)
            drop_topic(settings, name)
            meta_path.unlink(missing_ok=True)
            import shutil

            shutil.rmtree(settings.checkpoint_dir.parent, ignore_errors=True)  # the database's checkpoints
            log(f"dropped {name}")
        else:
            log(f"kept database {name} (metadata {meta_path.name})")
        print(json.dumps(report, default=str, indent=1))  # what was measured, even after a failure


if __name__ == "__main__":
    main()
