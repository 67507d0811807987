"""What the stream's batch in flight waits for, in a small file beside its Spark checkpoint.

When MariaDB's disk is full, or MariaDB does not answer, the stream keeps its batch and retries it
(`streaming.sink`). It says so in its pulse row too, but that is exactly when a write to MariaDB
may fail, so it also writes the wait to `stream_wait.json` in its checkpoint directory, refreshed
with every pulse. Dagster's heartbeat sensor reads that directory already (the stream's committed offsets); in
compose it is the volume the Dagster containers mount read-only. A file left behind by a stream
that died is recognised by its age and ignored.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from solar_platform.settings import Settings

WAIT_FILE = "stream_wait.json"
# What a batch waits for. Once the disk was found full, a wait stays MARIADB_DISK_FULL even while the
# server is away (it may abort on a full disk and be restarted by its supervisor).
MARIADB_DISK_FULL = "mariadb_disk_full"
MARIADB_UNREACHABLE = "mariadb_unreachable"


@dataclass(frozen=True)
class StreamWait:
    """A batch that cannot be committed yet, and why."""

    kind: str  # MARIADB_DISK_FULL or MARIADB_UNREACHABLE
    batch_id: int
    since: datetime  # aware UTC: the first failed attempt
    updated_at: datetime  # aware UTC: the stream's last word (every pulse)
    attempts: int
    retry_in_seconds: float
    error: str  # MariaDB's words, the latest: `error 1114: The table 'panelData' is full`
    server: str  # host:port
    data_dir: str | None  # `@@datadir`, when the server said

    @property
    def where(self) -> str:
        return f"MariaDB at {self.server}" + (f", data directory {self.data_dir}" if self.data_dir else "")

    def headline(self) -> str:
        """One line for the pulse row and logs (short: the pulse column holds 255 characters)."""
        what = "disk full" if self.kind == MARIADB_DISK_FULL else "MariaDB unreachable"
        return f"{what}: {self.where} ({self.error})"

    def describe(self, now: datetime) -> str:
        """What an operator reads in Dagster: what is wrong, where, since when, and what to do."""
        waited = max(0.0, (now - self.since).total_seconds())
        what, fix = (("MariaDB's disk is full", "Free space on that disk") if self.kind == MARIADB_DISK_FULL
                     else ("MariaDB does not answer", "Start MariaDB"))
        tries = "once" if self.attempts == 1 else f"{self.attempts} times"
        return (f"{what}: {self.where}. The stream holds batch {self.batch_id} and has retried it "
                f"{tries} in {waited:.0f} s (latest: {self.error}). {fix}: the stream retries "
                f"every {self.retry_in_seconds:.0f} s at most and resumes by itself; nothing is lost (Spark does "
                "not move past an uncommitted batch).")

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.updated_at).total_seconds())


def wait_file(settings: Settings) -> Path:
    return settings.checkpoint_dir / WAIT_FILE


def write_wait(path: Path, wait: StreamWait) -> None:
    """Replace the file atomically (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**asdict(wait), "since": wait.since.isoformat(), "updated_at": wait.updated_at.isoformat()}
    handle, temporary = tempfile.mkstemp(prefix=".stream_wait-", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(record, out)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def clear_wait(path: Path) -> None:
    path.unlink(missing_ok=True)


def read_wait(path: Path) -> StreamWait | None:
    """The wait recorded in `path`, or None when there is none (or it cannot be read)."""
    try:
        record = json.loads(path.read_text())
        return StreamWait(**{**record, "since": datetime.fromisoformat(record["since"]),
                             "updated_at": datetime.fromisoformat(record["updated_at"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def current_wait(settings: Settings, now: datetime | None = None) -> StreamWait | None:
    """The stream's wait, if its file was refreshed within the staleness limit (a stream that died
    while waiting left an old one: that is a dead stream, not a wait)."""
    now = now or datetime.now(UTC)
    wait = read_wait(wait_file(settings))
    if wait is None or wait.age_seconds(now) > settings.stream_stale_after_seconds:
        return None
    return wait
