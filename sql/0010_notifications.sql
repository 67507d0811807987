-- Alert notifications: an outbox of alert events, written in the alert change's own transaction, and each message's delivery per channel.
-- depends: 0007_rollups_from_buckets

-- One row per alert opened or resolved, inserted in the transaction that opens or resolves it
-- (storage/notifications.py, called by storage/alerts.py and storage/registry.py): an event exists
-- exactly when its change committed. evaluation_id groups one evaluation's events: the delivery step
-- sends them one message each, or one digest when there are more than SOLAR_NOTIFY_DIGEST_THRESHOLD.
-- planned_at is when the delivery step made them into messages (NULL: still pending); message_key
-- is the idempotency key of the message that carries the event.
CREATE TABLE IF NOT EXISTS alert_events (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    evaluation_id CHAR(32)     NOT NULL,
    alert_id      BIGINT       NOT NULL,
    panel_id      VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind          VARCHAR(32)  NOT NULL,
    event         VARCHAR(16)  NOT NULL,   -- opened | resolved
    severity      VARCHAR(16)  NOT NULL,
    detail        VARCHAR(255) NULL,
    metric        DOUBLE       NULL,
    occurred_at   DATETIME(3)  NOT NULL,
    planned_at    DATETIME(3)  NULL,
    message_key   CHAR(32)     NULL,
    PRIMARY KEY (id),
    KEY ix_alert_events_pending (planned_at, evaluation_id)
) ENGINE=InnoDB;

-- One row per message and channel (webhook, email), with its delivery state. The payload is fixed
-- when the message is planned, so every attempt sends the same bytes under the same message_key
-- (the receiver's idempotency key). state: pending (retried with exponential backoff until
-- next_attempt_at), delivered, or abandoned (still failing SOLAR_NOTIFY_GIVE_UP_HOURS after it was
-- planned, or its channel is no longer configured).
CREATE TABLE IF NOT EXISTS notification_deliveries (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    message_key     CHAR(32)     NOT NULL,
    channel         VARCHAR(16)  NOT NULL,
    shape           VARCHAR(16)  NOT NULL,   -- alert | digest
    event_count     INT          NOT NULL,
    payload         MEDIUMTEXT   NOT NULL,
    state           VARCHAR(16)  NOT NULL,
    attempts        INT          NOT NULL DEFAULT 0,
    created_at      DATETIME(3)  NOT NULL,
    next_attempt_at DATETIME(3)  NOT NULL,
    last_attempt_at DATETIME(3)  NULL,
    last_error      VARCHAR(512) NULL,
    delivered_at    DATETIME(3)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_notification_deliveries_message (message_key, channel),
    KEY ix_notification_deliveries_due (state, channel, next_attempt_at),
    KEY ix_notification_deliveries_finished (state, last_attempt_at),
    KEY ix_notification_deliveries_created (created_at)
) ENGINE=InnoDB;
