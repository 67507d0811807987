-- Panels in the registry per site, kept by triggers: the overview and fleet energy divide by the
-- registry's size on every request, and COUNT(*) over 200k panels costs 15-40 ms a request.
-- depends: 0023_time_first_summaries

CREATE TABLE IF NOT EXISTS registry_counts (
    site_id  VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    panels   BIGINT      NOT NULL,
    PRIMARY KEY (site_id)
) ENGINE=InnoDB;

-- Triggers, not the writers: every path that writes `panels` (registry sync, site commands, a DBA's
-- UPDATE) keeps the count, in the writer's own transaction. One statement each (no BEGIN ... END):
-- an update that moves a panel to another site takes it from the old one's count to the new one's.
CREATE TRIGGER IF NOT EXISTS tr_panels_count_insert AFTER INSERT ON panels FOR EACH ROW
    INSERT INTO registry_counts (site_id, panels) VALUES (NEW.site_id, 1)
    ON DUPLICATE KEY UPDATE panels = panels + 1;

CREATE TRIGGER IF NOT EXISTS tr_panels_count_delete AFTER DELETE ON panels FOR EACH ROW
    UPDATE registry_counts SET panels = panels - 1 WHERE site_id = OLD.site_id;

CREATE TRIGGER IF NOT EXISTS tr_panels_count_update AFTER UPDATE ON panels FOR EACH ROW
    INSERT INTO registry_counts (site_id, panels)
    SELECT moved.site_id, moved.delta FROM (SELECT OLD.site_id AS site_id, -1 AS delta
                                             UNION ALL SELECT NEW.site_id, 1) moved
    WHERE OLD.site_id <> NEW.site_id
    ON DUPLICATE KEY UPDATE panels = panels + VALUES(panels);

-- The panels registered before the triggers existed.
DELETE FROM registry_counts;
INSERT INTO registry_counts (site_id, panels) SELECT site_id, COUNT(*) FROM panels GROUP BY site_id;
