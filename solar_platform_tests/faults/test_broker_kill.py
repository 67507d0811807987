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
    Figures,
    Load,
    StreamProcess,
    TopicCounter,
    assert_exactly_once,
    batches_committed,
    exactly_once_figures,
    first_batch_planned_after,
    kill9_supervised,
    wait_for_stream_to_drain,
    wait_restarted,
    wait_until,
    watch_isr,
)
from solar_platform_tests.storage.derived import assert_derived_equal_recompute

pytestmark = [pytest.mark.fault, pytest.mark.integration]


def _broker_programs(settings: Settings) -> list[tuple[str, int]]:
    """(supervisor program, broker id) of every broker."""
    return [(program_name(role, node_id), node_id) for role, node_id, _port in nodes(settings) if role == "broker"]


@pytest.mark.timeout(420)
def test_kill_9_each_broker_under_load(fresh_settings: Settings, tmp_path: Path) -> None:
    settings = fresh_settings
    figures = Figures("kill -9 each Kafka broker in turn")
    counter = TopicCounter(settings).start()
    stream = StreamProcess(settings, tmp_path)
    load: Load | None = None
    kills: list[tuple[str, float]] = []
    try:
        stream.start()
        load = Load(settings).start()
        wait_until(lambda: batches_committed(settings) >= 1, 180, "the stream's first batch")
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
        load.stop()
        counter.finish()
        wait_for_stream_to_drain(settings, stream, counter.total, 240)
        assert stream.running, stream.log_tail()
        figures["stream_restarts"] = stream.starts - 1
    finally:
        if load is not None and load.stopped_at == 0.0:
            load.stop(flush_timeout=10)
        stream.stop()
    details = exactly_once_figures(figures, load, counter, settings)
    for program, killed_at in kills:  # the first batch the stream planned after each kill, and committed
        batch_at = first_batch_planned_after(settings, killed_at)
        figures[f"{program}_stream_batch_after_kill_s"] = None if batch_at is None else batch_at - killed_at
    figures.record(tmp_path)
    assert_exactly_once(details)
    assert figures.values["dead_letters"] == 0
    assert_derived_equal_recompute(settings)
