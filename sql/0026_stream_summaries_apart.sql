-- The stream commits a batch's raw appends at once and writes their summaries (windows, energy
-- buckets, latest rows) a few seconds later, in a transaction of their own that covers every batch
-- since the last one (storage/stream/summaries.py).
-- depends: 0025_registry_sync_state

-- One row per batch whose appends are in panelData but not yet in the summaries, written in the
-- batch's own transaction and deleted in the one that summarizes it. A stream that starts and finds
-- rows here (it was killed in between) summarizes panelData's readings from `earliest_time` on that
-- are newer than their panel's `panel_latest` row, before anything else.
CREATE TABLE IF NOT EXISTS stream_unsummarized (
    query_id      VARCHAR(64) NOT NULL,
    batch_id      BIGINT      NOT NULL,
    earliest_time DATETIME(3) NOT NULL,  -- the batch's oldest appended reading
    readings      INT         NOT NULL,
    recorded_at   DATETIME(3) NOT NULL DEFAULT UTC_TIMESTAMP(3),
    PRIMARY KEY (query_id, batch_id)
) ENGINE=InnoDB;

-- A rebuild recomputes summaries from panelData: while it runs, the stream writes them in every
-- batch's own transaction again (as before 0026). A rebuild sets this (and refreshes it per chunk);
-- one that died lets it lapse.
ALTER TABLE derived_generation
    ADD COLUMN IF NOT EXISTS summaries_in_every_batch_until DATETIME(3) NULL;
