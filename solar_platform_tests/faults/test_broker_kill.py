"""`kill -9` each Kafka broker in turn while the fleet publishes and the stream runs.

The topic has RF 2 and min ISR 1; the producer uses acks=all and idempotence (the fleet's own
settings). supervisord restarts the killed broker; the test waits until it is back in the ISR of
every partition before killing the other one. Nothing acknowledged may be lost or doubled.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from solar_platform.settings import Settings
from solar_platform.stack.kafka_nodes import nodes, program_name
from solar_platform_tests.faults.harness import (
    first_batch_planned_after,
    kill9_supervised,
    stream_under_load,
    wait_restarted,
    watch_isr,
)

pytestmark = [pytest.mark.fault, pytest.mark.integration]


def _broker_programs(settings: Settings) -> list[tuple[str, int]]:
    """(supervisor program, broker id) of every broker."""
    return [(program_name(role, node_id), node_id) for role, node_id, _port in nodes(settings) if role == "broker"]


@pytest.mark.timeout(420)
def test_kill_9_each_broker_under_load(fresh_settings: Settings, tmp_path: Path) -> None:
    settings = fresh_settings
    kills: list[tuple[str, float]] = []
    with stream_under_load(settings, tmp_path, "kill -9 each Kafka broker in turn") as run:
        figures, load = run.figures, run.load
        assert load is not None
        for program, broker in _broker_programs(settings):
            pid, killed_at = kill9_supervised(settings, program)
            killed_mono = time.monotonic()
            # The controller fences it (broker session timeout) and shrinks the ISR; supervisord restarts it.
            restarted = wait_restarted(settings, program, pid, 90)
            figures[f"{program}_restarted_s"] = time.time() - killed_at
            left_at, in_sync_at = watch_isr(settings, broker, 150)
            figures[f"{program}_left_isr_s"] = None if left_at is None else left_at - killed_at
            # Back in the ISR of every partition (None: it was never seen out of it).
            figures[f"{program}_isr_recovery_s"] = None if left_at is None else in_sync_at - killed_at
            figures[f"{program}_producer_stall_s"] = load.longest_ack_gap(killed_mono, time.monotonic())
            kills.append((program, killed_at))
            assert restarted != pid
        time.sleep(3)
        run.end_load_and_drain()
        assert run.stream.running, run.stream.log_tail()
    for program, killed_at in kills:  # the first batch the stream planned after each kill, and committed
        batch_at = first_batch_planned_after(settings, killed_at)
        figures[f"{program}_stream_batch_after_kill_s"] = None if batch_at is None else batch_at - killed_at
    run.verify(tmp_path)
