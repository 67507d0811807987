"""What publishing the fleet costs: CPU seconds per 10k msg/s and wall msg/s, by producer config.

    python bench/fleet_publish.py --encode-only
    python bench/fleet_publish.py                                   # the matrix below, 200k panels
    python bench/fleet_publish.py --codecs gzip,zstd --batch-kb 256 --linger-ms 20
    python bench/fleet_publish.py --baseline-tree DIR               # "before" = an older checkout's code

Encoding is timed without Kafka (the vectorised encoder, and `json.dumps` per dict for comparison).

Publishing: each configuration runs in a fresh child process, which runs the publisher's own
`fast_forward` for --panels x --cycles into a throw-away topic (created before, dropped after, RF 2).
The child measures its own CPU (`time.process_time()`: every thread of the process, kafka-python's
I/O thread included) and wall time from the end of the first 10k-message chunk to the last
acknowledgement, so start-up (fleet state, encoder tables, connecting) is left out. The parent reads
the brokers' CPU (utime + stime of their PIDs in /proc, read-only) around each child.

"CPU s per 10k msg/s" = CPU seconds per 10,000 messages, i.e. the cores it takes to carry
10k msg/s: at the product's 40k msg/s, 4x that figure.

The baseline ("today") is the configuration and accounting the publisher had before this benchmark
changed them: gzip, linger 20 ms, 256 KiB batches, a callback and an errback per record, and
kafka-python's pure-Python CRC-32C (no `crc32c` extension). `--baseline-tree DIR` runs it with
the code of an older checkout (`git archive <commit> solar_platform | tar -x -C DIR`); without it the
baseline runs the current code with the old settings. The baseline runs first and last, so drift in
the machine's load shows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2024, 6, 1, 11, 30, tzinfo=UTC)  # the demo window's rising edge: varied power digits
BENCH_FILE = Path(__file__).resolve()
PROJECT_DIR = BENCH_FILE.parents[1]

# The publisher's settings before this benchmark chose new ones (and without the crc32c extension).
BASELINE_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "compression_type": "gzip",
    "linger_ms": 20,
    "batch_size": 256 * 1024,
    "allow_auto_create_topics": False,
}


# ------------------------------------------------------------------------------------ encoding
def bench_encoding(panels: int, cycles: int) -> dict[str, object]:
    from solar_platform.fleet.encoding import MessageEncoder
    from solar_platform.fleet.simulation import FleetSimulator, cycle_times_ms
    from solar_platform.settings import load_settings

    settings = load_settings(interval_seconds=5.0)
    simulator = FleetSimulator(settings, fleet_start=START, panels=panels, seed=1)
    started = time.perf_counter()
    encoder = MessageEncoder(simulator.panel_ids)
    setup_s = time.perf_counter() - started
    end = START + timedelta(seconds=settings.interval_seconds * cycles)
    timings = []
    for time_ms in cycle_times_ms(START, end, settings.interval_seconds).tolist():
        cycle = simulator.cycle(time_ms)
        started = time.perf_counter()
        encoder.encode(cycle.power_w, cycle.status, cycle.time_ms)
        timings.append(time.perf_counter() - started)

    # The obvious way, for scale: a dict and json.dumps per message (timestamp formatted once).
    stamp = cycle.time_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    rows = list(zip(simulator.panel_ids, cycle.power_w.tolist(), cycle.status.tolist(), strict=True))
    started = time.perf_counter()
    for panel_id, power, status in rows:
        json.dumps(
            {"Panel_id": panel_id, "power_panel": power, "current_status": status, "time_data": stamp},
            separators=(",", ":"),
        ).encode()
    dumps_s = time.perf_counter() - started
    best = min(timings)
    return {
        "encode_panels": panels,
        "encode_cycles": len(timings),
        "encoder_setup_s": round(setup_s, 4),
        "encode_cycle_best_s": round(best, 4),
        "encode_cycle_mean_s": round(sum(timings) / len(timings), 4),
        "encode_msgs_per_s": round(panels / best),
        "json_dumps_msgs_per_s": round(panels / dumps_s),
    }


# ------------------------------------------------------------------------- one run, in a child
def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One configuration in this (fresh) process; the topic exists already."""
    if spec["pure_python_crc"]:
        sys.modules["crc32c"] = None  # type: ignore[assignment]  # kafka-python falls back to its own CRC
    from kafka.record import util as record_util

    from solar_platform.fleet.publisher import fast_forward
    from solar_platform.settings import load_settings

    settings = load_settings(topic=spec["topic"], interval_seconds=5.0, kafka_bootstrap_override=spec["bootstrap"])
    config = dict(spec["config"])
    chunk_marks: list[tuple[int, float, float]] = []

    def mark(sent: int) -> None:
        if not chunk_marks:  # the first chunk is sent: start the clocks here
            chunk_marks.append((sent, time.process_time(), time.perf_counter()))

    if spec["callbacks"]:
        _attach_callbacks_per_record()
    end = START + timedelta(seconds=5.0 * spec["cycles"])
    summary = fast_forward(settings, start=START, end=end, panels=spec["panels"], seed=1,
                           producer_config=config, on_progress=mark)
    cpu_end, wall_end = time.process_time(), time.perf_counter()
    first_sent, cpu_start, wall_start = chunk_marks[0]
    measured = summary.messages_sent - first_sent
    cpu, wall = cpu_end - cpu_start, wall_end - wall_start
    return {
        "messages": summary.messages_sent,
        "delivered": summary.messages_delivered,
        "failed": summary.messages_failed,
        "measured_messages": measured,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "cpu_s_per_10k": round(cpu / measured * 10_000, 4),
        "msgs_per_s": round(measured / wall),
        "cpu_share": round(cpu / wall, 2),  # cores busy on average
        "crc32c": "python" if record_util.crc32c_c is None else "extension",
    }


