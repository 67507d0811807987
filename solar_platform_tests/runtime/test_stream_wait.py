"""The stream's wait file: written whole, read back, and ignored once its writer stopped refreshing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from solar_platform.runtime import stream_wait
from solar_platform.runtime.stream_wait import StreamWait
from solar_platform.settings import Settings


def _wait(now: datetime) -> StreamWait:
    return StreamWait(kind=stream_wait.MARIADB_DISK_FULL, batch_id=42, since=now - timedelta(seconds=90),
                      updated_at=now, attempts=5, retry_in_seconds=30.0,
                      error="error 1114: The table 'panelData' is full", server="127.0.0.1:3307",
                      data_dir="/var/lib/mysql/")


def test_a_wait_is_read_back_as_written_and_names_the_disk(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    settings = Settings(stream_checkpoint_dir=tmp_path / "checkpoints")
    path = stream_wait.wait_file(settings)
    assert stream_wait.read_wait(path) is None
    stream_wait.write_wait(path, _wait(now))
    assert stream_wait.read_wait(path) == _wait(now)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    current = stream_wait.current_wait(settings, now + timedelta(seconds=5))
    assert current == _wait(now)
    described = current.describe(now)
    assert "MariaDB's disk is full" in described and "/var/lib/mysql/" in described and "1114" in described
    assert "batch 42" in described and "90 s" in described
    assert current.headline().startswith("disk full: MariaDB at 127.0.0.1:3307, data directory /var/lib/mysql/")
    stream_wait.clear_wait(path)
    assert stream_wait.read_wait(path) is None
    stream_wait.clear_wait(path)  # clearing twice is fine


def test_a_wait_its_stream_stopped_refreshing_is_not_a_wait(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    settings = Settings(stream_checkpoint_dir=tmp_path, stream_stale_min_seconds=60, stream_trigger_seconds=1)
    stream_wait.write_wait(stream_wait.wait_file(settings), _wait(now))
    assert stream_wait.current_wait(settings, now + timedelta(seconds=59)) is not None
    assert stream_wait.current_wait(settings, now + timedelta(seconds=61)) is None  # the stream died waiting


def test_a_damaged_wait_file_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / stream_wait.WAIT_FILE
    path.write_text('{"kind": "mariadb_disk_full", "batch_id": ')
    assert stream_wait.read_wait(path) is None
    path.write_text('{"kind": "mariadb_disk_full"}')
    assert stream_wait.read_wait(path) is None
