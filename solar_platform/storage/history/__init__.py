"""History: what keeps served figures right for ever, and what outlives MariaDB's retention.

- `changes`: the stream marks every 15-min bucket it changes; daily rollups consume the marks, and
  a Dagster sensor re-rolls rolled days that still have some (daily figures follow late data).
- `folding`: retention of the growing tables: buckets folded into daily figures, dead letters,
  the archive's days; lifetime energy stays exact whichever days are folded.
- `archive`: the raw archive, a Parquet dataset by UTC day on any Hadoop-compatible storage, and
  the one rule that resolves it to the row `panelData` keeps.
- `sources`: where a range's readings can be read from (panelData while retained, else the archive).
- `rebuild_writes`: the short READ COMMITTED transactions a rebuild writes its chunks with.
"""
