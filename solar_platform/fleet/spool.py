"""The fleet's spool: readings Kafka could not take, on local disk until the brokers acknowledge them.

Append-only segment files, in one directory per topic:

- `<seq>.seg`: frames, appended and never rewritten. A segment is deleted once every frame in it is
  acknowledged (or dropped). A new segment starts when the current one reaches `segment_bytes`.
- `acked`: the sequence number of the oldest frame not yet acknowledged, replaced atomically
  (write + rename) when the acknowledged prefix grows. Frames below it are skipped on restart.
- `lock`: held (`flock`) by the one process using the spool; the kernel drops it if that process dies.

A frame is one chunk of readings of one cycle (same time), with its keys and values byte for byte:

    header  (32 bytes, little-endian): magic b"SPL1" | payload length u32 | CRC-32 u32 |
                                       seq u64 | time ms i64 | count u32
    payload: count x key length u16 | count x value length u32 | keys | values

The CRC covers seq, time, count and the payload. A frame cut short by `kill -9` (or garbage after
the last whole frame) fails the length or CRC check on restart: the tail from there is cut off with
a warning, and every whole frame before it is kept.

Durability: a frame is in the page cache once `append` returns, so it survives the death of the
process (kill -9, OOM). `sync()` fsyncs what was appended since the last call; the fleet calls it
once per cycle, so a power cut or kernel crash loses at most one cycle of spooled readings, for one
fsync per cycle instead of one per chunk. Acknowledgements are not fsynced: losing one only means
re-sending frames Kafka already has, which the stream's upsert on (panel, time) absorbs.

Acknowledgement is per frame, in any order (`ack`); the persisted prefix advances over the frames
acknowledged from the oldest on. A frame partly delivered keeps, in memory, which records went
through (`release`), so a retry within the same process sends only the rest; after a restart the
whole frame is sent again: at-least-once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

FullPolicy = Literal["block", "drop-oldest"]

MAGIC = b"SPL1"
HEADER = struct.Struct("<4sIIQqI")  # magic, payload length, crc, seq, time ms, count
CRC_FIELDS = struct.Struct("<QqI")  # seq, time ms, count: covered by the CRC with the payload
SEGMENT_SUFFIX = ".seg"
ACKED_FILE = "acked"
LOCK_FILE = "lock"
MAX_KEY_BYTES = 0xFFFF


class SpoolError(RuntimeError):
    """The spool cannot be used (held by another process, a record it cannot hold)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """Readings of one chunk, as read back from the spool (`indices`: their positions in the frame)."""

    seq: int
    time_ms: int
    keys: list[bytes]
    values: list[bytes]
    indices: list[int]


@dataclass(slots=True)
class _Entry:
    seq: int
    segment: int  # the segment's first seq (its name)
    offset: int
    length: int  # header + payload
    count: int
    time_ms: int
    in_flight: bool = False
    delivered: set[int] = field(default_factory=set)  # records of a partly delivered frame


def encode_frame(seq: int, time_ms: int, keys: Sequence[bytes], values: Sequence[bytes]) -> bytes:
    """One frame: header and payload (see the module docstring)."""
    count = len(keys)
    if len(values) != count:
        raise ValueError("keys and values differ in length")
    key_lengths = np.fromiter(map(len, keys), dtype=np.int64, count=count)
    if count and int(key_lengths.max()) > MAX_KEY_BYTES:
        raise SpoolError(f"a key longer than {MAX_KEY_BYTES} bytes cannot be spooled")
    value_lengths = np.fromiter(map(len, values), dtype=np.int64, count=count)
    payload = b"".join([key_lengths.astype("<u2").tobytes(), value_lengths.astype("<u4").tobytes(), *keys, *values])
    crc = zlib.crc32(payload, zlib.crc32(CRC_FIELDS.pack(seq, time_ms, count)))
    return HEADER.pack(MAGIC, len(payload), crc, seq, time_ms, count) + payload


def decode_payload(payload: bytes, count: int) -> tuple[list[bytes], list[bytes]]:
    key_lengths = np.frombuffer(payload, dtype="<u2", count=count, offset=0).astype(np.int64)
    value_lengths = np.frombuffer(payload, dtype="<u4", count=count, offset=2 * count).astype(np.int64)
    key_ends = 6 * count + np.cumsum(key_lengths)
    value_ends = int(key_ends[-1]) + np.cumsum(value_lengths) if count else value_lengths
    key_starts = (key_ends - key_lengths).tolist()
    value_starts = (value_ends - value_lengths).tolist()
    keys = [payload[a:b] for a, b in zip(key_starts, key_ends.tolist(), strict=True)]
    values = [payload[a:b] for a, b in zip(value_starts, value_ends.tolist(), strict=True)]
    return keys, values


