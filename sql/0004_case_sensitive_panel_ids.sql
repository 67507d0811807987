-- Panel ids are case-sensitive in the message contract ("Panel-1" and "panel-1" are two panels).
-- The default collation (utf8mb4_general_ci) would fold them into one primary key and let one
-- silently overwrite the other; a binary collation keeps them apart.
-- depends: 0003_orchestration

ALTER TABLE panelData            MODIFY Panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE panelDataAgg         MODIFY Panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE stage_panel_data     MODIFY Panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE stage_panel_data_agg MODIFY Panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE panels               MODIFY panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE panel_alerts         MODIFY panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE panel_daily_energy   MODIFY panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE stage_panel_daily_energy MODIFY panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE panel_alerts MODIFY open_key VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
    AS (IF(state = 'open', CONCAT(panel_id, '|', kind), NULL)) PERSISTENT;
