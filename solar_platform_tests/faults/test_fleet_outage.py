"""The live fleet when Kafka cannot take readings: both brokers stopped, and a kill -9 of the fleet.

- Both brokers of the shared stack are stopped through supervisord for ~40 s while a small fleet
  runs live, then started again (in a `finally`), and the test waits until every partition of every
  topic is whole again. Every reading generated in the span must reach the topic; the cycles must
  keep their cadence. This disturbs every other user of the stack for about a minute.
- A fleet process whose spool holds readings is killed with SIGKILL and started again: everything
  the spool held reaches the topic, byte for byte. There, the first fleet's own producer holds its
  records (a 60 s linger) so that no acknowledgement comes: the fleet turns to its spool as when the
  brokers are away, without disturbing anyone else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kafka import TopicPartition

from solar_platform import kafka_clients
from solar_platform.contracts import parse_reading
from solar_platform.fleet.live import run_live
from solar_platform.fleet.publisher import PublishSummary
from solar_platform.fleet.simulation import to_epoch_ms
from solar_platform.fleet.spool import read_spool
from solar_platform.runtime.kafka_provisioning import drop_topic, ensure_topic
from solar_platform.settings import Settings, load_settings
from solar_platform.stack.kafka_nodes import broker_programs
from solar_platform.stack.supervisor import process_states, start_program, supervisor
from solar_platform_tests.faults.harness import PROJECT_DIR, Figures, wait_until
from solar_platform_tests.fleet.support import fleet_settings

PANELS = 200
INTERVAL_S = 1.0
OUTAGE_S = 40.0
# The outage outlasts the producer's delivery timeout, as a long one does at the default 120 s: the
# records it held expire while the brokers are away. kafka-python 3.0.x's idempotent producer may stop
# sending for good after that (docs/reliability.md §9); the fleet must replace it and lose nothing.
SHORT_DELIVERY = {"request_timeout_ms": 3000, "delivery_timeout_ms": 8000}


@pytest.fixture
def kafka_topic(request: pytest.FixtureRequest) -> Iterator[Settings]:
    """A fresh topic (RF 2) on the running stack, dropped afterwards. These tests need no database, so
    they do not migrate one; when no stack runs, the session's stack fixture starts it."""
    settings = load_settings()

    def brokers_running() -> bool:
        return {process_states(settings).get(p) for p in broker_programs(settings)} == {"RUNNING"}

    if not process_states(settings):
        settings = request.getfixturevalue("stack_settings")
    wait_until(brokers_running, 120, "the stack's brokers")  # someone else's `stack up` may be under way
    topic = f"t_fleet_{uuid.uuid4().hex[:10]}"
    settings = settings.model_copy(update={"topic": topic})
    ensure_topic(settings)
    try:
        yield settings
    finally:
        drop_topic(settings, topic)


