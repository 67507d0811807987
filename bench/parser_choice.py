"""Parser choice: where the stream judges a micro-batch against the contract, measured.

Four ways from a batch of Kafka records (cached in Spark) to the parsed readings in the driver,
where the stream commits them, in one Spark session, on the same records:

- `driver: toArrow + parse_values` (the stream's, `streaming/parse.py`): Spark hands the driver
  the records as one Arrow table (`parse.collect_records`) and the driver runs
  `contracts.parse_values` on it (the fleet's compact form by vectorised Arrow kernels, anything
  else through `contracts.parse_reading`). Collect and parse are timed apart.
- `mapInArrow + parse_values` (commit `e3d0cdf`): the same vectorised parse, run in Python workers
  beside the executors, and the parsed columns collected to the driver.
- `mapInArrow + parse_reading per row` (commit `74cf9e2`): the issue-12 choice, every value through
  `contracts.parse_reading` in the Python workers, the parsed columns collected.
- `Spark SQL twin` (commit `9c9b521`): the contract's rules re-created as column expressions, run
  in the executors' JVM, the parsed columns collected.

The three retired parsers are loaded from the git history (`RETIRED`), so this must run in a git
checkout. The SQL twin's JVM flag (`-XX:-DontCompileHugeMethods`, without which its generated code
is not JIT-compiled) is set for the whole session through JAVA_TOOL_OPTIONS.

    .venv/bin/python bench/parser_choice.py [--messages 2000000] [--panels 200000] [--repeats 3]

1. Builds `--messages` Kafka records (key, value, topic, partition, offset, timestamp) in
   `--partitions` partitions: fleet cycles of `--panels` panels encoded exactly as the fleet sends them
   (`fleet.encoding.MessageEncoder`, the live power model), with `--malformed` of them (1%) replaced
   by the malformed payloads of the conformance cases, in turn. They are cached in Spark first, as
   a micro-batch's records are read once.
2. Times each way, landing in the driver as Arrow (every output column: readings and reject
   reasons): one warm-up run each, then `--repeats` rounds, the order reversed every other round
   (A B C D, D C B A, ...) so that other work on the machine weighs on all alike. Reports the
   median rows/s, the median CPU seconds (driver + JVM + its Python workers, see `CpuMeter`) per
   step, and the load average around each run. The same again on micro-batches of `--batch-rows`
   rows (the first rows of the same records): the fixed cost each batch pays.
3. Checks that the four agree row for row (the outputs of the warm-up runs, sorted by Kafka
   position, compared column by column).
4. First, in this process on one core, no Spark: the contract's batch parser
   (`contracts.parse_values`: the compact form by Arrow kernels, the rest by `parse_reading`) on
   the whole array, against `contracts.parse_reading` message by message, on every record; the
   two outputs must agree row for row. `--noncanonical` of the records (1%) are valid messages the
   fast path hands to `parse_reading` (the conformance cases' other spellings, in turn), so the
   batch parser pays for its fallback as the stream would. `--no-spark` stops there.

Needs pyarrow and pandas in the venv (pyspark's `sql` extra): mapInArrow requires both.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from solar_platform import contracts
from solar_platform.fleet.encoding import MessageEncoder
from solar_platform.fleet.simulation import FleetSimulator, to_epoch_ms
from solar_platform.settings import load_settings
from solar_platform.streaming import parse
from solar_platform.streaming.session import build_session
from solar_platform_tests.streaming.cases import MALFORMED_CASES, VALID_CASES

TOPIC = "solar-bench"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PARSER_PATH = "solar_platform/streaming/parse.py"
DRIVER = "driver: toArrow + parse_values (the stream's)"
WORKERS_VECTOR = "mapInArrow + parse_values (e3d0cdf)"
WORKERS_ROWWISE = "mapInArrow + parse_reading per row (74cf9e2)"
SQL = "Spark SQL twin (9c9b521)"
# The last commit that shipped each retired parser, as `solar_platform/streaming/parse.py`.
RETIRED = {
    SQL: "9c9b5219959ef41a8818844e12e481b4d9f12f6a",
    WORKERS_ROWWISE: "74cf9e242dd424cbab9aa8e3b40bacb91ea6b643",
    WORKERS_VECTOR: "e3d0cdfe6b42f1860f4b3e216c2fbe59ad729b60",
}


def parser_from_history(commit: str, name: str) -> ModuleType:
    """`streaming/parse.py` as it was at `commit`, imported from git history. The module is not in
    sys.modules, so cloudpickle ships its functions to the Python workers by value."""
    source = subprocess.run(
        ["git", "show", f"{commit}:{PARSER_PATH}"],
        cwd=Path(__file__).resolve().parent, capture_output=True, text=True, check=True,
    ).stdout
    module = ModuleType(name)
    exec(compile(source, f"{name}.py", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


HISTORY = {label: parser_from_history(commit, f"retired_parse_{index}")
           for index, (label, commit) in enumerate(RETIRED.items())}
# Cases added with the switch to mapInArrow, for inputs the SQL twin got wrong (its documented gaps):
# left out so every parser sees payloads they all agree on.
RETIRED_PARSER_GAPS = {"panel_id_lone_surrogate", "power_1001_digit_integer", "lone_surrogate_in_extra_field",
                       "panel_id_float_exponent_form", "utf16_with_bom", "utf32_little_endian"}
POISON = [case for case in MALFORMED_CASES if case.name not in RETIRED_PARSER_GAPS]
# Valid messages outside the compact form (other spacing, key order, time spellings, ...): the batch
# parser's fallback. UTC ones only, the zone every way is run with.
OTHER_SPELLINGS = [case for case in VALID_CASES if case.source_zone == "UTC" and case.name not in RETIRED_PARSER_GAPS
                   and not re.fullmatch(contracts.CANONICAL_MESSAGE.encode(), case.payload)]

# What every way ends with in the driver, for the agreement check: Kafka position, the contract's
# four fields (time as epoch µs) and the reject reason.
TIME_US = contracts.TIME_MICROS
OUTPUT_SCHEMA = pa.schema([
    ("partition", pa.int32()), ("offset", pa.int64()), (contracts.PANEL_ID, pa.string()),
    (contracts.POWER, pa.float64()), (contracts.STATUS, pa.int8()), (TIME_US, pa.int64()),
    (contracts.REJECT_REASON, pa.string()),
])
Steps = dict[str, tuple[float, float]]  # step -> (wall seconds, CPU seconds)
Way = Callable[[DataFrame, "CpuMeter"], tuple[pa.Table, Steps]]


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
def fleet_records(messages: int, panels: int, partitions: int, malformed: float, noncanonical: float,
                  seed: int) -> pa.Table:
    """Kafka-shaped records: fleet cycles (time-major, like fast-forward) with some malformed values
    and some valid ones in another spelling than the fleet's compact form."""
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
    odd = rng.choice(messages, size=round(messages * (malformed + noncanonical)), replace=False)
    bad_rows = np.sort(odd[:round(messages * malformed)])
    for turn, row in enumerate(bad_rows.tolist()):
        values[row] = POISON[turn % len(POISON)].payload
    for turn, row in enumerate(np.sort(odd[len(bad_rows):]).tolist()):
        values[row] = OTHER_SPELLINGS[turn % len(OTHER_SPELLINGS)].payload

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


