"""What the stream writes, in each micro-batch's one transaction (the Spark job in `streaming/`
only decides when).

- `readings`: a batch's valid readings as arrays, one per (panel, time), last offset wins.
- `latest`: each panel's newest stored reading, held in memory by the stream: it tells an append
  (the panel's next reading, the common case) from a correction (late, re-sent or changed).
- `appends`: the bulk path: raw rows loaded as they are, windows, energy buckets and latest rows
  aggregated in numpy and merged with one statement per table.
- `corrections`: the exact path for the rest, against `panelData` as it is.
- `summaries`: the appends' summaries written apart, every few seconds for every batch since.
- `commit`: the batch's transaction: replay guard, both paths (or a batch of appends alone), dead
  letters, progress.
- `progress`: the stage lock, dead letters, progress rows and the pulse of a batch in flight.
- `bulk`: `LOAD DATA LOCAL INFILE` of column arrays.
"""
