-- Panel rankings at fleet scale: the dashboards' top and bottom panels of a day read a few index
-- entries instead of sorting every panel of the day (200k rows a refresh at 200k panels).
-- depends: 0009_health_from_summaries

-- The registry's Pmax when the day was rolled up (storage/rollups.py), and the day's energy per
-- rated watt beside it, so that "lowest yield" is an index range too. NULL without a Pmax.
ALTER TABLE stage_panel_daily_energy ADD COLUMN IF NOT EXISTS pmax_w DOUBLE NULL AFTER peak_w;
ALTER TABLE panel_daily_energy
    ADD COLUMN IF NOT EXISTS pmax_w DOUBLE NULL AFTER peak_w,
    ADD COLUMN IF NOT EXISTS wh_per_rated_w DOUBLE AS (energy_wh / NULLIF(pmax_w, 0)) PERSISTENT,
    ADD KEY IF NOT EXISTS ix_panel_daily_energy_day_energy (day, energy_wh),
    ADD KEY IF NOT EXISTS ix_panel_daily_energy_day_yield (day, wh_per_rated_w);

-- Days rolled up before this migration: the registry's Pmax now. Only the last 31 days (what the
-- dashboards rank); older days get theirs when they are rolled up again.
UPDATE panel_daily_energy e JOIN panels p ON p.panel_id = e.panel_id
SET e.pmax_w = p.pmax_w
WHERE e.pmax_w IS NULL AND e.day >= CURDATE() - INTERVAL 31 DAY;
