"""History on Spark: the raw archive's compaction and check, and rebuilds from panelData or the archive.

- `sources`: a range's readings as a Spark DataFrame, from panelData (JDBC) or the archive (Parquet,
  resolved by the archive's one rule);
- `derive`: windows and energy buckets computed on Spark's executors by the very numpy functions
  the stream's append path runs (`storage.windows`, `storage.stream.appends`, `storage.energy`);
- `rebuild`: `solar-platform rebuild` (and Dagster's rebuild job): plan the sources, refuse a range
  with none, compute on Spark or in MariaDB, write in short READ COMMITTED transactions;
- `compaction`: a closed UTC day of the archive into a few files, and its check against panelData;
- `commands`: the `rebuild` command.

Runs where the stream runs Spark: `local[*]` or the standalone cluster (`SOLAR_SPARK_MASTER`).
"""
