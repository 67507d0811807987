"""Parser choice (issue 12): the retired Spark SQL parser vs the one Python parser run through
mapInArrow (`streaming/parse.py`, the stream's), in one Spark session, on the same cached records.

The Spark SQL parser (the contract's rules re-created as column expressions) was retired once this
benchmark chose mapInArrow; it is loaded from the last commit that shipped it
(`RETIRED_SQL_PARSER_COMMIT`, so this must run in a git checkout) to keep the comparison repeatable.
Its JVM flag (`-XX:-DontCompileHugeMethods`, without which its generated code is not JIT-compiled)
is set for the whole session through JAVA_TOOL_OPTIONS.

    .venv/bin/python bench/parser_choice.py [--messages 2000000] [--panels 200000] [--repeats 3]

1. Builds `--messages` Kafka records (key, value, topic, partition, offset, timestamp) in
   `--partitions` partitions: fleet cycles of `--panels` panels encoded exactly as the fleet sends them
   (`fleet.encoding.MessageEncoder`, the live power model), with `--malformed` of them (1%) replaced
   by the malformed payloads of the conformance cases, in turn. They are cached in Spark first, as
   the stream persists each micro-batch's records before it parses them.
2. Times each parser's `parse_records` on them, materialised in full with a `noop` write (every
   output column: readings and dead letters with their reasons), and the same write without any
   parsing (the baseline every run pays): one warm-up run each, then `--repeats` rounds, the order
   reversed every other round (A B C, C B A, ...) so that other work on the machine weighs on all
   alike. Reports the median rows/s, the median CPU seconds (JVM + Python workers + driver, see
   `CpuMeter`) and the load average around each run.
   The same again on one micro-batch of `--batch-rows` rows: the fixed cost each batch pays.
3. Checks the two outputs agree row for row (a hash of every output column per Kafka offset).
4. For scale: contracts.parse_reading alone in this process (one core, no Spark) on a sample.

Needs pyarrow and pandas in the venv (pyspark's `sql` extra): mapInArrow requires both.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf

from solar_platform import contracts
from solar_platform.fleet.encoding import MessageEncoder
from solar_platform.fleet.simulation import FleetSimulator, to_epoch_ms
from solar_platform.settings import load_settings
from solar_platform.streaming import parse
from solar_platform.streaming.session import build_session
from solar_platform_tests.streaming.cases import MALFORMED_CASES

TOPIC = "solar-bench"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
Parser = Callable[[DataFrame, str], DataFrame]
SQL, ARROW, BASELINE = "spark_sql (retired)", "mapInArrow (parse.py)", "no parsing (read + noop write)"
# The last commit whose stream parsed with Spark SQL expressions (solar_platform/streaming/parse.py there).
RETIRED_SQL_PARSER_COMMIT = "9c9b5219959ef41a8818844e12e481b4d9f12f6a"


def retired_sql_parser() -> ModuleType:
    """The Spark SQL parser as it was at `RETIRED_SQL_PARSER_COMMIT`, imported from git history."""
    source = subprocess.run(
        ["git", "show", f"{RETIRED_SQL_PARSER_COMMIT}:solar_platform/streaming/parse.py"],
        cwd=Path(__file__).resolve().parent, capture_output=True, text=True, check=True,
    ).stdout
    module = ModuleType("retired_sql_parse")
    exec(compile(source, "retired_sql_parse.py", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


SQL_PARSER = retired_sql_parser()
# Cases added with the switch, for inputs the retired parser got wrong (its documented gaps): left out
# so both parsers see payloads they agree on, the same 129 malformed ones as the measured runs.
RETIRED_PARSER_GAPS = {"panel_id_lone_surrogate", "power_1001_digit_integer"}
POISON = [case for case in MALFORMED_CASES if case.name not in RETIRED_PARSER_GAPS]
PARSERS: dict[str, Parser] = {
    SQL: SQL_PARSER.parse_records,
    ARROW: parse.parse_records,
    BASELINE: lambda records, _zone: records,  # what every run pays besides parsing
}


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _process_tree_cpu(root: int) -> dict[tuple[int, int], int]:
    """CPU clock ticks (utime+stime+cutime+cstime) of `root` and its live descendants, by (pid, start)."""
    stats: dict[int, tuple[int, int, int]] = {}  # pid -> (parent, start time, ticks)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        stats[int(entry.name)] = (int(fields[1]), int(fields[19]), sum(int(value) for value in fields[11:15]))
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in stats.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return {(pid, stats[pid][1]): stats[pid][2] for pid in tree if pid in stats}


class CpuMeter:
    """CPU seconds of this process, the Spark JVM, and the JVM's Python daemon and workers.

    Wall time on a shared machine says as much about the neighbours as about the code; the CPU a
    run consumes does not depend on them (much), and on an idle 2-core machine a run that keeps
    both cores busy takes about CPU / 2 seconds. pyspark's daemon ignores SIGCHLD, so a Python
    worker that exits (idle for a minute) takes its CPU time with it: the tree is sampled every
    0.2 s and every process counts with the last time it was seen with. The sampler's own CPU
    is left out; this process's other CPU (building the plans over Py4J) counts.
    """

    def __init__(self, spark: SparkSession, interval: float = 0.2) -> None:
        self.jvm = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
        self._seen: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sampler_seconds = 0.0
        self._sample()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        started = time.thread_time()
        ticks = _process_tree_cpu(self.jvm)
        with self._lock:
            self._seen.update(ticks)
            self._sampler_seconds += time.thread_time() - started

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def read(self) -> float:
        self._sample()
        own = os.times()
        with self._lock:
            tree = sum(self._seen.values())
            sampler = self._sampler_seconds
        return own.user + own.system - sampler + tree / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------------ the records
def fleet_records(messages: int, panels: int, partitions: int, malformed: float, seed: int) -> pa.Table:
    """Kafka-shaped records: fleet cycles (time-major, like fast-forward) with some malformed values."""
    settings = load_settings()
    simulator = FleetSimulator(settings, fleet_start=START, panels=panels, seed=seed)
    encoder = MessageEncoder(simulator.panel_ids)
    first_ms = to_epoch_ms(START + timedelta(minutes=20))  # inside the live model's production window
    interval_ms = int(settings.interval_seconds * 1000)
    keys: list[bytes] = []
    values: list[bytes] = []
    stamps: list[int] = []
    cycle = 0
    while len(values) < messages:
        time_ms = first_ms + cycle * interval_ms
        readings = simulator.cycle(time_ms)
        take = min(panels, messages - len(values))
        values.extend(encoder.encode(readings.power_w, readings.status, time_ms)[:take])
        keys.extend(encoder.keys[:take])
        stamps.extend([time_ms + 50] * take)
        cycle += 1

    rng = np.random.default_rng(seed)
    bad_rows = np.sort(rng.choice(messages, size=round(messages * malformed), replace=False))
    for turn, row in enumerate(bad_rows.tolist()):
        values[row] = POISON[turn % len(POISON)].payload

    index = np.arange(messages, dtype=np.int64)
    return pa.table({
        "key": pa.array(keys, pa.binary()),
        "value": pa.array(values, pa.binary()),
        "topic": pa.array([TOPIC] * messages, pa.string()),
        "partition": pa.array(index % partitions, pa.int32()),
        "offset": pa.array(index // partitions, pa.int64()),
        "timestamp": pa.array(stamps, pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("us", tz="UTC")),
    })


def cached_records(spark: SparkSession, table: pa.Table, partitions: int, folder: Path) -> DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.parquet"
    pq.write_table(table, path)
    records = spark.read.parquet(str(path)).repartition(partitions, "partition").persist()
    records.count()
    return records


# ------------------------------------------------------------------------------------- the timing
def timed_run(records: DataFrame, parser: Parser, meter: CpuMeter) -> dict[str, object]:
    load_before = load_average()
    cpu_before = meter.read()
    started = time.perf_counter()
    parser(records, "UTC").write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - started
    cpu_seconds = meter.read() - cpu_before
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 2),
            "load_before": load_before, "load_after": load_average()}


def output_fingerprint(parsed: DataFrame) -> dict[str, object]:
    """Per reject reason: rows and a sum of per-row hashes of every output column (order-free)."""
    columns = ["partition", "offset", *parse.READING_COLUMNS, parse.REJECT_REASON]
    rows = parsed.groupBy(parse.REJECT_REASON).agg(
        sf.count(sf.lit(1)).alias("rows"),
        sf.sum(sf.xxhash64(*columns).cast("decimal(38,0)")).cast("string").alias("hash_sum"),
    ).collect()
    return {str(row[parse.REJECT_REASON]): (row["rows"], row["hash_sum"]) for row in rows}


def python_only_rate(table: pa.Table, sample: int) -> float:
    """contracts.parse_reading in this process on `sample` values: one core, no Spark, no Arrow."""
    values = table.column("value").slice(0, sample).to_pylist()
    rejected = 0
    started = time.perf_counter()
    for payload in values:
        try:
            contracts.parse_reading(payload)
        except contracts.InvalidReading:
            rejected += 1
    return len(values) / (time.perf_counter() - started)


def compare(records: DataFrame, rows: int, repeats: int, meter: CpuMeter, label: str) -> dict[str, object]:
    """One warm-up run per parser, then `repeats` rounds alternating the order; medians."""
    names = list(PARSERS)
    warm_up = {name: timed_run(records, PARSERS[name], meter) for name in names}
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in names}
    for round_number in range(repeats):
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            run = timed_run(records, PARSERS[name], meter)
            run["round"] = round_number
            runs[name].append(run)
            print(json.dumps({"progress": label, "parser": name, **run}), flush=True)

    summary: dict[str, dict[str, object]] = {}
    for name in names:
        seconds = [float(run["seconds"]) for run in runs[name]]  # type: ignore[arg-type]
        cpu = [float(run["cpu_seconds"]) for run in runs[name]]  # type: ignore[arg-type]
        summary[name] = {
            "median_seconds": round(statistics.median(seconds), 3),
            "median_rows_per_s": round(rows / statistics.median(seconds)),
            "rows_per_s_each_run": [round(rows / value) for value in seconds],
            "median_cpu_seconds": round(statistics.median(cpu), 2),
            "median_rows_per_cpu_s": round(rows / statistics.median(cpu)),
            "rows_per_cpu_s_each_run": [round(rows / value) for value in cpu],
        }
    sql, arrow = summary[SQL], summary[ARROW]
    return {
        "rows": rows,
        "summary": summary,
        "arrow_over_sql": round(float(arrow["median_rows_per_s"]) / float(sql["median_rows_per_s"]), 3),  # type: ignore[arg-type]
        "arrow_over_sql_per_cpu_s": round(
            float(arrow["median_rows_per_cpu_s"]) / float(sql["median_rows_per_cpu_s"]), 3),  # type: ignore[arg-type]
        "warm_up": warm_up,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--panels", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4, help="Kafka partitions (the topic's default)")
    parser.add_argument("--malformed", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=20_000,
                        help="also compare on a micro-batch this size (0: skip): the per-batch fixed cost")
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g", help="room to cache the records")
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()

    result: dict[str, object] = {"cpus": os.cpu_count(), "load_at_start": load_average(), "args": vars(args)}
    started = time.perf_counter()
    table = fleet_records(args.messages, args.panels, args.partitions, args.malformed, args.seed)
    result["generate_seconds"] = round(time.perf_counter() - started, 1)
    value_bytes = sum(len(value) for value in table.column("value").to_pylist())
    result["mean_value_bytes"] = round(value_bytes / table.num_rows, 1)
    result["python_only_rows_per_s_one_core"] = round(python_only_rate(table, min(200_000, table.num_rows)))

    settings = load_settings().model_copy(update={"spark_driver_memory": args.driver_memory})
    # Read by the JVM pyspark launches: the retired parser's generated methods exceed the JIT's limit.
    os.environ["JAVA_TOOL_OPTIONS"] = f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} -XX:-DontCompileHugeMethods".strip()
    spark = build_session(settings, app_name="bench-parser-choice", master=args.master)
    SQL_PARSER.configure_session(spark)
    result["spark"] = {"version": spark.version, "master": spark.sparkContext.master,
                       "arrow_max_records_per_batch": spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")}
    meter = CpuMeter(spark)
    result["cpu_meter_root"] = Path(f"/proc/{meter.jvm}/comm").read_text().strip()  # "java"
    with tempfile.TemporaryDirectory(prefix="bench-parser-choice-") as folder:
        records = cached_records(spark, table, args.partitions, Path(folder) / "all")
        result["full"] = compare(records, records.count(), args.repeats, meter, "full")

        names = [SQL, ARROW]
        fingerprints = {name: output_fingerprint(PARSERS[name](records, "UTC")) for name in names}
        result["outputs_agree"] = fingerprints[SQL] == fingerprints[ARROW]
        result["rows_by_reason"] = {reason: count for reason, (count, _) in sorted(fingerprints[ARROW].items())}
        if not result["outputs_agree"]:
            result["fingerprints"] = fingerprints
        records.unpersist()

        if args.batch_rows:
            batch = cached_records(spark, table.slice(0, args.batch_rows), args.partitions, Path(folder) / "batch")
            result["micro_batch"] = compare(batch, batch.count(), args.batch_repeats, meter, "micro_batch")
            batch.unpersist()
    meter.close()
    result["load_at_end"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