def read_topic(settings: Settings) -> list[tuple[bytes, bytes, int]]:
    """(key, value, Kafka timestamp) of every record of the topic, up to its end offsets now."""
    consumer = kafka_clients.consumer(settings, role="admin", group_id=None, enable_auto_commit=False,
                                      max_partition_fetch_bytes=4 << 20)
    try:
        partitions = [TopicPartition(settings.topic, p) for p in sorted(consumer.partitions_for_topic(settings.topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[tuple[bytes, bytes, int]] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, "could not read the topic to its end"
            for batch in consumer.poll(timeout_ms=500, max_records=50_000).values():
                records.extend((r.key, r.value, r.timestamp) for r in batch)
        return records
    finally:
        consumer.close()


def all_partitions_whole(settings: Settings) -> bool:
    """Every partition of every topic has a leader and all its replicas in sync."""
    with kafka_clients.admin(settings, request_timeout_ms=5000) as admin:
        topics = admin.describe_topics()
    return bool(topics) and all(p["leader_id"] >= 0 and set(p["isr_nodes"]) >= set(p["replica_nodes"])
                                for topic in topics for p in topic["partitions"])


@contextmanager
def brokers_stopped(settings: Settings) -> Iterator[list[str]]:
    """Stop both brokers through supervisord; start them again and wait for whole ISRs, whatever happens."""
    programs = broker_programs(settings)
    server = supervisor(settings)
    try:
        for program in programs:
            server.supervisor.stopProcess(program, True)
        yield programs
    finally:
        for program in programs:
            start_program(settings, program)
        wait_until(lambda: all_partitions_whole(settings), 240, "every partition of every topic whole again", 1.0)


def landed(records: list[tuple[bytes, bytes, int]]) -> tuple[Counter, list[str]]:
    """(panel, time ms) -> copies on the topic; and what is wrong with any record (key, Kafka timestamp)."""
    copies: Counter = Counter()
    problems = []
    for key, value, stamp in records:
        reading = parse_reading(value)
        time_ms = to_epoch_ms(reading.time_utc)
        copies[(reading.panel_id, time_ms)] += 1
        if key != reading.panel_id.encode() or stamp != time_ms:
            problems.append(f"{key!r} {stamp} {value!r}")
    return copies, problems


@pytest.mark.fault
@pytest.mark.integration
@pytest.mark.timeout(600)
def test_both_brokers_stopped_the_fleet_keeps_its_cadence_and_loses_nothing(
    kafka_topic: Settings, tmp_path: Path
) -> None:
    settings = fleet_settings(kafka_topic, interval_seconds=INTERVAL_S, fleet_spool_dir=tmp_path / "spool",
                              fleet_stall_seconds=3.0)
    figures = Figures("both Kafka brokers stopped under a live fleet")
    stop = threading.Event()
    cycle_starts: list[float] = []
    latest: list[PublishSummary] = []
    result: dict = {}

    def on_cycle(summary: PublishSummary) -> None:
        cycle_starts.append(time.monotonic())
        latest[:] = [PublishSummary(**summary.__dict__)]

    def fleet() -> None:
        try:
            result["summary"] = run_live(settings, panels=PANELS, seed=7, stop=stop, on_cycle=on_cycle,
                                         producer_config=SHORT_DELIVERY)
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["error"] = exc

    thread = threading.Thread(target=fleet, name="fleet", daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(cycle_starts) >= 5, 60, "five live cycles")
        with brokers_stopped(settings) as programs:
            stopped_at = time.monotonic()
            both_down_s, most_held = 0.0, 0
            while time.monotonic() < stopped_at + OUTAGE_S:
                time.sleep(0.5)
                states = process_states(settings)
                # Another session's `stack up` may start them again early: count what really happened.
                both_down_s += 0.5 * all(states.get(p) != "RUNNING" for p in programs)
                most_held = max(most_held, latest[-1].spool_records)
            restarting_at = time.monotonic()
            figures["both_brokers_down_s"] = both_down_s
            figures["most_readings_held_in_spool"] = most_held
        in_sync_at = time.monotonic()
        wait_until(lambda: latest[-1].spool_records == 0 and latest[-1].messages_drained > 0, 300,
                   "the fleet to drain its spool", 0.5)
        drained_at = time.monotonic()
        time.sleep(3 * INTERVAL_S)
    finally:
        stop.set()
        thread.join(timeout=120)
    assert "error" not in result, repr(result.get("error"))
    summary: PublishSummary = result["summary"]

    copies, problems = landed(read_topic(settings))
    times = sorted({time_ms for _panel, time_ms in copies})
    gaps = [b - a for a, b in zip(cycle_starts, cycle_starts[1:], strict=False)]
    figures["stop_window_s"] = restarting_at - stopped_at
    figures["kafka_outages_seen_by_the_fleet"] = summary.kafka_outages
    figures["brokers_back_in_sync_after_restart_s"] = in_sync_at - restarting_at
    figures["spool_drained_after_restart_s"] = drained_at - restarting_at
    figures["cycles"] = summary.cycles
    figures["generated"] = summary.messages_generated
    figures["landed"] = len(copies)
    figures["duplicated"] = sum(copies.values()) - len(copies)
    figures["lost"] = summary.messages_generated - len(copies)
    figures["spooled"] = summary.messages_spooled
    figures["drained"] = summary.messages_drained
    figures["dropped"] = summary.messages_dropped
    figures["cycles_late"] = summary.cycles_late
    figures["longest_gap_between_cycles_s"] = max(gaps)
    figures["kafka_unavailable_s"] = summary.kafka_unavailable_s
    figures["producers_replaced"] = summary.producers_replaced
    figures.record(tmp_path)

    assert not problems, problems[:3]
    assert summary.kafka_outages >= 1 and summary.messages_spooled > 0
    assert all(n == PANELS for n in Counter(t for _p, t in copies).values())  # whole cycles
    assert len(times) == summary.cycles and len(copies) == summary.messages_generated  # every reading landed
    assert summary.messages_lost == 0 and summary.spool_records == 0
    assert max(gaps) < 2.5 * INTERVAL_S, gaps  # the cadence held through the outage
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 2.5 * INTERVAL_S * 1000


# The first fleet's producer holds its records for a minute before sending them: no acknowledgement
# comes, so the fleet turns to its spool as it does when the brokers are away, and no one else
# sharing the stack is disturbed (stopping the brokers is the test above).
HOLDING_PRODUCER = {"linger_ms": 60_000, "delivery_timeout_ms": 200_000}
FIRST_FLEET = """
import threading
from solar_platform.fleet.live import run_live
from solar_platform.settings import load_settings
run_live(load_settings(), panels=50, seed=5, stop=threading.Event(), producer_config={config!r})
"""


def fleet_process(settings: Settings, log: Path, *, holding: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SOLAR_HOME": str(settings.home_dir), "SOLAR_TOPIC": settings.topic,
           "SOLAR_FLEET_SPOOL_DIR": str(settings.fleet_spool_dir), "SOLAR_FLEET_STALL_SECONDS": "2",
           "SOLAR_INTERVAL_SECONDS": "0.5"}
    command = ([sys.executable, "-c", FIRST_FLEET.format(config=HOLDING_PRODUCER)] if holding else
               [sys.executable, "-m", "solar_platform", "fleet", "run", "--panels", "50", "--seed", "5"])
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_kill_9_of_a_fleet_holding_a_spool_and_its_restart_drains_it(kafka_topic: Settings, tmp_path: Path) -> None:
    settings = fleet_settings(kafka_topic, fleet_spool_dir=tmp_path / "spool")
    spool_dir = settings.fleet_spool_path
    figures = Figures("kill -9 of a fleet holding a spool, then a restart")
    log = tmp_path / "fleet.log"
    first = fleet_process(settings, log, holding=True)
    try:
        wait_until(lambda: sum(len(f.keys) for f in read_spool(spool_dir)) >= 20 * 50, 120,
                   "the first fleet to spool 20 cycles")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    held = read_spool(spool_dir)
    expected = {(key, value) for frame in held for key, value in zip(frame.keys, frame.values, strict=True)}
    figures["spooled_at_kill"] = len(expected)
    assert not read_topic(settings)  # nothing reached Kafka: the spool is all there is
    restarted_at = time.monotonic()
    second = fleet_process(settings, log, holding=False)
    try:
        wait_until(lambda: not read_spool(spool_dir), 180, "the restarted fleet to drain the spool")
        figures["drain_s"] = time.monotonic() - restarted_at
        time.sleep(2)
    finally:
        second.send_signal(signal.SIGTERM)
        exit_code = second.wait(timeout=90)
    output = log.read_text()
    assert exit_code == 0, output[-3000:]
    records = read_topic(settings)
    on_topic = {(key, value) for key, value, _stamp in records}
    copies, problems = landed(records)
    figures["on_topic"] = len(copies)
    figures["spooled_missing_from_topic"] = len(expected - on_topic)
    figures["duplicated"] = sum(copies.values()) - len(copies)
    figures.record(tmp_path)
    assert expected and expected <= on_topic  # every spooled record, byte for byte
    assert not problems, problems[:3]
    assert "from an earlier run; draining them" in output
    assert json.loads(held[0].values[0])["Panel_id"].startswith("panel-")
