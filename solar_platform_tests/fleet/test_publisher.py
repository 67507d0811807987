"""The publisher without a broker: a fake `KafkaProducer` records sends and plays delivery outcomes."""

from __future__ import annotations

import gc
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from kafka.errors import KafkaTimeoutError, NotEnoughReplicasError, TopicAuthorizationFailedError
from kafka.partitioner.default import DefaultPartitioner
from typer.testing import CliRunner

from solar_platform import kafka_clients
from solar_platform.contracts import parse_reading
from solar_platform.fleet import publisher
from solar_platform.fleet.commands import app, parse_moment
from solar_platform.fleet.live import run_live
from solar_platform.fleet.publisher import (
    FleetError,
    PublishSummary,
    expected_messages,
    fast_forward,
    key_partitions,
)
from solar_platform.fleet.simulation import from_epoch_ms, simulate_readings, to_epoch_ms
from solar_platform.runtime.signals import stop_on_signals
from solar_platform_tests.fleet.support import fleet_settings

START = datetime(2024, 6, 1, 11, 45, tzinfo=UTC)
END = START + timedelta(minutes=1)


class FakeFuture:
    """Completes at once (like a very fast broker), or never when `outcome` is None."""

    def __init__(self, outcome: object | BaseException | None) -> None:
        self.is_done = outcome is not None
        self.exception = outcome if isinstance(outcome, BaseException) else None
        self.value = None if self.exception else outcome

    def failed(self) -> bool:
        return self.is_done and self.exception is not None


