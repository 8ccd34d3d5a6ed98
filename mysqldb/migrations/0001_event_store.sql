-- The event store: every event once, in the order it was appended.
CREATE TABLE IF NOT EXISTS {{ns}}_events (
  position       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  event_id       BINARY(16) NOT NULL,
  stream_id      VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  stream_version INT UNSIGNED NOT NULL,
  event_type     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  schema_version SMALLINT UNSIGNED NOT NULL,
  payload        MEDIUMBLOB NOT NULL,
  metadata       BLOB NOT NULL,
  occurred_at    DATETIME(6) NOT NULL,
  recorded_at    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (position),
  UNIQUE KEY uq_event_id (event_id),
  UNIQUE KEY uq_stream_version (stream_id, stream_version)
) ENGINE=InnoDB;

-- One row per projector: the last event position it applied.
CREATE TABLE IF NOT EXISTS {{ns}}_checkpoints (
  name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  position   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (name)
) ENGINE=InnoDB;