# ------------------------------------------------------------------------------------- the ways
@contextmanager
def step(name: str, meter: CpuMeter, steps: Steps) -> Iterator[None]:
    cpu_before, started = meter.read(), time.perf_counter()
    yield
    steps[name] = (time.perf_counter() - started, meter.read() - cpu_before)


def _output(columns: dict[str, pa.ChunkedArray | pa.Array]) -> pa.Table:
    return pa.Table.from_arrays([columns[field.name].cast(field.type) for field in OUTPUT_SCHEMA],
                                schema=OUTPUT_SCHEMA)


def in_the_driver(records: DataFrame, meter: CpuMeter) -> tuple[pa.Table, Steps]:
    """The stream's way: the records to the driver as Arrow, then the contract's batch parser there."""
    steps: Steps = {}
    with step("collect", meter, steps):
        collected = parse.collect_records(records)
    with step("parse", meter, steps):
        parsed = contracts.parse_values(collected.column("value").combine_chunks(), "UTC")
    columns = {name: parsed.column(name) for name in parsed.schema.names}
    return _output({**columns, "partition": collected.column("partition"), "offset": collected.column("offset")}), steps


def in_spark(module: ModuleType) -> Way:
    """A retired way: `module.parse_records` in the executors (JVM or Python workers), the parsed
    columns collected to the driver as Arrow."""
    def run(records: DataFrame, meter: CpuMeter) -> tuple[pa.Table, Steps]:
        steps: Steps = {}
        with step("parse in Spark + collect", meter, steps):
            table = module.parse_records(records, "UTC").select(
                "partition", "offset", *contracts.FIELDS, contracts.REJECT_REASON).toArrow()
        # Spark's timestamp is an instant in µs: its integer value is the epoch µs of the driver's way.
        time_us = pc.cast(table.column(contracts.TIME), pa.timestamp("us", tz="UTC")).cast(pa.int64())
        return _output({**{name: table.column(name) for name in table.schema.names}, TIME_US: time_us}), steps

    return run


