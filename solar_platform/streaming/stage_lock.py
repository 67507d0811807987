"""One streaming job per database: the stage lock, held for as long as the job runs."""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream import progress
from solar_platform.streaming.errors import StreamAlreadyRunning, StreamQueryFailed

log = logging.getLogger(__name__)


class StageLockLost(StreamQueryFailed):
    """This job no longer holds the stage lock: `holder` is the connection that does, None when
    nobody does (MariaDB restarted and dropped the lock with its connection)."""

    def __init__(self, message: str, holder: int | None) -> None:
        super().__init__(message)
        self.holder = holder

def stage_lock_name(settings: Settings) -> str:
    """Advisory lock names are server-wide: one per database the job writes to."""
    return progress.stage_lock_name(settings.mysql_database)


class StageLock:
    """`GET_LOCK` on a connection of its own, held while the job runs.

    The lock dies with its connection, so a crashed job never leaves it behind. Each batch checks,
    inside its own transaction, that this job still holds it (`verify`).
    """

    def __init__(self, settings: Settings) -> None:
        self.name = stage_lock_name(settings)
        self._settings = settings
        self._connection: Connection | None = None
        self._connection_id: int | None = None

    def acquire(self) -> None:
        connection = db.engine(self._settings).connect()
        try:
            if not progress.take_stage_lock(connection, self.name):
                holder = progress.stage_lock_holder(connection, self.name)
                raise StreamAlreadyRunning(
                    f"another `solar-platform stream run` (MySQL connection {holder}) is already writing to "
                    f"database {self._settings.mysql_database!r}; stop it first, or point this one at "
                    "another database (SOLAR_MYSQL_DATABASE)"
                )
            self._connection_id = progress.connection_id(connection)
            connection.commit()
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    @property
    def job_id(self) -> int:
        """This job's tag on the stage rows: the lock connection's id, unique among live jobs."""
        if self._connection_id is None:
            raise RuntimeError("the stage lock is not held")
        return self._connection_id

    def verify(self, connection: Connection) -> None:
        """Raise unless this job still holds the lock (checked on `connection`, in its transaction)."""
        holder = progress.stage_lock_holder(connection, self.name)
        if holder is None or holder != self._connection_id:
            raise StageLockLost(
                f"lost the stage lock {self.name!r} (its MySQL connection dropped); stopping so that "
                "two jobs never share the staging tables", holder)

    def reacquire(self) -> None:
        """Hold the lock again after MariaDB dropped its connection (a restart released it): a new
        connection takes it, unless another job took it meanwhile (`StreamAlreadyRunning`). A no-op
        while the lock's connection still holds it."""
        if self._connection is not None:
            try:
                if progress.stage_lock_holder(self._connection, self.name) == self._connection_id:
                    return
            except Exception:  # noqa: BLE001 - the connection died with the server: take a new one
                log.debug("the stage lock's connection is gone", exc_info=True)
            connection, self._connection = self._connection, None
            connection.invalidate()
            connection.close()
        self.acquire()
        log.warning("took the stage lock %r again (MariaDB had dropped it)", self.name)

    def release(self) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            progress.release_stage_lock(connection, self.name)
            connection.commit()
        except Exception:  # noqa: BLE001 - a connection that might still hold the lock is not pooled
            log.debug("RELEASE_LOCK failed; dropping the connection instead", exc_info=True)
            connection.invalidate()
        finally:
            connection.close()
