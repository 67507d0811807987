"""`kill -9` MariaDB (the stack's supervised `mariadb`) once, under load, while the stream writes.

MariaDB is shared by everything on the stack, so this is one kill, and the test waits until
supervisord has it answering again. The stream loses its connections and its stage lock, fails its
query and exits; the test starts it again, as supervisord's autorestart does for the `stream`
program. Committed batches survive the crash (InnoDB's redo log); the one in flight is replayed
from Spark's checkpoint. Every acknowledged reading must land once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from solar_platform.settings import Settings
from solar_platform.stack.mariadb import mysql_ready
from solar_platform_tests.faults.harness import (
    first_batch_planned_after,
    kill9_supervised,
    stream_under_load,
    wait_restarted,
    wait_until,
)

pytestmark = [pytest.mark.fault, pytest.mark.integration]


@pytest.mark.timeout(360)
def test_kill_9_mariadb_under_load(fresh_settings: Settings, tmp_path: Path) -> None:
    settings = fresh_settings
    with stream_under_load(settings, tmp_path, "kill -9 MariaDB") as run:
        figures, stream = run.figures, run.stream
        pid, killed_at = kill9_supervised(settings, "mariadb")
        wait_restarted(settings, "mariadb", pid, 120)
        wait_until(lambda: mysql_ready(settings), 180, "MariaDB to answer again", poll=0.2)
        figures["mariadb_back_s"] = time.time() - killed_at

        # The stream either rides it out or exits; a supervisor (here, the test) starts it again.
        def recovered() -> float | None:
            if not stream.running:
                figures["stream_exit_code"] = stream.process.returncode  # type: ignore[union-attr]
                stream.start()
            return first_batch_planned_after(settings, killed_at)

        batch_at = wait_until(recovered, 240, "a stream batch after MariaDB came back")
        figures["stream_recovery_s"] = batch_at - killed_at
        run.end_load_and_drain(restart_on_exit=True)
    run.verify(tmp_path)