def scan_segment(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(offset, length, seq, time_ms, count) of each whole frame, stopping at the first torn or bad one."""
    offset = 0
    while offset + HEADER.size <= len(data):
        magic, size, crc, seq, time_ms, count = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + size
        if magic != MAGIC or end > len(data):
            return
        payload = memoryview(data)[offset + HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(CRC_FIELDS.pack(seq, time_ms, count))) != crc:
            return
        yield offset, end - offset, seq, time_ms, count
        offset = end


class Spool:
    """A bounded on-disk queue of frames, oldest first; one process at a time (`SpoolError` otherwise).

    `full_policy` decides what `append` does when the frame does not fit in `max_bytes`:
    `drop-oldest` drops the oldest frames (counted in `dropped_records`) until it fits; `block`
    writes it anyway: the caller asks `has_room` before generating new readings, and readings that
    exist already are never dropped.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        full_policy: FullPolicy = "block",
        segment_bytes: int | None = None,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.full_policy: FullPolicy = full_policy
        # At least ~16 segments in the bound, so acknowledged frames free disk soon after they leave.
        self.segment_bytes = segment_bytes or min(64 << 20, max(64 << 10, max_bytes // 16))
        self.dropped_records = 0
        self.dropped_frames = 0
        self.torn_bytes = 0  # cut off the tail on open (a write cut short by a crash)
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise SpoolError(f"another process is using the fleet spool in {directory}") from exc
        self._entries: dict[int, _Entry] = {}  # seq -> frame, insertion order = seq order
        self._segment_sizes: dict[int, int] = {}  # segment (first seq) -> bytes on disk
        self._dropped_in_flight: dict[int, int] = {}  # seq -> records, dropped while being sent
        self._acked_below = 0
        self._write_fd: int | None = None
        self._write_segment = -1
        self._read_fds: dict[int, int] = {}
        self._unsynced = False
        self._recover()

    # ------------------------------------------------------------------ figures
    @property
    def records(self) -> int:
        """Readings held (not yet acknowledged)."""
        return sum(e.count - len(e.delivered) for e in self._entries.values())

    @property
    def frames(self) -> int:
        return len(self._entries)

    @property
    def bytes_on_disk(self) -> int:
        return sum(self._segment_sizes.values())

    def __len__(self) -> int:
        return len(self._entries)

    def has_room(self, frame_bytes: int) -> bool:
        return self.bytes_on_disk + frame_bytes <= self.max_bytes

    # ------------------------------------------------------------------ writing
    def append(self, time_ms: int, keys: Sequence[bytes], values: Sequence[bytes], *, in_flight: bool = False) -> int:
        """Write one frame; returns its seq. `in_flight`: its records are being sent already (not drained)."""
        seq = self._next_seq
        frame = encode_frame(seq, time_ms, keys, values)
        if self.full_policy == "drop-oldest":
            self._make_room(len(frame))
        if self._write_fd is None or self._segment_sizes.get(self._write_segment, 0) >= self.segment_bytes:
            self._roll(seq)
        offset = self._segment_sizes[self._write_segment]
        os.write(self._write_fd, frame)  # type: ignore[arg-type]
        self._segment_sizes[self._write_segment] = offset + len(frame)
        self._entries[seq] = _Entry(seq, self._write_segment, offset, len(frame), len(keys), time_ms, in_flight)
        self._next_seq = seq + 1
        self._unsynced = True
        return seq

    def sync(self) -> None:
        """fsync what was appended since the last call (the fleet calls it once per cycle)."""
        if self._unsynced and self._write_fd is not None:
            os.fsync(self._write_fd)
        self._unsynced = False

    def _roll(self, seq: int) -> None:
        if self._write_fd is not None:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
        path = self._segment_path(seq)
        self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._write_segment = seq
        self._segment_sizes[seq] = 0
        self._fsync_directory()  # the new name is durable before frames rely on it

    def _make_room(self, needed: int) -> None:
        while self._entries and not self.has_room(needed):
            oldest = next(iter(self._entries.values()))
            if oldest.segment == self._write_segment:
                self._close_writer()  # the next append starts a new segment, so this one can go
            self._drop_segment(oldest.segment)

    def _drop_segment(self, segment: int) -> None:
        dropped = [e for e in self._entries.values() if e.segment == segment]
        records = sum(e.count - len(e.delivered) for e in dropped)
        for entry in dropped:
            del self._entries[entry.seq]
            if entry.in_flight:
                self._dropped_in_flight[entry.seq] = entry.count - len(entry.delivered)
        self.dropped_records += records
        self.dropped_frames += len(dropped)
        log.warning("fleet spool full (%d bytes): dropped the oldest %d readings (%d frames)",
                    self.max_bytes, records, len(dropped))
        self._remove_segment(segment)
        self._advance_acked()

    # ------------------------------------------------------------------ draining
    def next_frame(self) -> Frame | None:
        """The oldest frame not acknowledged and not being sent, marked as being sent; None if none."""
        entry = next((e for e in self._entries.values() if not e.in_flight), None)
        if entry is None:
            return None
        keys, values = self._read(entry)
        indices = list(range(entry.count))
        if entry.delivered:
            indices = [i for i in indices if i not in entry.delivered]
            keys, values = [keys[i] for i in indices], [values[i] for i in indices]
        entry.in_flight = True
        return Frame(entry.seq, entry.time_ms, keys, values, indices)

    def ack(self, seq: int) -> None:
        """Every record of frame `seq` is acknowledged: it leaves the spool."""
        if seq in self._dropped_in_flight:  # dropped while being sent, and delivered after all
            self.dropped_records -= self._dropped_in_flight.pop(seq)
            return
        if self._entries.pop(seq, None) is not None:
            self._advance_acked()

    def release(self, seq: int, delivered: Sequence[int] = ()) -> None:
        """Frame `seq` was not (wholly) delivered: it stays, for a later `next_frame`.

        `delivered`: positions in the frame that were acknowledged; a retry leaves them out.
        """
        if seq in self._dropped_in_flight:
            self._dropped_in_flight.pop(seq)
            return
        entry = self._entries.get(seq)
        if entry is not None:
            entry.in_flight = False
            entry.delivered.update(delivered)

    def frames_for_drain(self) -> int:
        return sum(1 for e in self._entries.values() if not e.in_flight)

    # ------------------------------------------------------------------ files
    def _segment_path(self, segment: int) -> Path:
        return self.directory / f"{segment:020d}{SEGMENT_SUFFIX}"

    def _read(self, entry: _Entry) -> tuple[list[bytes], list[bytes]]:
        fd = self._read_fds.get(entry.segment)
        if fd is None:
            fd = self._read_fds[entry.segment] = os.open(self._segment_path(entry.segment), os.O_RDONLY)
        data = os.pread(fd, entry.length, entry.offset)
        return decode_payload(data[HEADER.size :], entry.count)

    def _advance_acked(self) -> None:
        """Persist the new acknowledged prefix and delete the segments wholly below it."""
        oldest = next(iter(self._entries), self._next_seq)
        if oldest == self._acked_below:
            return
        self._acked_below = oldest
        temporary = self.directory / f"{ACKED_FILE}.tmp"
        temporary.write_text(str(oldest))
        os.replace(temporary, self.directory / ACKED_FILE)
        live_segments = {e.segment for e in self._entries.values()}
        for segment in [s for s in self._segment_sizes if s not in live_segments]:
            if segment == self._write_segment:
                self._close_writer()  # wholly acknowledged too: the next append starts a new segment
            self._remove_segment(segment)

    def _remove_segment(self, segment: int) -> None:
        fd = self._read_fds.pop(segment, None)
        if fd is not None:
            os.close(fd)
        self._segment_sizes.pop(segment, None)
        self._segment_path(segment).unlink(missing_ok=True)

    def _close_writer(self) -> None:
        if self._write_fd is not None:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
        self._write_fd = None
        self._write_segment = -1

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _recover(self) -> None:
        """Rebuild the index from the files: skip what was acknowledged, cut off a torn tail."""
        acked_path = self.directory / ACKED_FILE
        try:
            self._acked_below = int(acked_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            self._acked_below = 0
        segments = sorted(int(p.name.removesuffix(SEGMENT_SUFFIX)) for p in self.directory.glob(f"*{SEGMENT_SUFFIX}")
                          if p.name.removesuffix(SEGMENT_SUFFIX).isdigit())
        next_seq = self._acked_below
        for segment in segments:
            path = self._segment_path(segment)
            data = path.read_bytes()
            good = 0
            for offset, length, seq, time_ms, count in scan_segment(data):
                good = offset + length
                next_seq = max(next_seq, seq + 1)
                if seq >= self._acked_below:
                    self._entries[seq] = _Entry(seq, segment, offset, length, count, time_ms)
            if good < len(data):
                self.torn_bytes += len(data) - good
                log.warning("fleet spool: %s ends with %d bytes that are not a whole frame (a write cut short); "
                            "cut off, the %d bytes of whole frames before them kept", path.name, len(data) - good,
                            good)
                with path.open("r+b") as segment_file:
                    segment_file.truncate(good)
                    os.fsync(segment_file.fileno())
            self._segment_sizes[segment] = good
        self._entries = dict(sorted(self._entries.items()))
        self._next_seq = next_seq
        live_segments = {e.segment for e in self._entries.values()}
        for segment in [s for s in self._segment_sizes if s not in live_segments]:
            self._remove_segment(segment)

    def close(self) -> None:
        """Sync and release the files and the lock."""
        self._close_writer()
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()
        os.close(self._lock_fd)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_spool(directory: Path) -> list[Frame]:
    """Every frame a spool holds, oldest first, read-only and without the lock (tests, inspection)."""
    try:
        acked_below = int((directory / ACKED_FILE).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        acked_below = 0
    frames = []
    for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")):
        data = path.read_bytes()
        for offset, length, seq, time_ms, count in scan_segment(data):
            if seq >= acked_below:
                keys, values = decode_payload(data[offset + HEADER.size : offset + length], count)
                frames.append(Frame(seq, time_ms, keys, values, list(range(count))))
    return sorted(frames, key=lambda f: f.seq)
