"""10,000 poison payloads mixed with good readings, published raw while the stream runs.

The poison is generated deterministically (`poison.py`): non-JSON, truncated JSON, wrong types,
NaN/Infinity literals, huge numbers, bad statuses, missing fields, absurd, far-future and ancient
times, hostile panel ids and keys (SQL, templates, newlines, NUL, emoji, 10 kB), oversized fields,
one 700 kB message, binary garbage, arrays and strings instead of objects, tombstones. The expected
fate of every payload comes from the Python contract parser (`contracts.parse_reading`) and the
clock rules, and the stream is held to it payload by payload: each poison payload is one dead letter
at its own (partition, offset) with the same reason, payload and key; each good one one row.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from solar_platform.contracts import Reading, parse_reading
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream.progress import DEAD_LETTER_KEY_BYTES
from solar_platform_tests.faults import poison
from solar_platform_tests.faults.harness import (
    Figures,
    StreamProcess,
    TopicCounter,
    batch_seconds,
    batches_committed,
    panel_data,
    wait_for_stream_to_drain,
    wait_until,
)
from solar_platform_tests.storage.derived import assert_derived_equal_recompute

pytestmark = [pytest.mark.fault, pytest.mark.integration]

SEED = 20240601
POISON = 10_000
GOOD = 10_000
CHUNKS = 5  # published while the stream runs, so the mix spreads over several batches
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _key(reading: Reading) -> tuple[str, int]:
    return reading.panel_id, (reading.time_utc - EPOCH) // timedelta(milliseconds=1)


class _RawProducer:
    """Raw records, as the brokers' admin, acks=all and idempotent; keeps each one's (partition, offset)."""

    def __init__(self, settings: Settings) -> None:
        from solar_platform import kafka_clients

        self.topic = settings.topic
        self.producer = kafka_clients.producer(settings, "admin", acks="all", enable_idempotence=True, linger_ms=20,
                                               compression_type="gzip", max_request_size=1024 * 1024)
        self.placed: list[tuple[int, int]] = []

    def publish(self, records: list[poison.Candidate]) -> None:
        futures = [self.producer.send(self.topic, key=c.key, value=c.value) for c in records]
        self.producer.flush(timeout=120)
        self.placed += [(meta.partition, meta.offset) for meta in (f.get(timeout=60) for f in futures)]

    def close(self) -> None:
        self.producer.close(timeout=10)


def _dead_letters(settings: Settings) -> dict[tuple[int, int], tuple[str, bytes | None, bytes | None]]:
    with db.engine(settings).connect() as conn:
        rows = conn.execute(text(f"SELECT kafka_partition, kafka_offset, reason, payload, kafka_key "
                                 f"FROM `{db.DEAD_LETTERS}` WHERE kafka_topic = :t"), {"t": settings.topic})
        return {(p, o): (reason, payload, key) for p, o, reason, payload, key in rows}


@pytest.mark.timeout(420)
def test_ten_thousand_poison_payloads_are_dead_lettered_and_good_ones_land(
        fresh_settings: Settings, tmp_path: Path) -> None:
    settings = fresh_settings
    figures = Figures("10,000 poison payloads among good readings")
    rejected, accepted = poison.poison_and_good(SEED, POISON, settings, datetime.now(UTC))
    good = [(c, parse_reading(c.value)) for c in poison.good_readings(GOOD)]
    mixed: list[tuple[poison.Candidate, Reading | str]] = [*rejected, *accepted, *good]
    random.Random(SEED).shuffle(mixed)

    counter = TopicCounter(settings).start()
    stream = StreamProcess(settings, tmp_path)
    producer = _RawProducer(settings)
    size = -(-len(mixed) // CHUNKS)
    chunks = [mixed[start:start + size] for start in range(0, len(mixed), size)]
    try:
        stream.start()
        producer.publish([candidate for candidate, _ in chunks[0]])
        wait_until(lambda: batches_committed(settings) >= 1, 180, "the stream's first batch")
        started = time.time()
        for chunk in chunks[1:]:
            time.sleep(1.0)
            producer.publish([candidate for candidate, _ in chunk])
        counter.finish()
        wait_for_stream_to_drain(settings, stream, counter.total, 300)
        figures["processing_s"] = time.time() - started  # from the first batch to the last record committed
    finally:
        producer.close()
        stream.stop()
    placed = producer.placed

    expected_letters = {position: (candidate, outcome) for position, (candidate, outcome)
                        in zip(placed, mixed, strict=True) if isinstance(outcome, str)}
    expected_rows = {_key(outcome): (outcome.power_w, outcome.status) for _, outcome in mixed
                     if isinstance(outcome, Reading)}
    letters = _dead_letters(settings)
    rows, values = panel_data(settings)

    wrong_letters = []
    for position in expected_letters.keys() | letters.keys():
        candidate, reason = expected_letters.get(position, (None, "(lands in panelData)"))
        got = letters.get(position)
        expected_key = None if candidate is None or candidate.key is None else candidate.key[:DEAD_LETTER_KEY_BYTES]
        if got is None or candidate is None or got != (reason, candidate.value, expected_key):
            kind = candidate.kind if candidate else "?"
            sample = (candidate.value or b"")[:120] if candidate else b""
            wrong_letters.append(f"{position} {kind} {sample!r}: expected {reason}, got {got and got[0]}")
    lost = expected_rows.keys() - rows.keys()
    unexpected = rows.keys() - expected_rows.keys()
    wrong_values = [k for k in expected_rows.keys() & rows.keys() if values[k] != expected_rows[k]]

    figures["sent"] = len(mixed)
    figures["acknowledged"] = len(placed)
    figures["topic_records"] = counter.total
    figures["poison"] = len(rejected)
    figures["dead_lettered"] = len(letters)
    figures["good"] = len(expected_rows)
    figures["good_from_poison_generator"] = len(accepted)
    figures["landed"] = len(rows)
    figures["lost"] = len(lost)
    figures["duplicated"] = sum(n - 1 for n in rows.values() if n > 1)
    figures["mismatched_dead_letters"] = len(wrong_letters)
    figures["bytes_published"] = sum(len(c.value or b"") for c, _ in mixed)
    figures["batches"] = batches_committed(settings)
    figures["batch_seconds_mean"], figures["batch_seconds_max"] = batch_seconds(settings)
    figures["by_reason"] = dict(sorted(Counter(reason for reason, _, _ in letters.values()).items()))
    figures["poison_by_kind"] = dict(sorted(Counter(c.kind for c, _ in rejected).items()))
    figures["accepted_by_kind"] = dict(sorted(Counter(c.kind for c, _ in accepted).items()))
    figures.record(tmp_path)

    assert len(placed) == len(mixed) == counter.total
    assert not wrong_letters, f"{len(wrong_letters)} payloads not dead-lettered as the contract says:\n" + \
        "\n".join(sorted(wrong_letters)[:20])
    assert len(letters) == POISON
    assert Counter(reason for reason, _, _ in letters.values()) == Counter(reason for _, reason in rejected)
    assert not lost, f"good readings lost: {sorted(lost)[:5]}"
    assert not unexpected, f"rows nobody sent as valid: {sorted(unexpected)[:5]}"
    assert not wrong_values, f"rows with other values than sent: {wrong_values[:5]}"
    assert figures.values["duplicated"] == 0
    assert_derived_equal_recompute(settings)
