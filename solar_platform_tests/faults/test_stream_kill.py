"""`kill -9` the streaming job in the middle of a batch, under load; start it again.

"Mid-batch" is observed, not hoped for: the kill happens while the running job's pulse says a
batch is in flight (Spark has logged the batch's offsets and not its commit). The restarted job
replays that batch from the checkpoint: if its one MariaDB transaction committed before the kill,
its progress row is there and the replay is skipped; if not, it runs whole. Nothing is written twice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream.progress import READINGS_QUERY
from solar_platform_tests.faults.harness import (
    batch_in_flight,
    first_batch_planned_after,
    stream_under_load,
    wait_until,
)

pytestmark = [pytest.mark.fault, pytest.mark.integration]

# Each restart costs a Spark start (~30 s on the 2-core machine); SOLAR_FAULT_STREAM_KILLS=3 for more.
KILLS = int(os.environ.get("SOLAR_FAULT_STREAM_KILLS", "1"))


def _uncommitted_batches(settings: Settings) -> list[int]:
    """Batches whose offsets Spark logged but whose commit it did not: what a restart replays."""
    root = settings.checkpoint_dir / READINGS_QUERY

    def ids(folder: str) -> set[int]:
        path = root / folder
        return {int(p.name) for p in path.iterdir() if p.name.isdigit()} if path.exists() else set()

    return sorted(ids("offsets") - ids("commits"))


def _progress_row_exists(settings: Settings, batch_id: int) -> bool:
    with db.engine(settings).connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM `{db.STREAM_PROGRESS}` WHERE batch_id = :b"),
                            {"b": batch_id}).scalar() > 0


@pytest.mark.timeout(360)
def test_kill_9_the_stream_mid_batch_then_restart(fresh_settings: Settings, tmp_path: Path) -> None:
    settings = fresh_settings
    replayed: list[int] = []
    with stream_under_load(settings, tmp_path, "kill -9 the stream mid-batch, restart") as run:
        figures, stream = run.figures, run.stream
        kill = attempts = 0
        while kill < KILLS:
            attempts += 1
            assert attempts <= 2 * KILLS, "no kill landed inside a batch"
            # A batch in flight that reads something: its pulse row, after the first few batches.
            wait_until(lambda: (batch_in_flight(settings) or 0) >= 2, 120, "a batch in flight", poll=0.02)
            killed_at = stream.kill9()
            in_flight = _uncommitted_batches(settings)
            time.sleep(1)  # a dead stream for a moment, as a supervisor's restart delay would give
            restarted_at = stream.start()
            if not in_flight:  # the batch finished in the few ms between the probe and the kill
                continue
            kill += 1
            replayed += in_flight
            figures[f"kill{kill}_batch_in_flight"] = in_flight[-1]
            # The pulse is seen until the batch's transaction ends: it may or may not have committed.
            figures[f"kill{kill}_db_commit_done"] = _progress_row_exists(settings, in_flight[-1])
            batch_at = wait_until(lambda at=restarted_at: first_batch_planned_after(settings, at), 180,
                                  "a batch of the restarted stream")
            figures[f"kill{kill}_restart_to_batch_s"] = batch_at - restarted_at
            figures[f"kill{kill}_recovery_s"] = batch_at - killed_at
        figures["kills"] = attempts
        run.end_load_and_drain()
    run.verify(tmp_path)
    # Every replayed batch has exactly one progress row: it ran again under its own id.
    for batch_id in replayed:
        assert _progress_row_exists(settings, batch_id), f"batch {batch_id} was not replayed"
