"""Stream throughput: fleet -> Kafka -> Spark -> MySQL, on the running local stack (run by hand).

    .venv/bin/python bench/stream_throughput.py [--panels 200000] [--interval 5] [--measure 120]
    .venv/bin/python bench/stream_throughput.py --spark-master 'local[*]' spark://127.0.0.1:17077  # same run
    .venv/bin/python bench/stream_throughput.py --skip jdbc live --spark-master 'local[1]' 'local[2]' \
        spark://127.0.0.1:17077 --cluster-cores 1 2      # the backlog drain per Spark core
    # before/after in one run: the same script against an older checkout's code
    PYTHONPATH=<older checkout> .venv/bin/python bench/stream_throughput.py ...

Measures, on scratch databases and topics it creates and drops:

1. `jdbc`: Spark's JDBC writer appending N rows of panelData's shape to a scratch table with the
   MariaDB driver, per batching option (driver default, useBulkStmts on/off,
   rewriteBatchedStatements), against `LOAD DATA LOCAL INFILE` of the same rows: the ceiling.
2. `backlog`: the job draining a fast-forwarded backlog with `--trigger available-now`: capacity,
   per the batches' own durations and including the query's start; each step's seconds over the
   batches, and the Kafka read's rows/s per Spark core (the one step that runs on Spark's cores).
3. `live`: the fleet publishing live (`--panels` every `--interval` s) while the job runs
   continuously: sustained readings/s and freshness, the time from a reading's timestamp (the
   fleet stamps a cycle when it publishes it) to the moment its whole cycle is visible in panelData
   (two index seeks every 0.5 s), and to the moment its summaries are written (no batch older than
   it waits for them); the cycles published, late and landed; the batches' profile.

Prints one JSON document, whatever happens: a fleet that cannot keep up or a job that fails is
reported, never raised. Everything runs on loopback, bounded in time.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as sf
from sqlalchemy import text

from solar_platform.fleet.publisher import fast_forward
from solar_platform.runtime.jdbc import JDBC_BATCH_OPTIONS, jdbc_append
from solar_platform.settings import Settings, load_settings
from solar_platform.stack.scratch import scratch_environment
from solar_platform.storage import db
from solar_platform.streaming import job
from solar_platform.streaming.session import build_session

JDBC_OPTIONS = {
    "driver default": "",
    "useBulkStmts=true": "useBulkStmts=true",
    "useBulkStmts=false": "useBulkStmts=false",
    "rewriteBatchedStatements=true": "rewriteBatchedStatements=true",
    "useBulkStmts=false&rewriteBatchedStatements=true": "useBulkStmts=false&rewriteBatchedStatements=true",
}
SCRATCH_TABLE = "bench_panel_data"


@contextmanager
def scratch(label: str, keep: bool) -> Iterator[Settings]:
    """A fresh migrated database and topic (and checkpoint), dropped afterwards unless `keep`."""
    name = f"bench_{label}_{int(time.time())}"
    with scratch_environment(load_settings(), name, keep=keep) as settings:
        yield settings.as_role("migrator")  # its scratch tables are the schema owner's; the stream runs as its own


def _execute(settings: Settings, statement: str) -> None:
    with db.engine(settings).begin() as connection:
        connection.execute(text(statement))


# --------------------------------------------------------------------------- 1. JDBC vs LOAD DATA
def bench_jdbc(spark: SparkSession, settings: Settings, rows: int, repeats: int) -> dict[str, object]:
    _execute(settings, f"CREATE TABLE {SCRATCH_TABLE} LIKE `{db.READINGS}`")
    panels = 10_000
    frame = spark.range(rows).select(
        sf.format_string("panel-%06d", (sf.col("id") % panels).cast("int")).alias("Panel_id"),
        (sf.rand(7) * 400).alias("power_panel"),
        sf.lit(1).cast("tinyint").alias("current_status"),
        sf.timestamp_millis(sf.lit(1_714_564_800_000) + (sf.col("id") / panels).cast("long") * 5000).alias("time_data"),
    ).repartition(4).persist()
    frame.count()
    results: dict[str, object] = {"rows": rows, "partitions": 4}
    for label, options in JDBC_OPTIONS.items():
        rates = []
        for _ in range(repeats):
            _execute(settings, f"TRUNCATE TABLE {SCRATCH_TABLE}")
            started = time.perf_counter()
            jdbc_append(frame, settings, SCRATCH_TABLE, batch_options=options)
            rates.append(rows / (time.perf_counter() - started))
        results[f"spark_jdbc[{label}] rows/s"] = round(max(rates))

    # The ceiling: the same rows as one CSV file through LOAD DATA LOCAL INFILE.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            for row in frame.toLocalIterator():
                writer.writerow([row[0], repr(row[1]), row[2], row[3].isoformat(sep=" ", timespec="milliseconds")])
        rates = []
        for _ in range(repeats):
            _execute(settings, f"TRUNCATE TABLE {SCRATCH_TABLE}")
            connection = db.bulk_load_connection(settings, "migrator")  # the scratch table is the schema owner's
            try:
                with connection.cursor() as cursor:
                    started = time.perf_counter()
                    cursor.execute(
                        f"LOAD DATA LOCAL INFILE %s INTO TABLE {SCRATCH_TABLE} FIELDS TERMINATED BY ',' "
                        "OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\r\\n'", (str(path),)
                    )
                    rates.append(rows / (time.perf_counter() - started))
            finally:
                connection.close()
        results["load_data_local_infile rows/s"] = round(max(rates))
    frame.unpersist()
    _execute(settings, f"DROP TABLE {SCRATCH_TABLE}")
    return results


# ------------------------------------------------------------------------------- 2. backlog drain
def _progress_rows(settings: Settings) -> list[dict[str, object]]:
    with db.engine(settings).connect() as connection:
        result = connection.execute(text(f"SELECT * FROM `{db.STREAM_PROGRESS}` ORDER BY recorded_at"))
        return [dict(row._mapping) for row in result]


def bench_backlog(spark: SparkSession, settings: Settings, panels: int, cycles: int,
                  spark_cores: int | None) -> dict[str, object]:
    start = datetime(2024, 5, 1, 12, tzinfo=UTC)
    published = fast_forward(settings, start=start, end=start + timedelta(seconds=5 * cycles), panels=panels, seed=1)
    started = time.perf_counter()
    job.run_job(settings, "available-now", spark=spark)
    seconds = time.perf_counter() - started
    with db.engine(settings).connect() as connection:
        stored = connection.execute(text(f"SELECT COUNT(*) FROM `{db.READINGS}`")).scalar()
    batches = [row for row in _progress_rows(settings) if row["query_name"] == "readings"]
    batch_seconds = sum(int(row["duration_ms"]) for row in batches) / 1000
    return {
        "messages": published.messages_delivered,
        "fleet_publish msgs/s": round(published.messages_per_second),
        "rows_in_panelData": stored,
        "job_seconds (incl. query start)": round(seconds, 1),
        "drain rows/s (incl. query start)": round(published.messages_delivered / seconds),
        "batch_seconds": round(batch_seconds, 1),
        "drain rows/s (batches)": round(published.messages_delivered / batch_seconds) if batch_seconds else None,
        "readings_batches": len(batches),
        "batch_profile_ms_p50": batch_profile(batches),
        **where_the_time_goes(batches, published.messages_delivered, spark_cores),
    }


def drain_vs_append(jdbc: dict[str, object], backlog: dict[str, object]) -> dict[str, object] | None:
    """The drain's rates as multiples of Spark's JDBC append with the job's batching option
    (`JDBC_BATCH_OPTIONS`, the issue's yardstick), measured in the same run."""
    append = jdbc.get(f"spark_jdbc[{JDBC_BATCH_OPTIONS}] rows/s")
    if not isinstance(append, int | float) or not append or "error" in backlog:
        return None
    steady = backlog.get("steady (after the first batch)")
    rates = {"incl. query start": backlog.get("drain rows/s (incl. query start)"),
             "batches": backlog.get("drain rows/s (batches)"),
             "batches after the first": steady.get("drain rows/s (batches)") if isinstance(steady, dict) else None}
    return {"append rows/s": append,
            **{label: round(rate / append, 3) for label, rate in rates.items() if isinstance(rate, int | float)}}


def where_the_time_goes(batches: list[dict[str, object]], messages: int,
                        spark_cores: int | None) -> dict[str, object]:
    """Each step's seconds summed over the batches, and the rate each step alone would drain at.

    Only the Kafka read runs on Spark's cores (its tasks read the partitions; the driver receives
    the records as Arrow); the parse runs in the driver and the commit in MariaDB, whatever the
    cores. So the per-core figure is the read's."""
    profiles = [json.loads(str(row["profile"])) for row in batches if row.get("profile")]
    if not profiles:
        return {}
    totals = {step: sum(profile.get(step, 0) for profile in profiles) / 1000
              for step in sorted({step for profile in profiles for step in profile})}
    read_s = totals.get("kafka_read_ms", 0.0)  # summed in seconds, under the profile's key
    # The profile is written inside the batch's transaction: the rest of the commit (dead letters,
    # fleet counters, the progress row, COMMIT) and the step timer's gaps are what remains.
    batch_s = sum(int(row["duration_ms"]) for row in batches) / 1000
    other_s = batch_s - sum(totals.values())
    return {
        "batches": [{"rows_in": row["rows_in"], "appended": row.get("readings_appended"),
                     "duration_ms": row["duration_ms"],
                     "profile_ms": json.loads(str(row["profile"])) if row.get("profile") else None}
                    for row in batches],
        "step_seconds_total": {**{step.removesuffix("_ms"): round(value, 1) for step, value in totals.items()},
                               "rest of the batch (commit's other statements, COMMIT)": round(other_s, 1)},
        "rows/s if only this step": {step.removesuffix("_ms"): round(messages / value)
                                     for step, value in totals.items() if value and not step.startswith("sql_")},
        "spark_cores": spark_cores,
        "kafka_read rows/s per Spark core": round(messages / read_s / spark_cores) if read_s and spark_cores else None,
        **steady_state(batches[1:], spark_cores),
    }


def steady_state(batches: list[dict[str, object]], spark_cores: int | None) -> dict[str, object]:
    """The batches after the first: the first batch of a session also pays for starting the
    executors and warming their JVMs (it reads Kafka 2-5x slower), which a stream running for days
    pays once."""
    profiles = [json.loads(str(row["profile"])) for row in batches if row.get("profile")]
    rows = sum(int(row["rows_in"]) for row in batches)
    batch_s = sum(int(row["duration_ms"]) for row in batches) / 1000
    read_s = sum(profile.get("kafka_read_ms", 0) for profile in profiles) / 1000
    if not profiles or not rows or not batch_s:
        return {"steady (after the first batch)": None}
    return {"steady (after the first batch)": {
        "batches": len(batches), "rows": rows,
        "drain rows/s (batches)": round(rows / batch_s),
        "kafka_read rows/s": round(rows / read_s) if read_s else None,
        "kafka_read rows/s per Spark core": round(rows / read_s / spark_cores) if read_s and spark_cores else None,
        "share of the batch time": {
            step.removesuffix("_ms"): round(sum(profile.get(step, 0) for profile in profiles) / 1000 / batch_s, 3)
            for step in sorted({step for profile in profiles for step in profile})},
    }}


def batch_profile(batches: list[dict[str, object]]) -> dict[str, float] | None:
    """Median ms per step of the batches' profiles (kafka_read, parse, stage, commit and its SQL steps)."""
    profiles = [json.loads(str(row["profile"])) for row in batches if row.get("profile")]
    if not profiles:
        return None  # a version of the job that did not record one
    steps = sorted({step for profile in profiles for step in profile})
    return {step: statistics.median(profile.get(step, 0) for profile in profiles) for step in steps}


# ----------------------------------------------------------------------------------- 3. live run
class FreshnessPoller:
    """Freshness of each fleet cycle: the first time all its readings are in panelData, minus its stamp.

    The fleet stamps a whole cycle with one time, so a cycle is found by one seek on panelData's
    time index, and counted by one index range: a light probe, however large the fleet.
    """

    def __init__(self, settings: Settings, panels: int) -> None:
        self.settings = settings
        self.panels = panels
        self.complete: dict[datetime, float] = {}  # cycle time -> seconds until visible
        self.summarized: dict[datetime, float] = {}  # cycle time -> seconds until its summaries are written
        self.samples: list[tuple[float, int]] = []  # (monotonic, readings in complete cycles)
        self.stop = threading.Event()

    def run(self) -> None:
        engine = db.engine(self.settings)
        next_cycle = text(f"SELECT MIN(time_data) FROM `{db.READINGS}` WHERE time_data > :after")
        in_cycle = text(f"SELECT COUNT(*) FROM `{db.READINGS}` WHERE time_data = :t")
        oldest_waiting = text(f"SELECT MIN(earliest_time) FROM `{db.STREAM_UNSUMMARIZED}`")
        after = datetime(1970, 1, 1)
        while not self.stop.is_set():
            try:
                with engine.connect() as connection:
                    while True:
                        moment = connection.execute(next_cycle, {"after": after}).scalar()
                        if moment is None or connection.execute(in_cycle, {"t": moment}).scalar() < self.panels:
                            break
                        self.complete[moment] = (datetime.now(UTC).replace(tzinfo=None) - moment).total_seconds()
                        after = moment
                    # A complete cycle is summarized once no batch older than it waits for its summaries.
                    waiting_from = connection.execute(oldest_waiting).scalar()
                    for moment in self.complete.keys() - self.summarized.keys():
                        if waiting_from is None or waiting_from > moment:
                            self.summarized[moment] = (datetime.now(UTC).replace(tzinfo=None) - moment).total_seconds()
                self.samples.append((time.monotonic(), len(self.complete) * self.panels))
            except Exception:  # noqa: BLE001 - a probe that fails is retried; the bench reports, never raises
                pass
            self.stop.wait(0.5)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


class SummaryRounds(logging.Handler):
    """The stream's summary rounds, from its log lines: how many, their size and duration."""

    LINE = re.compile(r"summaries of (\d+) batches: (\d+) readings in ([\d.]+) s \(sql (.*)\)")
    STEP = re.compile(r"(\w+) ([\d.]+) s")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.rounds: list[tuple[int, int, float, dict[str, float]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if match := self.LINE.search(record.getMessage()):
            steps = {name: float(seconds) for name, seconds in self.STEP.findall(match[4])}
            self.rounds.append((int(match[1]), int(match[2]), float(match[3]), steps))

    def report(self) -> dict[str, object] | None:
        if not self.rounds:
            return None
        steps = sorted({name for *_, timings in self.rounds for name in timings})
        return {"rounds": len(self.rounds), "batches_p50": statistics.median(r[0] for r in self.rounds),
                "readings_p50": statistics.median(r[1] for r in self.rounds),
                "seconds_p50": statistics.median(r[2] for r in self.rounds),
                "seconds_max": max(r[2] for r in self.rounds),
                "sql_seconds_p50": {name: statistics.median(r[3].get(name, 0.0) for r in self.rounds)
                                    for name in steps}}


def _steady_p(seconds_by_cycle: dict[datetime, float], warmup: float, interval: float, share: float
              ) -> float | None:
    steady = [seconds for _moment, seconds in sorted(seconds_by_cycle.items())[int(warmup / interval):]]
    return round(_percentile(steady, share), 2) if steady else None


def bench_live(spark: SparkSession, settings: Settings, panels: int, interval: float, warmup: float,
               measure: float) -> dict[str, object]:
    """The fleet publishing live while the job runs continuously. Reports, never raises: a fleet
    that cannot keep up or a job that fails shows in the figures."""
    stop_job = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            job.run_job(settings, "continuous", spark=spark, stop=stop_job)
        except BaseException as exc:  # noqa: BLE001 - reported in the results
            failure.append(exc)

    rounds = SummaryRounds()
    sink_log = logging.getLogger("solar_platform.streaming.sink")
    sink_log.setLevel(logging.INFO)
    sink_log.addHandler(rounds)
    runner = threading.Thread(target=run, name="stream-job", daemon=True)
    runner.start()
    time.sleep(3)  # queries started, first (empty) trigger done
    cycles = int((warmup + measure) / interval) + 1
    fleet = subprocess.Popen(
        [sys.executable, "-m", "solar_platform", "fleet", "run", "--panels", str(panels), "--interval", str(interval),
         "--cycles", str(cycles), "--seed", "3", "--topic", settings.topic],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "SOLAR_HOME": str(settings.home_dir),
                                                                "SOLAR_MYSQL_DATABASE": settings.mysql_database},
    )
    poller = FreshnessPoller(settings, panels)
    polling = threading.Thread(target=poller.run, name="poller", daemon=True)
    polling.start()
    began = time.monotonic()
    fleet_error, fleet_timed_out = "", False
    try:
        try:
            fleet_error = fleet.communicate(timeout=warmup + measure + 120)[1].decode()
        except subprocess.TimeoutExpired:
            fleet_timed_out = True
            fleet.kill()
            fleet_error = (fleet.communicate()[1] or b"").decode()
        time.sleep(max(0.0, began + warmup + measure - time.monotonic()))
        # Let the last cycles land, bounded.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(poller.complete) < cycles:
            time.sleep(0.5)
    finally:
        if fleet.poll() is None:
            fleet.kill()
        poller.stop.set()
        polling.join()
        stop_job.set()
        runner.join(timeout=120)

    window = [(at, rows) for at, rows in poller.samples if began + warmup <= at <= began + warmup + measure]
    sustained = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]) if len(window) >= 2 else 0.0
    freshness = list(poller.complete.values())
    steady = sorted(poller.complete.items())[int(warmup / interval):]
    steady_freshness = [seconds for _moment, seconds in steady] or freshness
    batches = [row for row in _progress_rows(settings) if row["query_name"] == "readings" and row["rows_in"]]
    late_cycles = fleet_error.count("past its")
    return {
        "panels": panels,
        "interval_s": interval,
        "trigger_s": settings.stream_trigger_seconds,
        "offered readings/s": round(panels / interval),
        "sustained readings/s (complete cycles, steady state)": round(sustained),
        "cycles_published": cycles if not fleet_timed_out else f"fewer than {cycles}: the fleet did not finish",
        "fleet_cycles_late": late_cycles,
        "cycles_complete_in_panelData": len(poller.complete),
        "freshness_p50_s": round(statistics.median(steady_freshness), 2) if steady_freshness else None,
        "freshness_p95_s": round(_percentile(steady_freshness, 0.95), 2) if steady_freshness else None,
        "freshness_max_s": round(max(steady_freshness), 2) if steady_freshness else None,
        # Reading time -> its windows, energy buckets and latest row written (summaries apart).
        "summaries_freshness_p50_s": _steady_p(poller.summarized, warmup, interval, 0.5),
        "summaries_freshness_p95_s": _steady_p(poller.summarized, warmup, interval, 0.95),
        "readings_batches": len(batches),
        "readings_batch_ms_p50": statistics.median(int(row["duration_ms"]) for row in batches) if batches else None,
        "batch_profile_ms_p50": batch_profile(batches),
        "summary_rounds": rounds.report(),
        "job_error": repr(failure[0])[:500] if failure else None,
        "fleet_stderr_tail": fleet_error[-500:] or None,
    }