class FakeProducer:
    instances: list[FakeProducer] = []
    partitions = {0, 1, 2, 3}
    outcome: Callable[[bytes], object | BaseException | None] = staticmethod(lambda key: "ok")

    def __init__(self, **config: object) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        self.timestamps: list[int | None] = []
        self.flushes = 0
        self.closed = False
        FakeProducer.instances.append(self)

    def partitions_for(self, topic: str) -> set[int]:
        return self.partitions

    def send(self, topic: str, value: bytes, key: bytes, partition: int, timestamp_ms: int | None = None) -> FakeFuture:
        self.sent.append((topic, key, value, partition))
        self.timestamps.append(timestamp_ms)
        return FakeFuture(type(self).outcome(key))

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class FakeAdmin:
    topics = ["panelInfo", "readings", "cli-topic"]

    def __init__(self, **config: object) -> None:
        pass

    def list_topics(self) -> list[str]:
        return self.topics

    def close(self) -> None:
        pass


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> type[FakeProducer]:
    FakeProducer.instances = []
    monkeypatch.setenv("SOLAR_FLEET_SPOOL_DIR", str(tmp_path / "spool"))  # live mode's spool: the test's own
    FakeProducer.outcome = staticmethod(lambda key: "ok")
    monkeypatch.setattr(kafka_clients, "KafkaProducer", FakeProducer)
    monkeypatch.setattr(kafka_clients, "KafkaAdminClient", FakeAdmin)
    monkeypatch.setenv("SOLAR_KAFKA_FLEET_PASSWORD", "fleet-secret")  # no stack secrets needed
    # No broker either: the clients' login check finds nothing listening and leaves it to the fakes.
    monkeypatch.setenv("SOLAR_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    return FakeProducer


def only_producer() -> FakeProducer:
    [instance] = FakeProducer.instances
    return instance


def test_key_partitions_match_kafkas_default_partitioner() -> None:
    class Cluster:
        def topics(self) -> set[str]:
            return {"t"}

        def partitions_for_topic(self, topic: str) -> set[int]:
            return {0, 1, 2, 3, 4}

        def available_partitions_for_topic(self, topic: str) -> set[int]:
            return {0, 1, 2, 3, 4}

    keys = [f"panel-{i:06d}".encode() for i in range(500)]
    default = DefaultPartitioner()
    expected = [default.partition("t", None, key, None, None, Cluster()) for key in keys]
    assert key_partitions(keys, {0, 1, 2, 3, 4}) == expected


def test_fast_forward_publishes_exactly_the_helpers_readings(producer: type[FakeProducer]) -> None:
    settings = fleet_settings(topic="readings", offline_probability_pct=30.0)
    summary = fast_forward(settings, start=START, end=END, panels=7, seed=5)
    expected = simulate_readings(settings, start=START, end=END, panels=7, seed=5)

    sent = only_producer().sent
    assert len(sent) == expected.count == expected_messages(settings, START, END, panels=7) == 84
    assert {topic for topic, *_ in sent} == {"readings"}
    for index, (_topic, key, value, partition) in enumerate(sent):
        row, column = divmod(index, 7)  # time-major: all panels of t0, then t1, ...
        reading = parse_reading(value)
        assert key == expected.panel_ids[column].encode()
        assert reading.panel_id == expected.panel_ids[column]
        assert reading.time_utc == from_epoch_ms(int(expected.times_ms[row]))
        assert reading.power_w == expected.power_w[row, column]
        assert reading.status == expected.status[row, column]
        assert partition == key_partitions([key], producer.partitions)[0]

    assert summary.mode == "fast-forward"
    assert (summary.cycles, summary.messages_sent, summary.messages_delivered) == (12, 84, 84)
    assert summary.messages_failed == summary.messages_unconfirmed == 0
    assert summary.all_delivered and not summary.stopped_early
    assert summary.seed == 5 and summary.panels == 7 and summary.topic == "readings"
    assert only_producer().closed


def test_producer_is_durable_idempotent_and_batched(producer: type[FakeProducer]) -> None:
    settings = fleet_settings(kafka_bootstrap_override="127.0.0.1:1,127.0.0.1:2")
    fast_forward(settings, start=START, end=END, panels=2, seed=1)
    config = only_producer().config
    assert config["acks"] == "all"
    assert config["enable_idempotence"] is True
    assert config["bootstrap_servers"] == "127.0.0.1:1,127.0.0.1:2"
    assert config["linger_ms"] > 0 and config["batch_size"] >= 64 * 1024
    assert config["allow_auto_create_topics"] is False


def test_producer_authenticates_as_the_fleet_user(producer: type[FakeProducer]) -> None:
    settings = fleet_settings()
    fast_forward(settings, start=START, end=END, panels=2, seed=1)
    config = only_producer().config
    assert config["security_protocol"] == "SASL_PLAINTEXT" and config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == (settings.kafka_fleet_user, "fleet-secret")
    assert config["client_id"] == "solar-fleet"


def test_failed_sends_are_counted_and_reported(producer: type[FakeProducer]) -> None:
    producer.outcome = staticmethod(
        lambda key: NotEnoughReplicasError("in-sync replicas") if key == b"panel-000001" else "ok"
    )
    summary = fast_forward(fleet_settings(), start=START, end=END, panels=3, seed=1)
    assert summary.messages_sent == 36
    assert summary.messages_failed == 12
    assert summary.messages_delivered == 24
    assert not summary.all_delivered
    assert summary.first_errors and "NotEnoughReplicasError" in summary.first_errors[0]
    assert len(summary.first_errors) <= publisher.MAX_KEPT_ERRORS


def test_records_never_confirmed_are_reported_as_unconfirmed(producer: type[FakeProducer]) -> None:
    producer.outcome = staticmethod(lambda key: None if key == b"panel-000000" else "ok")
    summary = fast_forward(fleet_settings(), start=START, end=END, panels=2, seed=1)
    assert summary.messages_unconfirmed == 12
    assert summary.messages_failed == 0
    assert not summary.all_delivered


def test_missing_topic_is_a_readable_error_without_waiting_for_metadata(producer: type[FakeProducer]) -> None:
    with pytest.raises(FleetError, match="topic 'missing' not found"):
        fast_forward(fleet_settings(topic="missing"), start=START, end=END, panels=2, seed=1)
    assert not FakeProducer.instances


def test_unreachable_brokers_are_a_readable_error(
    producer: type[FakeProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(**config: object) -> None:
        raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")

    monkeypatch.setattr(kafka_clients, "KafkaAdminClient", unreachable)
    with pytest.raises(FleetError, match="cannot reach Kafka at 127.0.0.1:1"):
        run_live(fleet_settings(kafka_bootstrap_override="127.0.0.1:1"), panels=2, seed=1, cycles=1)


def test_bad_range_is_a_readable_error(producer: type[FakeProducer]) -> None:
    with pytest.raises(FleetError, match="empty time range"):
        fast_forward(fleet_settings(), start=END, end=START, panels=2, seed=1)


def test_stop_event_ends_fast_forward_between_chunks(
    producer: type[FakeProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher, "SEND_CHUNK", 4)
    stop = threading.Event()

    def stop_after_two_chunks(sent: int) -> None:
        if sent >= 8:
            stop.set()

    summary = fast_forward(
        fleet_settings(), start=START, end=END, panels=10, seed=1, stop=stop, on_progress=stop_after_two_chunks
    )
    assert summary.messages_sent == 8 and summary.messages_delivered == 8
    assert summary.stopped_early
    assert only_producer().closed


def test_progress_reports_reach_the_total(producer: type[FakeProducer]) -> None:
    reports: list[int] = []
    fast_forward(fleet_settings(), start=START, end=END, panels=3, seed=1, on_progress=reports.append)
    assert reports == sorted(reports) and reports[-1] == 36


def test_live_mode_publishes_cycles_stamped_now(producer: type[FakeProducer]) -> None:
    settings = fleet_settings(interval_seconds=0.05)
    before = to_epoch_ms(datetime.now(UTC))
    seen: list[int] = []
    summary = run_live(settings, panels=4, seed=9, cycles=3, on_cycle=lambda s: seen.append(s.cycles))
    after = to_epoch_ms(datetime.now(UTC))

    assert seen == [1, 2, 3]
    assert summary.mode == "live" and summary.cycles == 3 and summary.messages_delivered == 12
    readings = [parse_reading(value) for _t, _k, value, _p in only_producer().sent]
    stamps = sorted({to_epoch_ms(r.time_utc) for r in readings})
    assert len(stamps) == 3 and before <= stamps[0] and stamps[-1] <= after
    assert 40 <= stamps[1] - stamps[0] <= 1000  # paced by the interval
    # demo mode: the window opens at the first cycle, where the curve is Pmax / cosh(0.5)**30
    first = [r for r in readings if to_epoch_ms(r.time_utc) == stamps[0] and r.status == 1]
    assert all(0.02 * 320 < r.power_w < 0.03 * 480 for r in first)
    # each record's Kafka timestamp is its reading's time (live and drained records alike)
    assert only_producer().timestamps == [to_epoch_ms(r.time_utc) for r in readings]
    assert summary.messages_generated == 12 and summary.messages_spooled == summary.spool_records == 0


def test_live_mode_stops_when_asked(producer: type[FakeProducer]) -> None:
    stop = threading.Event()
    summary = run_live(
        fleet_settings(interval_seconds=60.0), panels=2, seed=1, stop=stop, on_cycle=lambda s: stop.set()
    )
    assert summary.cycles == 1 and summary.stopped_early
    assert only_producer().closed


def test_live_and_fast_forward_share_the_fleet_for_a_seed(producer: type[FakeProducer]) -> None:
    run_live(fleet_settings(interval_seconds=0.01), panels=5, seed=42, cycles=1)
    live_statuses = [parse_reading(v).status for _t, _k, v, _p in FakeProducer.instances[0].sent]
    readings = simulate_readings(fleet_settings(), start=START, end=START + timedelta(seconds=5), panels=5, seed=42)
    assert live_statuses == readings.status[0].tolist()


def test_summary_arithmetic() -> None:
    summary = PublishSummary(
        mode="live", topic="t", panels=2, seed=1, cycles=2, messages_sent=10, messages_delivered=7,
        messages_failed=2, messages_unconfirmed=1, messages_dropped=3, seconds=2.0,
    )  # fmt: skip
    assert summary.messages_lost == 6
    assert summary.messages_per_second == 5.0
    assert not summary.all_delivered
    assert summary.as_dict()["messages_lost"] == 6
    assert PublishSummary(mode="live", topic="t", panels=2, seed=1, messages_spooled=5, spool_records=5).all_delivered


# ---------------------------------------------------------------- command line
def test_cli_fast_forward(producer: type[FakeProducer]) -> None:
    result = CliRunner().invoke(
        app,
        ["run", "--panels", "3", "--seed", "4", "--interval", "10", "--from", "2024-06-01T11:45:00",
         "--to", "2024-06-01T11:46:00Z", "--topic", "cli-topic", "--bootstrap", "127.0.0.1:9"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = only_producer().sent
    assert len(sent) == 18 and {t for t, *_ in sent} == {"cli-topic"}
    assert only_producer().config["bootstrap_servers"] == "127.0.0.1:9"
    assert parse_reading(sent[0][2]).time_utc == START
    assert "18 messages" in result.output and "seed 4" in result.output


def test_cli_live_with_cycles(producer: type[FakeProducer]) -> None:
    result = CliRunner().invoke(app, ["run", "--panels", "2", "--interval", "0.01", "--cycles", "2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert len(only_producer().sent) == 4


def test_cli_exit_code_1_when_messages_fail(producer: type[FakeProducer]) -> None:
    producer.outcome = staticmethod(lambda key: TopicAuthorizationFailedError("boom"))  # sending again cannot help
    result = CliRunner().invoke(app, ["run", "--panels", "1", "--cycles", "1", "--seed", "1"])
    assert result.exit_code == 1
    assert "1 failed" in result.output


def test_cli_live_keeps_what_kafka_refused_for_now_in_the_spool(producer: type[FakeProducer]) -> None:
    producer.outcome = staticmethod(lambda key: NotEnoughReplicasError("boom"))  # may pass: spooled, not lost
    result = CliRunner().invoke(app, ["run", "--panels", "2", "--cycles", "1", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "2 readings spooled, 0 drained, 0 dropped; 2 held" in result.output


@pytest.mark.parametrize(
    "arguments",
    [
        ["--from", "2024-06-01T00:00:00"],
        ["--from", "2024-06-01", "--to", "2024-06-02", "--cycles", "3"],
        ["--from", "yesterday", "--to", "2024-06-02"],
    ],
)
def test_cli_rejects_bad_option_combinations(producer: type[FakeProducer], arguments: list[str]) -> None:
    result = CliRunner().invoke(app, ["run", *arguments])
    assert result.exit_code == 2
    assert not FakeProducer.instances


def test_cli_reports_fleet_errors_in_one_line(producer: type[FakeProducer]) -> None:
    result = CliRunner().invoke(app, ["run", "--panels", "1", "--cycles", "1", "--topic", "missing"])
    assert result.exit_code == 2
    assert "error: topic 'missing' not found" in result.output


def test_parse_moment_reads_naive_as_utc() -> None:
    assert parse_moment("2024-06-01T12:00:00") == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert parse_moment("2024-06-01T14:00:00+02:00") == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert parse_moment("2024-06-01T12:00:00Z") == datetime(2024, 6, 1, 12, tzinfo=UTC)


def test_sigterm_sets_the_stop_event_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = threading.Event()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2.0)
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_during_live_mode_flushes_and_ends_cleanly(producer: type[FakeProducer]) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.2, os.kill, args=(os.getpid(), signal.SIGTERM))
    with stop_on_signals(stop):
        timer.start()
        summary = run_live(fleet_settings(interval_seconds=0.05), panels=3, seed=1, stop=stop)
    assert summary.stopped_early and summary.cycles >= 2
    assert summary.all_delivered
    assert only_producer().closed
    assert np.all(np.array([p for *_, p in only_producer().sent]) >= 0)


def test_publishing_collects_garbage_less_often_and_restores_the_thresholds(producer: type[FakeProducer]) -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    fast_forward(fleet_settings(), start=START, end=END, panels=2, seed=1,
                 on_progress=lambda _sent: seen.append(gc.get_threshold()))
    assert seen and set(seen) == {publisher.PUBLISHING_GC_THRESHOLDS}
    assert gc.get_threshold() == before