WAYS: dict[str, Way] = {DRIVER: in_the_driver, **{label: in_spark(HISTORY[label]) for label in RETIRED}}


# ------------------------------------------------------------------------------------- the timing
def timed_run(records: DataFrame, way: Way, meter: CpuMeter) -> tuple[pa.Table, dict[str, object]]:
    load_before = load_average()
    output, steps = way(records, meter)
    run: dict[str, object] = {
        "seconds": round(sum(wall for wall, _ in steps.values()), 3),
        "cpu_seconds": round(sum(cpu for _, cpu in steps.values()), 2),
        "steps": {name: {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 2)}
                  for name, (wall, cpu) in steps.items()},
        "load_before": load_before, "load_after": load_average(),
    }
    return output, run


def disagreement(reference: pa.Table, other: pa.Table) -> dict[str, object] | None:
    """None when `other` equals `reference` row for row (both sorted by Kafka position), else where not."""
    if reference.equals(other):
        return None
    if reference.num_rows != other.num_rows:
        return {"rows": [reference.num_rows, other.num_rows]}
    columns: dict[str, object] = {}
    for name in reference.schema.names:
        left, right = reference.column(name), other.column(name)
        differs = pc.invert(pc.fill_null(pc.equal(left, right), False))
        both_null = pc.and_(pc.is_null(left), pc.is_null(right))
        rows = np.flatnonzero(np.asarray(pc.and_(differs, pc.invert(both_null))))
        if rows.size:
            first = int(rows[0])
            columns[name] = {"rows": int(rows.size), "first": [reference.slice(first, 1).to_pylist(),
                                                              other.slice(first, 1).to_pylist()]}
    return columns


