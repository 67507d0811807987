"""How the streaming job fails, for `stream run` to turn into an exit code."""

from __future__ import annotations

from solar_platform.runtime.host import SetupError


class StreamAlreadyRunning(SetupError):
    """Another `stream run` holds the stages of this database (exit code 2, like other user errors)."""


class StreamQueryFailed(RuntimeError):
    """A streaming query stopped with an error; the message names the query and the root cause."""


class BatchAbandoned(RuntimeError):
    """A stop was requested while a batch waited for MariaDB (its disk full): the batch is left
    uncommitted, and Spark replays it from its checkpoint at the next start."""