def spark_cores(master: str, base: Settings, cores_max: int | None) -> int | None:
    """The cores the application gets: local[N]'s N, a cluster's `spark.cores.max`, or all of the
    local stack's cluster; None when not known (another cluster without a cap)."""
    if master.startswith("local"):
        inside = master.partition("[")[2].rstrip("]")
        return os.cpu_count() if inside in ("", "*") else int(inside.split(",")[0])
    if cores_max:
        return cores_max
    if master == base.spark_master_url and base.spark_workers:
        return base.spark_workers * base.spark_worker_cores
    return None


def run_on(master: str, base: Settings, args: argparse.Namespace, cores_max: int | None = None) -> dict[str, object]:
    """Every selected benchmark on one Spark master (one session, stopped afterwards); on a cluster,
    `cores_max` caps the application's cores (`spark.cores.max`: that many one-core executors)."""
    started = time.perf_counter()
    conf = {"spark.cores.max": str(cores_max)} if cores_max else None
    spark = build_session(base, app_name="bench-stream-throughput", master=master, conf=conf)
    cores = spark_cores(master, base, cores_max)
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "spark_master": master, "spark_cores": cores,
                    "spark_session_start_s": round(time.perf_counter() - started, 1),
                    "load_average_at_start": [round(value, 2) for value in os.getloadavg()]},
        "job_jdbc_options": JDBC_BATCH_OPTIONS,
    }
    label = "c" if master.startswith("spark://") else "l"  # scratch names differ per master
    benches = {
        "jdbc": lambda settings: bench_jdbc(spark, settings, args.jdbc_rows, args.repeats),
        "backlog": lambda settings: bench_backlog(spark, settings, args.backlog_panels, args.backlog_cycles, cores),
        "live": lambda settings: bench_live(spark, settings, args.panels, args.interval, args.warmup, args.measure),
    }
    try:
        for name, bench in benches.items():
            if name in args.skip:
                continue
            load_before = [round(value, 2) for value in os.getloadavg()]
            try:
                with scratch(f"{name}{label}", args.keep) as settings:
                    results[name] = bench(settings)
            except Exception as exc:  # noqa: BLE001 - the bench reports, never raises
                results[name] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
            results[name]["load_average_before_after"] = [  # type: ignore[index]
                load_before, [round(value, 2) for value in os.getloadavg()]]
        if "jdbc" in results and "backlog" in results:
            results["backlog"]["x the JDBC append"] = drain_vs_append(results["jdbc"], results["backlog"])  # type: ignore[index]
    finally:
        spark.stop()  # the next master gets a new SparkContext in this same process
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jdbc-rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backlog-panels", type=int, default=20_000)
    # 20k panels x 250 cycles = 5M messages: several batches (four at the default cap), two minutes of
    # the 200k-panel fleet's output. One batch mostly measures the first batch's warm-up (its Kafka
    # read 2-5x slower).
    parser.add_argument("--backlog-cycles", type=int, default=250)
    parser.add_argument("--panels", type=int, default=200_000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--trigger-seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--measure", type=float, default=120.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["jdbc", "backlog", "live"])
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases and topics")
    parser.add_argument("--spark-master", nargs="+", default=None, metavar="URL",
                        help="run everything on each master in turn, in this one run (e.g. 'local[*]' "
                             "spark://127.0.0.1:17077); default: the settings' (SOLAR_SPARK_MASTER/WORKERS)")
    parser.add_argument("--cluster-cores", nargs="+", type=int, default=None, metavar="N",
                        help="on each spark:// master, one run per N with spark.cores.max=N (e.g. 1 2: "
                             "one and two one-core workers' executors); default: all the cluster offers")
    args = parser.parse_args()

    os.environ["SOLAR_STREAM_TRIGGER_SECONDS"] = str(args.trigger_seconds)
    base = load_settings()
    masters = args.spark_master or [base.spark_master_url]
    runs = [(master, cores) for master in masters
            for cores in (args.cluster_cores if master.startswith("spark://") and args.cluster_cores else [None])]
    by_master = {master if cores is None else f"{master} (spark.cores.max={cores})": run_on(master, base, args, cores)
                 for master, cores in runs}
    results = by_master[next(iter(by_master))] if len(by_master) == 1 else {"by_spark_master": by_master}
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