def per_message(values: list[bytes | None]) -> pa.Table:
    """`contracts.parse_reading` on each payload in turn, in `parse_values`'s output columns."""
    columns: dict[str, list[object]] = {name: [] for name in
                                        (contracts.PANEL_ID, contracts.POWER, contracts.STATUS, TIME_US,
                                         contracts.REJECT_REASON)}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for payload in values:
        try:
            reading = contracts.parse_reading(payload)
        except contracts.InvalidReading as rejected:
            row: tuple[object, ...] = (None, None, None, None, rejected.reason.value)
        else:
            row = (reading.panel_id, reading.power_w, reading.status,
                   (reading.time_utc - epoch) // timedelta(microseconds=1), None)
        for column, value in zip(columns.values(), row, strict=True):
            column.append(value)
    return pa.table({name: pa.array(column, OUTPUT_SCHEMA.field(name).type) for name, column in columns.items()})


def one_core(table: pa.Table, repeats: int) -> dict[str, object]:
    """The contract's batch parser against its per-message one, in this process (one core, no
    Spark), on every record: median rows per wall second and per CPU second over `repeats` runs
    (alternating the order), the ratio, and whether the outputs agree row for row."""
    array = table.column("value").combine_chunks()
    values = array.to_pylist()  # the per-message way starts from Python bytes, as a consumer loop would
    ways: dict[str, Callable[[], pa.Table]] = {
        "parse_values (whole array)": lambda: pa.Table.from_batches([contracts.parse_values(array)]),
        "parse_reading (per message)": lambda: per_message(values),
    }
    walls: dict[str, list[float]] = {name: [] for name in ways}
    cpus: dict[str, list[float]] = {name: [] for name in ways}
    outputs: dict[str, pa.Table] = {}
    load_before = load_average()
    for round_number in range(repeats):
        for name in ways if round_number % 2 == 0 else list(ways)[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            outputs[name] = ways[name]()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    rows = len(values)
    summary = {name: {"median_rows_per_s": round(rows / statistics.median(walls[name])),
                      "median_rows_per_cpu_s": round(rows / statistics.median(cpus[name])),
                      "rows_per_s_each_run": [round(rows / value) for value in walls[name]]}
               for name in ways}
    batch, single = (summary[name] for name in ways)
    reasons = outputs["parse_reading (per message)"].column(contracts.REJECT_REASON)
    canonical = pc.sum(pc.match_substring_regex(array, contracts.CANONICAL_MESSAGE).cast(pa.int64())).as_py()
    columns = list(outputs["parse_reading (per message)"].schema.names)
    return {
        "rows": rows,
        "compact_form_rows": canonical,
        "rejected_rows": rows - reasons.null_count,
        "outputs_agree_row_for_row": outputs["parse_values (whole array)"].select(columns).equals(
            outputs["parse_reading (per message)"]),
        "summary": summary,
        "batch_over_per_message (rows/s)": round(batch["median_rows_per_s"] / single["median_rows_per_s"], 1),
        "batch_over_per_message (rows per CPU-s)": round(
            batch["median_rows_per_cpu_s"] / single["median_rows_per_cpu_s"], 1),
        "load_before_after": [load_before, load_average()],
    }


def median_steps(runs: list[dict[str, object]]) -> dict[str, dict[str, float]]:
    """Per step of a way: the median wall and CPU seconds over its runs."""
    steps = [run["steps"] for run in runs]
    return {name: {measure: round(statistics.median(float(each[name][measure]) for each in steps), 3)  # type: ignore[index]
                   for measure in ("seconds", "cpu_seconds")}
            for name in steps[0]}  # type: ignore[union-attr]


def compare(records: DataFrame, rows: int, repeats: int, meter: CpuMeter, label: str) -> dict[str, object]:
    """One warm-up run per way (their outputs are checked against each other), then `repeats`
    rounds alternating the order; medians."""
    names = list(WAYS)
    warm_up: dict[str, object] = {}
    outputs: dict[str, pa.Table] = {}
    for name in names:
        output, warm_up[name] = timed_run(records, WAYS[name], meter)
        outputs[name] = output.sort_by([("partition", "ascending"), ("offset", "ascending")])
    reference = outputs[DRIVER]
    agreement = {name: disagreement(reference, outputs[name]) for name in names if name != DRIVER}
    reasons = reference.group_by(contracts.REJECT_REASON).aggregate([("offset", "count")]).to_pylist()
    rows_by_reason = {str(row[contracts.REJECT_REASON]): row["offset_count"] for row in reasons}
    outputs.clear()

    runs: dict[str, list[dict[str, object]]] = {name: [] for name in names}
    for round_number in range(repeats):
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            _, run = timed_run(records, WAYS[name], meter)
            run["round"] = round_number
            runs[name].append(run)
            print(json.dumps({"progress": label, "way": name, **run}), flush=True)

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
            "median_steps": median_steps(runs[name]),
            "load_each_run": [run["load_before"] for run in runs[name]],
        }
    driver = float(summary[DRIVER]["median_rows_per_s"])  # type: ignore[arg-type]
    driver_cpu = float(summary[DRIVER]["median_rows_per_cpu_s"])  # type: ignore[arg-type]
    return {
        "rows": rows,
        "rows_by_reason": rows_by_reason,
        "outputs_agree_with_driver": {name: problem is None for name, problem in agreement.items()},
        "disagreements": {name: problem for name, problem in agreement.items() if problem is not None} or None,
        "summary": summary,
        "driver_over_each (rows/s)": {name: round(driver / float(summary[name]["median_rows_per_s"]), 2)  # type: ignore[arg-type]
                                      for name in names if name != DRIVER},
        "driver_over_each (rows per CPU-s)": {
            name: round(driver_cpu / float(summary[name]["median_rows_per_cpu_s"]), 2)  # type: ignore[arg-type]
            for name in names if name != DRIVER},
        "warm_up": warm_up,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--panels", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4, help="Kafka partitions (the topic's default)")
    parser.add_argument("--malformed", type=float, default=0.01, help="share of hostile payloads")
    parser.add_argument("--noncanonical", type=float, default=0.01,
                        help="share of valid payloads outside the fleet's compact form")
    parser.add_argument("--no-spark", action="store_true",
                        help="only the one-core comparison of the contract's batch and per-message parsers")
    parser.add_argument("--one-core-repeats", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, nargs="*", default=[20_000],
                        help="also compare on micro-batches of these sizes (none: skip): the per-batch fixed cost")
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g", help="room to cache the records and collect them")
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()

    result: dict[str, object] = {"cpus": os.cpu_count(), "load_at_start": load_average(), "args": vars(args),
                                 "retired_parsers_from": RETIRED, "malformed_payloads": len(POISON),
                                 "other_spellings": len(OTHER_SPELLINGS)}
    started = time.perf_counter()
    table = fleet_records(args.messages, args.panels, args.partitions, args.malformed, args.noncanonical,
                          args.seed)
    result["generate_seconds"] = round(time.perf_counter() - started, 1)
    result["mean_value_bytes"] = round(pc.sum(pc.binary_length(table.column("value"))).as_py() / table.num_rows, 1)
    result["one_core_no_spark"] = one_core(table, args.one_core_repeats)
    if args.no_spark:
        result["load_at_end"] = load_average()
        print(json.dumps(result, indent=2))
        return

    settings = load_settings().model_copy(update={"spark_driver_memory": args.driver_memory})
    # Read by the JVM pyspark launches: the SQL twin's generated methods exceed the JIT's limit.
    os.environ["JAVA_TOOL_OPTIONS"] = f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} -XX:-DontCompileHugeMethods".strip()
    spark = build_session(settings, app_name="bench-parser-choice", master=args.master)
    HISTORY[SQL].configure_session(spark)
    result["spark"] = {"version": spark.version, "master": spark.sparkContext.master,
                       "arrow_max_records_per_batch": spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")}
    meter = CpuMeter(spark)
    result["cpu_meter_root"] = Path(f"/proc/{meter.jvm}/comm").read_text().strip()  # "java"
    with tempfile.TemporaryDirectory(prefix="bench-parser-choice-") as folder:
        records = cached_records(spark, table, args.partitions, Path(folder) / "all")
        result["full"] = compare(records, records.count(), args.repeats, meter, "full")
        records.unpersist()
        for rows in args.batch_rows:
            batch = cached_records(spark, table.slice(0, rows), args.partitions, Path(folder) / f"batch{rows}")
            result[f"micro_batch_{rows}"] = compare(batch, batch.count(), args.batch_repeats, meter, f"batch_{rows}")
            batch.unpersist()
    meter.close()
    result["load_at_end"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
