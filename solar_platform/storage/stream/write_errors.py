"""The MariaDB errors a batch waits out rather than fails on: no disk space, and no server.

Neither is a bad batch. The stream rolls the batch back, keeps it, and commits it again once
MariaDB can take it (`streaming.sink`); Spark does not move on meanwhile.

**No disk space.** What MariaDB answers:

- `1114 The table 'x' is full`: InnoDB could not grow a tablespace (its log says "error 28");
- `1021 Disk full (…); waiting for someone to free some space`, and `20` (mysys, the same);
- any error whose text carries errno 28, "No space left on device" (a write, a temporary file).

`1114` on one of the stream's MEMORY scratch tables is that table's size limit, not the disk: it
is raised like any other error.

**No server.** The connection was refused, lost or killed, or the server is shutting down. On a full
disk that happens too: MariaDB 10.11 aborts when rolling back a statement needs a page it cannot
allocate (`[FATAL] InnoDB: Error (Out of disk space) in rollback`), and its supervisor restarts it.
"""

from __future__ import annotations

import re

import pymysql
from sqlalchemy import Engine, exc, text

from solar_platform.storage.stream.appends import MEMORY_SCRATCH_TABLES

ER_DISK_FULL = 1021
ER_RECORD_FILE_FULL = 1114
EE_DISK_FULL = 20
_DISK_FULL_CODES = (ER_DISK_FULL, ER_RECORD_FILE_FULL, EE_DISK_FULL)
_NO_SPACE = re.compile(r"\b(?:errno|errcode|error)\W{0,3}28\b|no space left on device", re.IGNORECASE)
_FULL_TABLE = re.compile(r"The table '([^']*)' is full")
# Shutdown in progress, connection killed; and the client's: no socket, cannot connect, gone away, lost.
_SERVER_AWAY_CODES = (1053, 1927, 2002, 2003, 2006, 2013, 2055)


def _errors(error: BaseException) -> list[BaseException]:
    """The error, what SQLAlchemy wrapped, and what it was raised from or during."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        todo += [getattr(current, "orig", None) if isinstance(current, exc.DBAPIError) else None,
                 current.__cause__, current.__context__]
    return seen


def _mysql_errors(error: BaseException) -> list[tuple[int, str]]:
    return [(candidate.args[0], str(candidate.args[1]) if len(candidate.args) > 1 else "")
            for candidate in _errors(error) if isinstance(candidate, pymysql.err.MySQLError) and candidate.args
            and isinstance(candidate.args[0], int)]


def disk_full_error(error: BaseException) -> str | None:
    """`error <code>: <message>` when MariaDB refused a write for lack of disk space, else None."""
    for code, message in _mysql_errors(error):
        full_table = _FULL_TABLE.search(message)
        if code == ER_RECORD_FILE_FULL and full_table and full_table.group(1) in MEMORY_SCRATCH_TABLES:
            return None
        if code in _DISK_FULL_CODES or _NO_SPACE.search(message):
            return f"error {code}: {message}"
    return None


def server_away_error(error: BaseException) -> str | None:
    """`error <code>: <message>` when MariaDB could not be reached or dropped the connection, else None."""
    for code, message in _mysql_errors(error):
        if code in _SERVER_AWAY_CODES:
            return f"error {code}: {message}"
    return None


def data_directory(engine: Engine) -> str | None:
    """MariaDB's data directory as the server names it (`@@datadir`; a read, which a full disk
    allows), or None when the server does not answer."""
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT @@datadir")).scalar())
    except exc.SQLAlchemyError:
        return None
