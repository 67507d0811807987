-- The window summaries clustered by time first.
-- depends: 0022_site_daily_energy

-- Same uniqueness, another physical order. Panel-first, one minute of a 200k-panel fleet was one row
-- on each of ~200k pages: the stream's per-batch upserts of every panel's current window and fault
-- evaluation's read of "the last minute" touched a page per panel, more than the buffer pool holds
-- at that scale. Time-first, the rows a batch touches and a minute's rows are one contiguous range;
-- a panel's own range (API, corrections, recomputes: bounded ranges) is served by the
-- panel-first secondary key. The 15-min buckets stay panel-first: a panel's lifetime energy sums
-- every bucket kept of it, which a time-first key would scatter over a page per bucket.
ALTER TABLE panelDataAgg
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (window_start, Panel_id),
    ADD KEY ix_panelDataAgg_panel (Panel_id, window_start),
    DROP KEY ix_panelDataAgg_window;
