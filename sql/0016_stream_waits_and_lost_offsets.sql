-- The stream pauses rather than loses: what its batch in flight waits for (MariaDB's disk full), and
-- the Kafka offsets it never read because retention deleted them first.
-- depends: 0010_notifications

-- While a batch waits for MariaDB (its disk full), the pulse says so: the stream retries the same
-- batch and Spark does not move on. An in-place update of this one row still succeeds on a full disk.
ALTER TABLE stream_pulse
    ADD COLUMN IF NOT EXISTS waiting_for   VARCHAR(255) NULL,
    ADD COLUMN IF NOT EXISTS waiting_since DATETIME(3)  NULL;

-- Each partition's next expected offset, written in the batch's own transaction: a batch whose first
-- record of a partition lies beyond it skipped offsets (retention deleted them before they were read).
CREATE TABLE IF NOT EXISTS stream_offsets (
    kafka_topic     VARCHAR(255) NOT NULL,
    kafka_partition INT          NOT NULL,
    next_offset     BIGINT       NOT NULL,
    last_timestamp  DATETIME(3)  NULL,      -- the Kafka time of the last record read
    updated_at      DATETIME(3)  NOT NULL,
    PRIMARY KEY (kafka_topic, kafka_partition)
) ENGINE=InnoDB;

-- One row per gap: offsets first_offset..last_offset of a partition were never read. The records were
-- published between published_after (the last record read before the gap) and published_before (the
-- first one after it). A replayed batch finds its gap already recorded.
CREATE TABLE IF NOT EXISTS lost_offsets (
    id               BIGINT       NOT NULL AUTO_INCREMENT,
    kafka_topic      VARCHAR(255) NOT NULL,
    kafka_partition  INT          NOT NULL,
    first_offset     BIGINT       NOT NULL,
    last_offset      BIGINT       NOT NULL,
    records          BIGINT       NOT NULL,
    published_after  DATETIME(3)  NULL,
    published_before DATETIME(3)  NULL,
    batch_id         BIGINT       NULL,
    detected_at      DATETIME(3)  NOT NULL DEFAULT UTC_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_lost_offsets_source (kafka_topic, kafka_partition, first_offset),
    KEY ix_lost_offsets_detected (detected_at)
) ENGINE=InnoDB;
