-- Events the search projection could never index, with the reason: parked
-- for a person to look at, never skipped silently.
CREATE TABLE IF NOT EXISTS {{ns}}_search_parked (
  position    BIGINT UNSIGNED NOT NULL,
  document_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  reason      TEXT NOT NULL,
  parked_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (position, document_id)
) ENGINE=InnoDB;
