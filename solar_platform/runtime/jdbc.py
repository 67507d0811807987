"""The one JDBC route to MariaDB: its URL, and Spark's JDBC writer appending through it.

Shared by every part that writes with Spark (the stream's stage, the benchmarks), so the driver's
options are chosen once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from solar_platform.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

MARIADB_DRIVER = "org.mariadb.jdbc.Driver"

# mariadb-java-client options for batched writes (bench/stream_throughput.py, 500k rows, 4
# partitions, 2 cores): the MariaDB protocol's bulk insert (`useBulkStmts`, the 3.5 default) 230k
# rows/s; bulk off 60k; bulk off + `rewriteBatchedStatements` (multi-row INSERT) 170k; LOAD DATA
# LOCAL INFILE of the same rows 225k. Set explicitly so a driver upgrade cannot change it silently.
JDBC_BATCH_OPTIONS = "useBulkStmts=true"
JDBC_BATCH_SIZE = 10_000


def jdbc_url(settings: Settings, batch_options: str = JDBC_BATCH_OPTIONS) -> str:
    """The MariaDB driver's URL for the settings' database.

    `permitMysqlScheme` lets the MariaDB driver accept `jdbc:mysql:`, the scheme Spark maps to its
    MySQL dialect (backtick quoting); `sessionVariables` keeps NOW() and friends in UTC, and the
    JVM's own UTC zone (runtime/spark_session.py) makes java.sql.Timestamp values arrive as UTC wall
    clocks.
    """
    options = ["permitMysqlScheme", "sessionVariables=time_zone='+00:00'", batch_options]
    return f"jdbc:mysql://{settings.mysql_host}:{settings.mysql_port}/{settings.mysql_database}?" + "&".join(
        option for option in options if option
    )


def jdbc_append(frame: DataFrame, settings: Settings, table: str, *, batch_options: str = JDBC_BATCH_OPTIONS,
                batch_size: int = JDBC_BATCH_SIZE) -> None:
    """Append `frame` to an existing table with Spark's JDBC writer (one transaction per partition)."""
    user, password = settings.mysql_credentials()
    (
        frame.write.format("jdbc")
        .option("url", jdbc_url(settings, batch_options))
        .option("driver", MARIADB_DRIVER)
        .option("user", user)
        .option("password", password)
        .option("dbtable", table)
        .option("batchsize", str(batch_size))
        .option("isolationLevel", "READ_COMMITTED")
        .mode("append")
        .save()
    )