def _attach_callbacks_per_record() -> None:
    """The old accounting, for the baseline on the current code: a callback + errback per record."""
    from kafka import KafkaProducer

    lock = __import__("threading").Lock()
    counts = {"ok": 0, "failed": 0}

    def delivered(_metadata: object) -> None:
        with lock:
            counts["ok"] += 1

    def failed(_error: BaseException) -> None:
        with lock:
            counts["failed"] += 1

    original_send = KafkaProducer.send

    def send(self: KafkaProducer, *args: Any, **kwargs: Any) -> Any:
        return original_send(self, *args, **kwargs).add_callback(delivered).add_errback(failed)

    KafkaProducer.send = send  # type: ignore[method-assign]


# ------------------------------------------------------------------------------- the parent
def broker_pids() -> dict[str, int]:
    from solar_platform.settings import load_settings
    from solar_platform.stack.supervisor import supervisor

    server = supervisor(load_settings())
    return {info["name"]: int(info["pid"]) for info in server.supervisor.getAllProcessInfo()
            if info["name"].startswith("kafka-broker") and info["statename"] == "RUNNING"}


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds, from /proc (read-only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run_one(label: str, config: dict[str, Any], *, panels: int, cycles: int, bootstrap: str | None,
            tree: Path | None, pure_python_crc: bool, callbacks: bool) -> dict[str, Any]:
    from solar_platform.runtime.kafka_provisioning import drop_topic, ensure_topic
    from solar_platform.settings import load_settings

    topic = f"fleet-bench-{uuid.uuid4().hex[:10]}"
    settings = load_settings(topic=topic, kafka_bootstrap_override=bootstrap)
    ensure_topic(settings)  # as admin: the topic (RF 2) and the fleet user's right to write it
    spec = {"topic": topic, "bootstrap": bootstrap, "config": config, "panels": panels, "cycles": cycles,
            "pure_python_crc": pure_python_crc, "callbacks": callbacks}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (tree or PROJECT_DIR, PROJECT_DIR) if p)
    pids = broker_pids()
    try:
        load_before = load_average()
        brokers_before = {name: process_cpu_s(pid) for name, pid in pids.items()}
        done = subprocess.run([sys.executable, str(BENCH_FILE), "--child", json.dumps(spec)], env=env,
                              capture_output=True, text=True, check=False)
        try:
            brokers_cpu: float | None = sum(process_cpu_s(pid) - brokers_before[name] for name, pid in pids.items())
        except FileNotFoundError:  # a broker restarted meanwhile (someone else's test): no figure
            brokers_cpu = None
    finally:
        drop_topic(settings, topic)
    if done.returncode != 0:
        raise RuntimeError(f"{label}: child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    per_10k = None if brokers_cpu is None else round(brokers_cpu / result["messages"] * 10_000, 4)
    result["brokers_cpu_s_per_10k"] = per_10k
    result["brokers_restarted"] = broker_pids() != pids
    result["load_average_before"] = load_before
    shown = {k: v for k, v in config.items() if k in ("compression_type", "linger_ms", "batch_size")}
    return {"label": label, **shown, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="Kafka bootstrap HOST:PORT[,HOST:PORT] (default: the settings')")
    parser.add_argument("--panels", type=int, default=200_000)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--encode-only", action="store_true", help="skip the Kafka part")
    parser.add_argument("--codecs", default="none,gzip,snappy,lz4,zstd")
    parser.add_argument("--batch-kb", default="64,256,1024")
    parser.add_argument("--linger-ms", default="20")
    parser.add_argument("--baseline-tree", type=Path, help="a directory holding an older solar_platform package")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--configs", help="instead of the matrix: codec:batch_kb:linger_ms,... e.g. zstd:1024:20")
    parser.add_argument("--out", type=Path, help="also append every result as a JSON line to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    print(json.dumps({"python": sys.version.split()[0], **bench_encoding(args.panels, 3)}), flush=True)
    if args.encode_only:
        return

    from solar_platform.fleet.publisher import PRODUCER_CONFIG

    common = {"panels": args.panels, "cycles": args.cycles, "bootstrap": args.bootstrap}
    runs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    baseline = ("baseline (today)", BASELINE_CONFIG,
                {"tree": args.baseline_tree, "pure_python_crc": True, "callbacks": args.baseline_tree is None})
    if not args.no_baseline:
        runs.append(baseline)
    if args.configs:
        chosen = [tuple(item.split(":")) for item in args.configs.split(",")]
    else:
        chosen = [(codec, batch_kb, linger) for codec in args.codecs.split(",")
                  for batch_kb in args.batch_kb.split(",") for linger in args.linger_ms.split(",")]
    for codec, batch_kb, linger in chosen:
        config = PRODUCER_CONFIG | {"compression_type": None if codec == "none" else codec,
                                    "linger_ms": int(linger), "batch_size": int(batch_kb) * 1024}
        runs.append((f"{codec} {batch_kb}K {linger}ms", config,
                     {"tree": None, "pure_python_crc": False, "callbacks": False}))
    if not args.no_baseline:
        runs.append(baseline)
    for label, config, how in runs:
        result = run_one(label, config, **common, **how)
        line = json.dumps(result)
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as out:
                out.write(line + "\n")


if __name__ == "__main__":
    main()
