"""The fleet's spool end to end: both Kafka brokers stopped for minutes under a live fleet, and every
reading generated must land in panelData exactly once (run by hand; it stops the local stack's
brokers, so run it on a stack no one else is using).

    .venv/bin/python bench/spool_outage.py --panels 20000 --interval 5 --outage 180
    .venv/bin/python bench/spool_outage.py --panels 200000 --interval 5 --outage 60 --topic-only
    .venv/bin/python bench/spool_outage.py --panels 200000 --interval 5 --outage 180 --stream-after

1. A scratch database and topic on the running stack; the stream (`stream run`, continuous, in its
   own process, started again when it exits, as supervisord does) and a live fleet (`run_live` in
   this process, its spool in a temporary directory). With `--topic-only` there is no stream: the
   count is made on the topic alone (the fleet's side of the promise; at 200k panels the stream on a
   2-core machine cannot take 40k readings/s, see docs/benchmarks.md). With `--stream-after` the
   stream starts once the fleet has stopped and drains the whole topic into panelData alone: the
   promise end to end at a fleet size the stream cannot carry live.
2. After `--warmup` cycles, both brokers are stopped through supervisord for `--outage` seconds,
   then started again.
3. The fleet runs on until its spool is empty and `--after` more cycles are done, then stops; the
   bench waits until panelData holds every cycle (or `--catch-up` seconds pass), reads the whole
   topic, and counts.

Prints one JSON document: readings generated, on the topic (and copies there: the spool delivers at
least once), in panelData (one row per panel and time, its key), lost; the spool's figures (most
readings and bytes held, bytes per reading, drain rate); the cadence; and how long each part took
to recover.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from kafka import TopicPartition
from sqlalchemy import text

from solar_platform import kafka_clients
from solar_platform.fleet.live import run_live
from solar_platform.fleet.publisher import PublishSummary
from solar_platform.settings import Settings, load_settings
from solar_platform.stack.kafka_nodes import broker_programs
from solar_platform.stack.scratch import scratch_environment
from solar_platform.stack.supervisor import process_states, start_program, supervisor
from solar_platform.storage import db

PROJECT_DIR = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float, what: str, poll: float = 1.0) -> float:  # noqa: ANN001 - a bench
    started = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - a service in the middle of restarting
            pass
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def partitions_whole(settings: Settings) -> bool:
    with kafka_clients.admin(settings, request_timeout_ms=5000) as admin:
        topics = admin.describe_topics()
    return bool(topics) and all(p["leader_id"] >= 0 and set(p["isr_nodes"]) >= set(p["replica_nodes"])
                                for topic in topics for p in topic["partitions"])


def cycles_in_panel_data(settings: Settings) -> Counter[datetime]:
    """Readings per cycle time (a live cycle stamps all its readings alike)."""
    with db.engine(settings).connect() as conn:
        return Counter({row[0]: int(row[1]) for row in conn.execute(text(
            f"SELECT time_data, COUNT(*) FROM {db.READINGS} GROUP BY time_data"))})


def last_stamp_on_topic(settings: Settings) -> datetime:
    """The newest record's time on the topic (the fleet stamps a record with its reading's time)."""
    consumer = kafka_clients.consumer(settings, role="admin", group_id=None, enable_auto_commit=False)
    newest = 0
    try:
        partitions = [TopicPartition(settings.topic, p) for p in sorted(consumer.partitions_for_topic(settings.topic))]
        consumer.assign(partitions)
        for tp, end in consumer.end_offsets(partitions).items():
            if end:
                consumer.seek(tp, end - 1)
        for batch in consumer.poll(timeout_ms=10_000, max_records=len(partitions) * 10).values():
            newest = max(newest, *(record.timestamp for record in batch))
    finally:
        consumer.close()
    return datetime.fromtimestamp(newest / 1000, UTC).replace(tzinfo=None)


def readings_at(settings: Settings, stamp: datetime) -> int:
    with db.engine(settings).connect() as conn:
        query = text(f"SELECT COUNT(*) FROM {db.READINGS} WHERE time_data = :t")
        return int(conn.execute(query, {"t": stamp}).scalar())


def topic_copies(settings: Settings) -> tuple[int, int, Counter[int]]:
    """Records on the topic, distinct (key, Kafka time) among them, and distinct keys per Kafka time.

    The fleet stamps each record with its reading's time. Keys are kept as 64-bit hashes in numpy
    arrays, as millions of (bytes, int) tuples would take gigabytes.
    """
    consumer = kafka_clients.consumer(settings, role="admin", group_id=None, enable_auto_commit=False,
                                      max_partition_fetch_bytes=8 << 20)
    keys: list[np.ndarray] = []
    times: list[np.ndarray] = []
    try:
        partitions = [TopicPartition(settings.topic, p) for p in sorted(consumer.partitions_for_topic(settings.topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for batch in consumer.poll(timeout_ms=1000, max_records=100_000).values():
                keys.append(np.fromiter((hash(record.key) for record in batch), dtype=np.int64, count=len(batch)))
                times.append(np.fromiter((record.timestamp for record in batch), dtype=np.int64, count=len(batch)))
    finally:
        consumer.close()
    if not keys:
        return 0, 0, Counter()
    pairs = np.unique(np.stack([np.concatenate(times), np.concatenate(keys)], axis=1), axis=0)
    stamps, per_stamp = np.unique(pairs[:, 0], return_counts=True)
    return (sum(len(k) for k in keys), len(pairs),
            Counter({int(t): int(n) for t, n in zip(stamps, per_stamp, strict=True)}))


class Restarted:
    """A command in its own process, started again 1 s after it exits, as supervisord's `autorestart` does
    for the `stream` program: a stream whose brokers stay away past its Kafka consumer's timeout (60 s)
    fails its query and exits."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.exits: list[int] = []  # exit codes of the processes that ended before `stop`
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # `stop` must not miss a process being started
        self.process: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(target=self.run, name="stream", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        with self.log.open("ab") as log:
            while True:
                with self.lock:
                    if self.stopping.is_set():
                        return
                    self.process = process = subprocess.Popen(
                        self.command, cwd=PROJECT_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True)
                code = process.wait()
                if self.stopping.is_set():
                    return
                self.exits.append(code)
                self.stopping.wait(1.0)

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                self.process.wait(timeout=120)
        self.thread.join(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panels", type=int, default=20_000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--outage", type=float, default=180.0, help="seconds both brokers stay stopped")
    parser.add_argument("--warmup", type=int, default=4, help="cycles before the outage")
    parser.add_argument("--after", type=int, default=4, help="cycles after the spool is empty")
    parser.add_argument("--catch-up", type=float, default=1800.0, help="most seconds the stream may take after")
    parser.add_argument("--spool-max-mb", type=int, default=4096, help="the spool's bound (drop-oldest beyond)")
    parser.add_argument("--topic-only", action="store_true", help="no stream: count what reached the topic")
    parser.add_argument("--stream-after", action="store_true",
                        help="the stream starts after the fleet stops and drains the topic alone")
    args = parser.parse_args()

    base = load_settings()
    figures: dict[str, object] = {"panels": args.panels, "interval_s": args.interval, "outage_s": args.outage,
                                  "cpus": os.cpu_count(), "started": datetime.now(UTC).isoformat()}
    with tempfile.TemporaryDirectory(prefix="spool-outage-") as work, \
            scratch_environment(base, f"b_spool_{uuid.uuid4().hex[:8]}") as settings, \
            contextlib.ExitStack() as cleanup:
        settings = settings.model_copy(update={"interval_seconds": args.interval,
                                               "fleet_spool_dir": Path(work) / "spool",
                                               "fleet_spool_max_bytes": args.spool_max_mb << 20})
        env = {**os.environ, "SOLAR_HOME": str(settings.home_dir), "SOLAR_MYSQL_DATABASE": settings.mysql_database,
               "SOLAR_TOPIC": settings.topic, "SOLAR_MYSQL_ROLE": "stream",
               "SOLAR_MYSQL_PORT": str(settings.mysql_port)}
        stream = None
        if not args.topic_only:
            stream = Restarted([sys.executable, "-m", "solar_platform", "stream", "run"], env,
                               Path(work) / "stream.log")
            if not args.stream_after:
                stream.start()
            cleanup.callback(stream.stop)  # also when the bench fails: no stream left on a dropped topic
        stop = threading.Event()
        latest: list[PublishSummary] = []
        cycle_starts: list[float] = []
        peaks: list[PublishSummary] = []  # every cycle's summary
        drain_marks: list[tuple[float, int]] = []  # (when, readings drained so far) while the spool drains
        result: dict[str, object] = {}

        def on_cycle(summary: PublishSummary) -> None:
            now = time.monotonic()
            cycle_starts.append(now)
            if summary.messages_drained and (not drain_marks or drain_marks[-1][1] != summary.messages_drained):
                drain_marks.append((now, summary.messages_drained))
            latest[:] = [PublishSummary(**summary.__dict__)]
            peaks.append(latest[0])

        def fleet() -> None:
            try:
                result["summary"] = run_live(settings, panels=args.panels, seed=11, stop=stop, on_cycle=on_cycle)
            except BaseException as exc:  # noqa: BLE001 - reported below
                result["error"] = exc

        thread = threading.Thread(target=fleet, name="fleet", daemon=True)
        programs = broker_programs(settings)
        try:
            thread.start()
            wait_for(lambda: len(cycle_starts) >= args.warmup, 600, "the warm-up cycles")
            server = supervisor(settings)
            stopped_at = time.monotonic()
            try:
                for program in programs:
                    server.supervisor.stopProcess(program, True)
                figures["brokers_stopped_after_s"] = time.monotonic() - stopped_at
                while time.monotonic() < stopped_at + args.outage:
                    time.sleep(1)
                states = process_states(settings)
                figures["brokers_down_at_end"] = all(states.get(p) != "RUNNING" for p in programs)
            finally:
                restarted_at = time.monotonic()
                for program in programs:
                    start_program(settings, program)
            figures["outage_s_measured"] = restarted_at - stopped_at
            figures["partitions_whole_after_s"] = wait_for(lambda: partitions_whole(settings), 300, "whole ISRs")
            figures["spool_empty_after_s"] = wait_for(
                lambda: latest[-1].spool_records == 0 and latest[-1].messages_drained > 0, 3600,
                "the spool to drain") + figures["partitions_whole_after_s"]
            cycles_done = len(cycle_starts)
            wait_for(lambda: len(cycle_starts) >= cycles_done + args.after, 600, "the last cycles")
            # The spool is largest at the brokers' return: nothing drains before that.
            figures["most_readings_held_in_spool"] = held = max(s.spool_records for s in peaks)
            figures["most_bytes_held_in_spool"] = held_bytes = max(s.spool_bytes for s in peaks)
            figures["spool_bytes_per_reading"] = round(held_bytes / held, 1) if held else None
            if len(drain_marks) >= 2:
                (t0, n0), (t1, n1) = drain_marks[0], drain_marks[-1]
                figures["drain_readings_per_s"] = round((n1 - n0) / (t1 - t0)) if t1 > t0 else None
        finally:
            stop.set()
            thread.join(timeout=300)
        if "error" in result:
            raise SystemExit(f"the fleet failed: {result['error']!r}")
        summary: PublishSummary = result["summary"]  # type: ignore[assignment]
        generated = summary.messages_generated
        per_cycle: Counter[datetime] = Counter()
        if stream is not None:
            if args.stream_after:
                stream_started = time.monotonic()
                figures["fleet_stopped_after_restart_s"] = round(stream_started - restarted_at, 1)
                stream.start()
                # counting every row each poll would slow the drain: the topic's last cycle tells
                newest = last_stamp_on_topic(settings)
                landed = lambda: readings_at(settings, newest) >= args.panels  # noqa: E731
            else:
                landed = lambda: sum(cycles_in_panel_data(settings).values()) >= generated  # noqa: E731
            try:
                wait_for(landed, args.catch_up, "panelData to hold every reading", poll=10)
                figures["stream_caught_up_after_restart_s"] = round(time.monotonic() - restarted_at, 1)
            finally:
                stream.stop()
            if args.stream_after:
                figures["stream_drain_readings_per_s"] = round(
                    generated / (time.monotonic() - stream_started))
            figures["stream_restarts"] = len(stream.exits)
            figures["stream_exit_codes"] = stream.exits
            per_cycle = cycles_in_panel_data(settings)
        read_from = time.monotonic()
        records, distinct, per_stamp = topic_copies(settings)
        figures["topic_read_s"] = round(time.monotonic() - read_from, 1)
        gaps = [b - a for a, b in zip(cycle_starts, cycle_starts[1:], strict=False)]
        figures.update({
            "cycles": summary.cycles, "generated": generated,
            "on_topic": distinct, "copies_on_topic_beyond_one": records - distinct,
            "cycles_on_topic": len(per_stamp),
            "cycles_incomplete_on_topic": sum(1 for n in per_stamp.values() if n != args.panels),
            "lost_before_topic": generated - distinct,
            "spooled": summary.messages_spooled, "drained": summary.messages_drained,
            "dropped_from_spool": summary.messages_dropped, "failed": summary.messages_failed,
            "producers_replaced": summary.producers_replaced,
            "kafka_outages_seen": summary.kafka_outages, "kafka_unavailable_s": round(summary.kafka_unavailable_s, 1),
            "cycles_late": summary.cycles_late, "cycles_skipped": summary.cycles_skipped,
            "longest_gap_between_cycles_s": round(max(gaps), 2),
            "fleet_busy_s_per_cycle": round(summary.busy_seconds / max(summary.cycles, 1), 2),
        })
        if stream is not None:
            figures.update({
                "landed_in_panelData": sum(per_cycle.values()), "cycles_in_panelData": len(per_cycle),
                "cycles_incomplete": sum(1 for n in per_cycle.values() if n != args.panels),
                "lost": generated - sum(per_cycle.values()),
            })
    print(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
