"""The fault suite's machinery: load, a counting consumer, the stream as a killable process, figures.

- `Load`: the fleet's readings (`FleetSimulator` + the fleet's `MessageEncoder`) at a steady rate
  through the fleet's producer settings (acks=all, idempotent), one future per record, so the test
  knows exactly which readings the brokers acknowledged.
- `TopicCounter`: a consumer of its own (role admin) reading the test topic from the start for the
  whole test: what the topic really holds, independent of the stream.
- `StreamProcess`: `python -m solar_platform stream run --trigger continuous` with the test's
  database and topic, in its own process group, so it can be SIGKILLed (driver and JVM together).
- `Outcome`: the exactly-once comparison (acknowledged vs topic vs panelData) and the figures,
  written as JSON lines to the test's tmp dir (and `$SOLAR_FAULT_FIGURES` when set) and printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import TopicPartition
from sqlalchemy import text

from solar_platform import kafka_clients
from solar_platform.contracts import format_timestamp
from solar_platform.fleet.encoding import MessageEncoder
from solar_platform.fleet.publisher import PRODUCER_CONFIG
from solar_platform.fleet.simulation import FleetSimulator, from_epoch_ms
from solar_platform.settings import Settings
from solar_platform.stack.supervisor import start_program, supervisor
from solar_platform.storage import db
from solar_platform_tests.storage.derived import assert_derived_equal_recompute

PROJECT_DIR = Path(__file__).resolve().parents[2]

# The 2-core reference machine also runs both brokers, the controller, MariaDB, Spark and this
# process: 100 panels x 5 cycles/s = 500 readings/s keeps the stream's batches at a few seconds,
# and the backlog a killed stream leaves replayable within the suite's time budget.
LOAD_PANELS = 100
LOAD_CYCLES_PER_SECOND = 5.0
# Simulated time between cycles: readings are stamped in the past hour (well inside the clock rules).
LOAD_STEP_MS = 1000
STREAM_TRIGGER_SECONDS = 1.0

ReadingKey = tuple[str, int]  # (Panel_id, epoch ms)


def utc_now() -> datetime:
    return datetime.now(UTC)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.5) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except Exception:  # noqa: BLE001 - a service that is down right now is what faults do
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


# ------------------------------------------------------------------------------------------ load
class Load:
    """The simulated fleet, published at a steady rate on a thread; every record keeps its future."""

    def __init__(self, settings: Settings, *, panels: int = LOAD_PANELS,
                 cycles_per_second: float = LOAD_CYCLES_PER_SECOND, seed: int = 11) -> None:
        self.settings = settings
        self.cycles_per_second = cycles_per_second
        start = utc_now().replace(microsecond=0) - timedelta(hours=1)
        self.simulator = FleetSimulator(settings, fleet_start=start, panels=panels, seed=seed, history=True)
        self.encoder = MessageEncoder(self.simulator.panel_ids)
        self.start_ms = self.simulator.fleet_start_ms
        self.producer = kafka_clients.producer(settings, "fleet", **PRODUCER_CONFIG)
        self.records: list[tuple[int, int]] = []  # (panel index, time ms), aligned with futures
        self.futures: list[Any] = []
        self.ack_times: list[float] = []  # monotonic time of every acknowledgement
        self.cycle_times: dict[str, int] = {}  # the message's time text -> ms (for the counting consumer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-load", daemon=True)
        self.error: BaseException | None = None
        self.started_at = 0.0
        self.stopped_at = 0.0

    def start(self) -> Load:
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def _acked(self, _metadata: object) -> None:
        self.ack_times.append(time.monotonic())

    def _run(self) -> None:
        try:
            send, topic, keys = self.producer.send, self.settings.topic, self.encoder.keys
            next_due = time.monotonic()
            cycle = 0
            while not self._stop.is_set():
                time_ms = self.start_ms + cycle * LOAD_STEP_MS
                readings = self.simulator.cycle(time_ms)
                values = self.encoder.encode(readings.power_w, readings.status, time_ms)
                self.cycle_times[format_timestamp(from_epoch_ms(time_ms))] = time_ms
                for index, (key, value) in enumerate(zip(keys, values, strict=True)):
                    future = send(topic, key=key, value=value)
                    future.add_callback(self._acked)
                    self.records.append((index, time_ms))
                    self.futures.append(future)
                cycle += 1
                next_due += 1.0 / self.cycles_per_second
                self._stop.wait(max(0.0, next_due - time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - reported by `stop`
            self.error = exc

    def stop(self, flush_timeout: float = 150.0) -> None:
        """Stop sending, then wait for every record to be acknowledged or failed (or the timeout)."""
        self._stop.set()
        self._thread.join(timeout=60)
        self.stopped_at = time.monotonic()
        try:
            self.producer.flush(timeout=flush_timeout)
        finally:
            self.producer.close(timeout=10)
        assert self.error is None, f"the load thread failed: {self.error!r}"

    @property
    def sent(self) -> int:
        return len(self.futures)

    def acknowledged(self) -> set[ReadingKey]:
        ids = self.simulator.panel_ids
        return {(ids[panel], time_ms) for (panel, time_ms), future in zip(self.records, self.futures, strict=True)
                if future.succeeded()}

    def failed(self) -> int:
        return sum(1 for future in self.futures if future.failed())

    def unconfirmed(self) -> int:
        return sum(1 for future in self.futures if not future.is_done)

    def longest_ack_gap(self, after: float, before: float) -> float:
        """The longest stretch without any acknowledgement between two monotonic instants."""
        times = sorted(t for t in self.ack_times if after <= t <= before)
        points = [after, *times, before]
        return max(b - a for a, b in zip(points, points[1:], strict=False))

    def key_of(self, value: bytes) -> ReadingKey:
        message = json.loads(value)
        return message["Panel_id"], self.cycle_times[message["time_data"]]


# ------------------------------------------------------------------------------ counting consumer
class TopicCounter:
    """The test's own consumer (role admin): reads the whole topic, from offset 0, on a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.records: dict[tuple[int, int], tuple[bytes | None, bytes | None]] = {}  # (partition, offset)
        self.end_offsets: dict[int, int] = {}
        self._finish = threading.Event()
        self._done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fault-counter", daemon=True)

    def start(self) -> TopicCounter:
        self._thread.start()
        return self

    def _run(self) -> None:
        consumer = None
        try:
            consumer = kafka_clients.consumer(
                self.settings, role="admin", group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", max_partition_fetch_bytes=2 * 1024 * 1024)
            partitions = [TopicPartition(self.settings.topic, p)
                          for p in sorted(consumer.partitions_for_topic(self.settings.topic) or ())]
            assert partitions, f"topic {self.settings.topic} has no partitions"
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            target: dict[TopicPartition, int] | None = None
            while True:
                for tp, messages in consumer.poll(timeout_ms=500, max_records=20_000).items():
                    for message in messages:
                        self.records[(tp.partition, message.offset)] = (message.key, message.value)
                if self._finish.is_set():
                    if target is None:  # asked once the producers are done: read up to the end
                        target = consumer.end_offsets(partitions)
                        self.end_offsets = {tp.partition: offset for tp, offset in target.items()}
                    if all(consumer.position(tp) >= offset for tp, offset in target.items()):
                        break
        except BaseException as exc:  # noqa: BLE001 - reported by `finish`
            self.error = exc
        finally:
            if consumer is not None:
                consumer.close()
            self._done.set()

    def finish(self, timeout: float = 120.0) -> TopicCounter:
        """Read up to the topic's end offsets as they are now (call once every producer is done)."""
        self._finish.set()
        self._thread.join(timeout=timeout)
        assert self._done.is_set(), f"the counting consumer did not reach the end of the topic in {timeout:.0f} s"
        assert self.error is None, f"the counting consumer failed: {self.error!r}"
        assert len(self.records) == sum(self.end_offsets.values()), "the topic has gaps in its offsets"
        return self

    @property
    def total(self) -> int:
        return len(self.records)


# --------------------------------------------------------------------------- the stream process
class StreamProcess:
    """The streaming job as the supervisor runs it, for one test's database and topic."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOLAR_HOME": str(self.settings.home_dir),
                "SOLAR_MYSQL_PORT": str(self.settings.mysql_port),  # the stack's, or a test's own server
                "SOLAR_MYSQL_DATABASE": self.settings.mysql_database, "SOLAR_TOPIC": self.settings.topic,
                "SOLAR_STREAM_TRIGGER_SECONDS": str(STREAM_TRIGGER_SECONDS), "SOLAR_MYSQL_ROLE": "stream"}

    def start(self) -> float:
        """Start it (a new process group); returns the wall time (epoch s) it was started at."""
        assert not self.running, "the stream is already running"
        self.starts += 1
        log = (self.log_dir / f"stream-{self.starts}.log").open("wb")
        started = time.time()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "solar_platform", "stream", "run", "--trigger", "continuous"],
            cwd=PROJECT_DIR, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return started

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> float:
        """SIGKILL the driver and its JVM (the whole process group); returns the wall time of the kill."""
        assert self.process is not None
        killed = time.time()
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        return killed

    def stop(self, timeout: float = 90.0) -> int | None:
        """SIGTERM (the job stops between batches), then SIGKILL if it hangs; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # any child left behind (the JVM)
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        path = self.log_dir / f"stream-{self.starts}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


# ----------------------------------------------------------------------------- database probes
def _scalar(settings: Settings, sql: str, **params: object) -> Any:
    with db.engine(settings).connect() as conn:
        return conn.execute(text(sql), params).scalar()


def progress_rows_in(settings: Settings) -> int:
    """Kafka records the stream has committed (each batch's progress row, replays overwrite)."""
    return int(_scalar(settings, f"SELECT COALESCE(SUM(rows_in), 0) FROM `{db.STREAM_PROGRESS}`") or 0)


def batch_seconds(settings: Settings) -> tuple[float, float]:
    """(mean, max) wall time of the stream's batches that read something."""
    with db.engine(settings).connect() as conn:
        mean, longest = conn.execute(text(
            f"SELECT AVG(duration_ms), MAX(duration_ms) FROM `{db.STREAM_PROGRESS}` WHERE rows_in > 0")).one()
    return float(mean or 0) / 1000, float(longest or 0) / 1000


def dead_letter_count(settings: Settings) -> int:
    return int(_scalar(settings, f"SELECT COUNT(*) FROM `{db.DEAD_LETTERS}`") or 0)


def batches_committed(settings: Settings) -> int:
    return int(_scalar(settings, f"SELECT COUNT(*) FROM `{db.STREAM_PROGRESS}` WHERE rows_in > 0") or 0)


def first_batch_planned_after(settings: Settings, moment: float) -> float | None:
    """Wall time (epoch s) of the first batch with rows that started after `moment` and committed."""
    after = datetime.fromtimestamp(moment, UTC).replace(tzinfo=None)
    committed = _scalar(
        settings,
        f"SELECT MIN(recorded_at) FROM `{db.STREAM_PROGRESS}` WHERE rows_in > 0 "
        "AND recorded_at - INTERVAL duration_ms * 1000 MICROSECOND > :after",
        after=after)
    return None if committed is None else committed.replace(tzinfo=UTC).timestamp()


def batch_in_flight(settings: Settings) -> int | None:
    """The id of the batch the live job is running (its pulse row says so), None between batches."""
    row = None
    with db.engine(settings).connect() as conn:
        row = conn.execute(text(f"SELECT batch_id, in_flight FROM `{db.STREAM_PULSE}`")).first()
    return int(row[0]) if row is not None and row[1] else None


def wait_for_stream_to_drain(settings: Settings, stream: StreamProcess, records: int, timeout: float, *,
                             restart_on_exit: bool = False) -> None:
    """Until the stream has committed every record of the topic and written every summary (a round
    follows the batches by a few seconds). A stream that exits fails the test, or, with
    `restart_on_exit`, is started again (supervisord's autorestart of the `stream` program)."""
    def drained() -> bool:
        if not stream.running:
            assert restart_on_exit, f"the stream exited ({stream.process.returncode}):\n{stream.log_tail()}"  # type: ignore[union-attr]
            stream.start()
        return progress_rows_in(settings) >= records and batches_unsummarized(settings) == 0

    deadline = time.monotonic() + timeout
    while not _probe(drained):
        if time.monotonic() > deadline:
            raise AssertionError(f"the stream committed {progress_rows_in(settings)} of {records} records "
                                 f"in {timeout:.0f} s:\n{stream.log_tail()}")
        time.sleep(0.5)


def batches_unsummarized(settings: Settings) -> int:
    """Batches whose appends are committed and their summaries not yet written."""
    with db.engine(settings).connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {db.STREAM_UNSUMMARIZED}")).scalar_one())


def _probe(predicate: Callable[[], bool]) -> bool:
    try:
        return predicate()
    except AssertionError:
        raise
    except Exception:  # noqa: BLE001 - MariaDB restarting
        return False


def panel_data(settings: Settings) -> tuple[Counter[ReadingKey], dict[ReadingKey, tuple[float, int]]]:
    """panelData as {(panel, epoch ms): rows} and {(panel, epoch ms): (power, status)}."""
    rows: Counter[ReadingKey] = Counter()
    values: dict[ReadingKey, tuple[float, int]] = {}
    with db.engine(settings).connect() as conn:
        result = conn.execute(text(
            f"SELECT Panel_id, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', time_data) DIV 1000, power_panel, "
            f"current_status FROM `{db.READINGS}`"))
        for panel, time_ms, power, status in result:
            key = (panel, int(time_ms))
            rows[key] += 1
            values[key] = (float(power), int(status))
    return rows, values


# ------------------------------------------------------------------------------- supervised kills
def supervised_pid(settings: Settings, program: str) -> int:
    info = supervisor(settings).supervisor.getProcessInfo(program)
    assert info["statename"] == "RUNNING", f"{program} is {info['statename']}"
    return int(info["pid"])


def kill9_supervised(settings: Settings, program: str) -> tuple[int, float]:
    """SIGKILL a program of the test's stack by the PID supervisord reports; returns (pid, wall time)."""
    pid = supervised_pid(settings, program)
    killed = time.time()
    os.kill(pid, signal.SIGKILL)
    return pid, killed


def wait_restarted(settings: Settings, program: str, old_pid: int, timeout: float) -> int:
    """supervisord's autorestart, or a start of our own if it gave up (like an operator would)."""
    def restarted() -> int | None:
        info = supervisor(settings).supervisor.getProcessInfo(program)
        if info["statename"] in ("FATAL", "EXITED", "STOPPED", "BACKOFF"):
            start_program(settings, program)
        return int(info["pid"]) if info["statename"] == "RUNNING" and info["pid"] != old_pid else None

    return int(wait_until(restarted, timeout, f"supervisord to restart {program}"))


def watch_isr(settings: Settings, broker: int, timeout: float) -> tuple[float | None, float]:
    """After `broker` was killed: (when it was seen out of some partition's ISR, or None if never seen,
    when every partition of the test topic had a leader and all replicas in sync again), epoch s.

    Polls every 0.1 s on one admin connection (a new SASL client per poll would miss a short shrink).
    """
    deadline = time.monotonic() + timeout
    left_at: float | None = None
    started = time.time()
    client = None
    try:
        while time.monotonic() < deadline:
            try:
                if client is None:
                    client = kafka_clients.admin(settings, request_timeout_ms=3000)
                    admin = client.__enter__()
                (topic,) = admin.describe_topics([settings.topic])
            except Exception:  # noqa: BLE001 - a broker is down: that is the point
                if client is not None:
                    with suppress(Exception):
                        client.__exit__(None, None, None)
                client = None
                time.sleep(0.2)
                continue
            partitions = topic["partitions"]
            if left_at is None and any(broker not in p["isr_nodes"] for p in partitions):
                left_at = time.time()
            synced = bool(partitions) and all(
                p["leader_id"] >= 0 and set(p["isr_nodes"]) >= set(p["replica_nodes"]) for p in partitions)
            # Not seen out after 20 s: the shrink was shorter than a poll, or never happened.
            if synced and (left_at is not None or time.time() - started > 20):
                return left_at, time.time()
            time.sleep(0.1)
    finally:
        if client is not None:
            with suppress(Exception):
                client.__exit__(None, None, None)
    raise AssertionError(f"broker {broker} not back in the ISR of every partition within {timeout:.0f} s")


# ------------------------------------------------------------------------------------- figures
@dataclass
class Figures:
    """What one fault run measured; `record` writes it as a JSON line and prints it."""

    fault: str
    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = round(value, 2) if isinstance(value, float) else value

    def record(self, tmp_path: Path) -> None:
        line = json.dumps({"fault": self.fault, "cpus": os.cpu_count(), **self.values}, sort_keys=False)
        with (tmp_path / "fault_figures.jsonl").open("a") as out:
            out.write(line + "\n")
        if extra := os.environ.get("SOLAR_FAULT_FIGURES"):
            with Path(extra).open("a") as out:
                out.write(line + "\n")
        print(f"FAULT FIGURES {line}")


def exactly_once_figures(figures: Figures, load: Load, counter: TopicCounter, settings: Settings) -> dict[str, Any]:
    """Acknowledged vs the topic vs panelData; fills `figures`, returns the details for the asserts."""
    acked = load.acknowledged()
    in_topic: Counter[ReadingKey] = Counter(load.key_of(value) for _key, value in counter.records.values()
                                            if value is not None)
    topic_values = {load.key_of(value): json.loads(value) for _key, value in counter.records.values()
                    if value is not None}
    rows, values = panel_data(settings)
    lost_in_kafka = acked - in_topic.keys()
    lost = acked - rows.keys()
    duplicated = sum(n - 1 for n in rows.values() if n > 1)
    phantoms = rows.keys() - in_topic.keys()
    wrong_values = [key for key, (power, status) in values.items() if key in topic_values and (
        power, status) != (float(topic_values[key]["power_panel"]), int(topic_values[key]["current_status"]))]
    figures["sent"] = load.sent
    figures["acknowledged"] = len(acked)
    figures["failed"] = load.failed()
    figures["unconfirmed"] = load.unconfirmed()
    figures["topic_records"] = counter.total
    figures["topic_duplicates"] = sum(n - 1 for n in in_topic.values() if n > 1)
    figures["lost_in_kafka"] = len(lost_in_kafka)
    figures["landed"] = len(rows)
    figures["batches"], (figures["batch_seconds_mean"], figures["batch_seconds_max"]) = (
        batches_committed(settings), batch_seconds(settings))
    figures["dead_letters"] = dead_letter_count(settings)
    figures["lost"] = len(lost)
    figures["duplicated"] = duplicated
    figures["unacknowledged_landed"] = len(rows.keys() - acked)
    figures["load_seconds"] = load.stopped_at - load.started_at
    figures["readings_per_second"] = load.sent / max(load.stopped_at - load.started_at, 1e-9)
    return {"lost": sorted(lost)[:5], "lost_in_kafka": sorted(lost_in_kafka)[:5], "duplicated": duplicated,
            "phantoms": sorted(phantoms)[:5], "wrong_values": wrong_values[:5]}


def assert_exactly_once(details: dict[str, Any]) -> None:
    assert not details["lost_in_kafka"], f"acknowledged but not on the topic: {details['lost_in_kafka']}"
    assert not details["lost"], f"acknowledged but not in panelData: {details['lost']}"
    assert details["duplicated"] == 0
    assert not details["phantoms"], f"in panelData but never on the topic: {details['phantoms']}"
    assert not details["wrong_values"], f"panelData differs from the topic: {details['wrong_values']}"


# ------------------------------------------------------------------------- one run under load
@dataclass
class FaultRun:
    """The parts of one fault test under load: the stream, the fleet's load, the counting consumer."""

    settings: Settings
    figures: Figures
    counter: TopicCounter
    stream: StreamProcess
    load: Load | None = None

    def end_load_and_drain(self, timeout: float = 240, *, restart_on_exit: bool = False) -> None:
        """Stop publishing, read the topic to its end, and wait for the stream to commit all of it."""
        assert self.load is not None
        self.load.stop()
        self.counter.finish()
        wait_for_stream_to_drain(self.settings, self.stream, self.counter.total, timeout,
                                 restart_on_exit=restart_on_exit)

    def verify(self, tmp_path: Path) -> None:
        """Every acknowledged reading exactly once, no dead letters, derived tables = a recompute."""
        assert self.load is not None
        details = exactly_once_figures(self.figures, self.load, self.counter, self.settings)
        self.figures["stream_restarts"] = self.stream.starts - 1
        self.figures.record(tmp_path)
        assert_exactly_once(details)
        assert self.figures.values["dead_letters"] == 0
        assert_derived_equal_recompute(self.settings)


@contextmanager
def stream_under_load(settings: Settings, tmp_path: Path, fault: str) -> Iterator[FaultRun]:
    """The stream running, the fleet's load publishing, a first batch committed; stopped on exit."""
    run = FaultRun(settings, Figures(fault), TopicCounter(settings).start(), StreamProcess(settings, tmp_path))
    try:
        run.stream.start()
        run.load = Load(settings).start()
        wait_until(lambda: batches_committed(settings) >= 1, 180, "the stream's first batch")
        yield run
    finally:
        if run.load is not None and run.load.stopped_at == 0.0:
            run.load.stop(flush_timeout=10)
        run.stream.stop()
