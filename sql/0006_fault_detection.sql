-- Fault detection: alert severity and evidence, and a registry that knows who registered a panel and when it was retired.
-- depends: 0005_derived_at_scale

-- kind: offline | silent | zero_production | stuck | underperforming | over_range (storage/faults.py).
-- metric is the headline figure (PI, stuck value W, silence s, ...); evidence the figures behind it
-- as JSON; fault_since when the condition started, as far as the data shows.
ALTER TABLE panel_alerts
    ADD COLUMN IF NOT EXISTS severity    VARCHAR(16)   NOT NULL DEFAULT 'minor',
    ADD COLUMN IF NOT EXISTS metric      DOUBLE        NULL,
    ADD COLUMN IF NOT EXISTS evidence    VARCHAR(1024) NULL,
    ADD COLUMN IF NOT EXISTS fault_since DATETIME(3)   NULL,
    ADD KEY IF NOT EXISTS ix_panel_alerts_state_kind (state, kind);

-- registered_by: 'fleet' (the fleet config, kept by the registry sync), 'operator' (CLI), 'seen'
-- (reported without being registered). A retired panel keeps its row and history but is no longer
-- judged; the sync retires fleet panels that left the fleet config.
ALTER TABLE panels
    ADD COLUMN IF NOT EXISTS registered_by VARCHAR(16) NOT NULL DEFAULT 'fleet',
    ADD COLUMN IF NOT EXISTS retired_at    DATETIME(3) NULL;
UPDATE panels SET registered_by = 'seen' WHERE pmax_w IS NULL AND registered_by = 'fleet';
