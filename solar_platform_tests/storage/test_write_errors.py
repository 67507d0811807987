"""Which MariaDB errors the stream waits out (no disk space, no server), and which it fails on."""

from __future__ import annotations

import pymysql
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream.write_errors import data_directory, disk_full_error, server_away_error


def _wrapped(code: int, message: str) -> OperationalError:
    return OperationalError("INSERT ...", {}, pymysql.err.OperationalError(code, message))


@pytest.mark.parametrize(("code", "message"), [
    (1114, "The table 'panelData' is full"),
    (1114, "The table '#sql-temptable-1a-5-0' is full"),
    (1021, "Disk full (/tmp/#sql_1a_0.MAI); waiting for someone to free some space... "
           "(errno: 28 \"No space left on device\")"),
    (20, "Disk is full writing './solar/panelData.ibd' (Errcode: 28 \"No space left on device\")."),
    (1030, "Got error 28 \"No space left on device\" from storage engine InnoDB"),
    (3, "Error writing file '/tmp/MLfd=42' (Errcode: 28 \"No space left on device\")"),
])
def test_disk_full_errors_are_recognised_wrapped_or_raw(code: int, message: str) -> None:
    described = disk_full_error(_wrapped(code, message))
    assert described == f"error {code}: {message}"
    assert disk_full_error(pymysql.err.OperationalError(code, message)) == described  # LOAD DATA's raw cursor
    try:  # raised while handling it, as a rollback after the failure would be
        try:
            raise pymysql.err.OperationalError(code, message)
        except pymysql.err.MySQLError as inner:
            raise RuntimeError("the batch failed") from inner
    except RuntimeError as outer:
        assert disk_full_error(outer) == described


@pytest.mark.parametrize(("code", "message"), [
    (1114, "The table 'tmp_append_windows' is full"),  # a MEMORY scratch table's own limit
    (1062, "Duplicate entry 'p-1' for key 'PRIMARY'"),
    (2013, "Lost connection to server during query"),
    (1205, "Lock wait timeout exceeded; try restarting transaction"),
    (1406, "Data too long for column 'payload' at row 280"),  # 28 in another sense
])
def test_other_errors_are_not_a_full_disk(code: int, message: str) -> None:
    assert disk_full_error(_wrapped(code, message)) is None
    assert disk_full_error(ValueError("no MariaDB here")) is None


@pytest.mark.parametrize(("code", "message"), [
    (2013, "Lost connection to MySQL server during query"),
    (2003, "Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)"),
    (2006, "MySQL server has gone away"),
    (1053, "Server shutdown in progress"),
])
def test_a_server_that_is_away_is_recognised_and_is_not_a_full_disk(code: int, message: str) -> None:
    assert server_away_error(_wrapped(code, message)) == f"error {code}: {message}"
    assert disk_full_error(_wrapped(code, message)) is None
    assert server_away_error(_wrapped(1114, "The table 'panelData' is full")) is None
    assert server_away_error(_wrapped(1062, "Duplicate entry")) is None


@pytest.mark.integration
def test_the_server_s_own_errors(fresh_settings: Settings) -> None:
    """A MEMORY scratch table at its size limit answers 1114 too: the server's words, not the disk."""
    engine = db.engine(fresh_settings.as_role("stream"))
    with engine.connect() as conn, pytest.raises(DBAPIError) as raised:
        conn.execute(text("SET SESSION max_heap_table_size = 16384"))
        conn.execute(text("CREATE TEMPORARY TABLE tmp_append_windows (v VARCHAR(200) NOT NULL) ENGINE=MEMORY"))
        conn.execute(text("INSERT INTO tmp_append_windows SELECT REPEAT('x', 200) FROM seq_1_to_10000"))
    assert raised.value.orig.args[0] == 1114
    assert disk_full_error(raised.value) is None
    assert data_directory(engine).endswith("/")
