"""How fast the fleet encodes and publishes: prints one JSON line of results.

    python bench/fleet_publish.py --bootstrap 127.0.0.1:19092,127.0.0.1:19094
    python bench/fleet_publish.py --encode-only

Encoding is timed without Kafka (the vectorised encoder, and `json.dumps` per dict for
comparison). Publishing runs `fast_forward` for --panels x --cycles into a throw-away topic
(created here, deleted afterwards) with the publisher's production settings, or with
--compression/--linger-ms/--batch-kb to compare alternatives.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from solar_platform.fleet.encoding import MessageEncoder
from solar_platform.fleet.publisher import PRODUCER_CONFIG, fast_forward
from solar_platform.fleet.simulation import FleetSimulator, cycle_times_ms
from solar_platform.settings import Settings, load_settings

START = datetime(2024, 6, 1, 11, 30, tzinfo=UTC)  # the demo window's rising edge: varied power digits


def bench_encoding(settings: Settings, panels: int, cycles: int) -> dict[str, object]:
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


def bench_publish(
    settings: Settings, panels: int, cycles: int, producer_config: dict[str, object]
) -> dict[str, object]:
    from solar_platform import kafka_clients
    from solar_platform.runtime.kafka_provisioning import drop_topic, ensure_topic

    with kafka_clients.admin(settings) as admin:
        brokers = len(admin.describe_cluster()["brokers"])
    replication = min(2, brokers)
    # As admin: the topic and the fleet user's right to write it, both dropped afterwards.
    ensure_topic(settings.model_copy(update={"topic_replication": replication}))
    try:
        end = START + timedelta(seconds=settings.interval_seconds * cycles)
        summary = fast_forward(settings, start=START, end=end, panels=panels, seed=1, producer_config=producer_config)
    finally:
        drop_topic(settings, settings.topic)
    return {
        "publish_panels": panels,
        "publish_cycles": summary.cycles,
        "publish_messages": summary.messages_sent,
        "publish_delivered": summary.messages_delivered,
        "publish_failed": summary.messages_failed,
        "publish_seconds": round(summary.seconds, 2),
        "publish_msgs_per_s": round(summary.messages_per_second),
        "publish_cycle_s": round(panels / summary.messages_per_second, 2) if summary.messages_per_second else None,
        "brokers": brokers,
        "partitions": settings.topic_partitions,
        "replication": replication,
        "producer_config": {k: v for k, v in producer_config.items() if k != "allow_auto_create_topics"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="Kafka bootstrap HOST:PORT[,HOST:PORT] (default: the settings')")
    parser.add_argument("--panels", type=int, default=200_000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--encode-only", action="store_true", help="skip the Kafka part")
    parser.add_argument("--compression", choices=["gzip", "none"], default=None)
    parser.add_argument("--linger-ms", type=int, default=None)
    parser.add_argument("--batch-kb", type=int, default=None)
    args = parser.parse_args()

    topic = f"fleet-bench-{uuid.uuid4().hex[:10]}"
    settings = load_settings(kafka_bootstrap_override=args.bootstrap, topic=topic, interval_seconds=5.0)
    results: dict[str, object] = {"python": sys.version.split()[0]}
    results |= bench_encoding(settings, args.panels, args.cycles)
    if not args.encode_only:
        config = dict(PRODUCER_CONFIG)
        if args.compression is not None:
            config["compression_type"] = None if args.compression == "none" else args.compression
        if args.linger_ms is not None:
            config["linger_ms"] = args.linger_ms
        if args.batch_kb is not None:
            config["batch_size"] = args.batch_kb * 1024
        results |= bench_publish(settings, args.panels, args.cycles, config)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
