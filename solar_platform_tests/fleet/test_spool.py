"""The fleet's on-disk spool, without Kafka: order, acknowledgement, bounds, torn tails, restarts."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from solar_platform.fleet.spool import HEADER, Frame, Spool, SpoolError, encode_frame, read_spool

KB = 1024


def records(cycle: int, count: int = 50) -> tuple[list[bytes], list[bytes]]:
    keys = [f"panel-{i:06d}".encode() for i in range(count)]
    values = [b'{"Panel_id":"panel-%06d","power_panel":%d.125,"current_status":1,"time_data":"t%d"}' % (i, cycle, cycle)
              for i in range(count)]
    return keys, values


def fill(spool: Spool, cycles: range, count: int = 50) -> list[int]:
    return [spool.append(1_700_000_000_000 + 5000 * c, *records(c, count)) for c in cycles]


def drain_all(spool: Spool) -> list[Frame]:
    frames = []
    while (frame := spool.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_frames_come_back_oldest_first_byte_for_byte(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10 << 20) as spool:
        seqs = fill(spool, range(5))
        assert spool.records == 250 and len(spool) == 5
        frames = drain_all(spool)
    assert [f.seq for f in frames] == seqs == sorted(seqs)
    for cycle, frame in enumerate(frames):
        assert (frame.keys, frame.values) == records(cycle)
        assert frame.time_ms == 1_700_000_000_000 + 5000 * cycle
        assert frame.indices == list(range(50))


def test_a_frame_being_sent_is_not_handed_out_twice(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10 << 20) as spool:
        first, second = fill(spool, range(2))
        assert spool.next_frame().seq == first
        assert spool.next_frame().seq == second
        assert spool.next_frame() is None
        spool.release(first)
        assert spool.next_frame().seq == first  # released: the oldest again


def test_acknowledged_frames_leave_and_stay_gone_after_a_restart(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10 << 20, segment_bytes=8 * KB) as spool:
        seqs = fill(spool, range(6))
        drain_all(spool)
        spool.ack(seqs[0])
        spool.ack(seqs[2])  # out of order: only the prefix (seq 0) is persisted as acknowledged
        spool.ack(seqs[1])
        assert spool.records == 150
        for seq in seqs[3:]:
            spool.release(seq)
    with Spool(tmp_path, max_bytes=10 << 20, segment_bytes=8 * KB) as spool:
        assert [f.seq for f in drain_all(spool)] == seqs[3:]
    assert [f.seq for f in read_spool(tmp_path)] == seqs[3:]


def test_an_acknowledged_prefix_deletes_its_segments(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10 << 20, segment_bytes=4 * KB) as spool:
        seqs = fill(spool, range(8))
        segments_before = sorted(tmp_path.glob("*.seg"))
        size_before = spool.bytes_on_disk
        assert len(segments_before) >= 4
        for frame in drain_all(spool)[:6]:
            spool.ack(frame.seq)
        assert spool.bytes_on_disk < size_before
        assert len(list(tmp_path.glob("*.seg"))) < len(segments_before)
        for seq in seqs[6:]:
            spool.ack(seq)
        assert spool.records == 0 and len(spool) == 0
    assert len(list(tmp_path.glob("*.seg"))) <= 1  # at most the (empty) last one


def test_a_partly_delivered_frame_sends_only_the_rest(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10 << 20) as spool:
        (seq,) = fill(spool, range(1), count=10)
        frame = spool.next_frame()
        spool.release(seq, [0, 1, 2, 7])  # delivered
        assert spool.records == 6
        retry = spool.next_frame()
        assert retry.indices == [3, 4, 5, 6, 8, 9]
        assert retry.values == [frame.values[i] for i in retry.indices]
        spool.release(seq, [3, 4])
        assert spool.next_frame().indices == [5, 6, 8, 9]
        spool.ack(seq)
        assert spool.records == 0


def test_drop_oldest_keeps_the_bound_and_counts_what_it_dropped(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    frame_bytes = len(encode_frame(0, 0, *records(0)))
    with Spool(tmp_path, max_bytes=12 * frame_bytes, full_policy="drop-oldest", segment_bytes=3 * frame_bytes) as spool:
        seqs = fill(spool, range(40))
        assert spool.bytes_on_disk <= spool.max_bytes
        kept = [f.seq for f in drain_all(spool)]
        assert kept == seqs[-len(kept):]  # the newest survive, in order
        assert spool.dropped_records == 50 * (40 - len(kept)) > 0
        assert spool.dropped_frames == 40 - len(kept)
        assert sum(f.indices[-1] + 1 for f in read_spool(tmp_path)) == 50 * len(kept)
    assert "fleet spool full" in caplog.text and "dropped the oldest" in caplog.text


def test_a_frame_dropped_while_being_sent_and_then_delivered_is_not_counted_lost(tmp_path: Path) -> None:
    frame_bytes = len(encode_frame(0, 0, *records(0)))
    with Spool(tmp_path, max_bytes=4 * frame_bytes, full_policy="drop-oldest", segment_bytes=frame_bytes) as spool:
        first = fill(spool, range(1))[0]
        assert spool.next_frame().seq == first  # being sent
        fill(spool, range(1, 6))
        assert spool.dropped_records >= 50
        dropped = spool.dropped_records
        spool.ack(first)  # the brokers took it after all
        assert spool.dropped_records == dropped - 50


def test_block_never_drops_and_says_when_it_is_full(tmp_path: Path) -> None:
    frame_bytes = len(encode_frame(0, 0, *records(0)))
    with Spool(tmp_path, max_bytes=5 * frame_bytes, full_policy="block", segment_bytes=frame_bytes) as spool:
        fill(spool, range(5))
        assert not spool.has_room(frame_bytes)
        fill(spool, range(5, 7))  # readings that exist already are written anyway
        assert spool.dropped_records == 0 and spool.records == 350
        for frame in drain_all(spool)[:3]:
            spool.ack(frame.seq)
        assert spool.has_room(frame_bytes)


def test_a_torn_tail_is_cut_off_and_the_whole_frames_kept(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    with Spool(tmp_path, max_bytes=10 << 20) as spool:
        seqs = fill(spool, range(4))
    (segment,) = tmp_path.glob("*.seg")
    whole = segment.stat().st_size
    torn = encode_frame(seqs[-1] + 1, 0, *records(9))[: HEADER.size + 37]  # a write cut short by kill -9
    with segment.open("ab") as out:
        out.write(torn)
    with Spool(tmp_path, max_bytes=10 << 20) as spool:
        assert spool.torn_bytes == len(torn)
        assert segment.stat().st_size == whole
        assert [f.seq for f in drain_all(spool)] == seqs
        new = spool.append(1, *records(5))  # appending goes on where the whole frames end
        assert new == seqs[-1] + 1
    assert [f.seq for f in read_spool(tmp_path)] == [*seqs, new]
    assert "not a whole frame" in caplog.text


def test_a_corrupt_frame_ends_the_segment_there(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10 << 20) as spool:
        seqs = fill(spool, range(3))
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    second = len(encode_frame(0, 0, *records(0)))
    data[second + HEADER.size + 5] ^= 0xFF  # a flipped bit in the second frame: its CRC fails
    segment.write_bytes(bytes(data))
    with Spool(tmp_path, max_bytes=10 << 20) as spool:
        assert [f.seq for f in drain_all(spool)] == seqs[:1]
        assert spool.torn_bytes > 0


def test_one_process_at_a_time(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10 << 20), pytest.raises(SpoolError, match="another process"):
        Spool(tmp_path, max_bytes=10 << 20)
    Spool(tmp_path, max_bytes=10 << 20).close()  # released on close


def test_kill_9_while_appending_loses_no_whole_frame(tmp_path: Path) -> None:
    """A real kill -9 of a process appending as fast as it can; the restart reads every whole frame."""
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = {sys.path!r}
        from solar_platform.fleet.spool import Spool
        spool = Spool(__import__("pathlib").Path({str(tmp_path)!r}), max_bytes=1 << 30, segment_bytes=1 << 20)
        keys = [b"panel-%06d" % i for i in range(2000)]
        n = 0
        while True:
            values = [b"reading %d of cycle %d" % (i, n) for i in range(2000)]
            spool.append(n, keys, values)
            n += 1
            if n == 20:
                print("ready", flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    with Spool(tmp_path, max_bytes=1 << 30, segment_bytes=1 << 20) as spool:
        frames = drain_all(spool)
        assert len(frames) >= 20
        assert [f.seq for f in frames] == list(range(len(frames)))  # no gap: every whole frame is there
        for frame in frames:
            assert frame.values == [b"reading %d of cycle %d" % (i, frame.time_ms) for i in range(2000)]
        spool.append(99, [b"k"], [b"v"])  # and it takes new frames after the cut
