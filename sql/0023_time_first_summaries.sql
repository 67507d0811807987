-- The window summaries and the panels' 15-min buckets clustered by time first.
-- depends: 0022_site_daily_energy

-- Same uniqueness, another physical order. Panel-first, one minute of a 200k-panel fleet was one row
-- on each of ~200k pages: the stream's per-batch upserts of every panel's current window and bucket,
-- and every periodic read of "the last minute" or "the last buckets" (fault evaluation, live checks),
-- touched a page per panel, more than the buffer pool holds at that scale. Time-first, the rows a
-- batch touches and a minute's rows are one contiguous range; a panel's own range (API, corrections,
-- recomputes) is served by the panel-first secondary key.
ALTER TABLE panelDataAgg
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (window_start, Panel_id),
    ADD KEY ix_panelDataAgg_panel (Panel_id, window_start),
    DROP KEY ix_panelDataAgg_window;

ALTER TABLE panel_energy_15min
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (bucket_start, panel_id),
    ADD KEY ix_panel_energy_15min_panel (panel_id, bucket_start),
    DROP KEY ix_panel_energy_15min_bucket;
