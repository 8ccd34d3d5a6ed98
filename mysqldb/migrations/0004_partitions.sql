-- The event log is split into partitions: an application's events all go to
-- one, and each partition has its own gap-free position sequence, assigned
-- by its one writer in the append transaction (AUTO_INCREMENT is neither
-- gap-free nor ordered across writers). A log written before partitions is
-- partition 0 of a namespace with one partition; its positions stay.
ALTER TABLE {{ns}}_events
  ADD COLUMN partition_id SMALLINT UNSIGNED NOT NULL DEFAULT 0 FIRST,
  MODIFY position BIGINT UNSIGNED NOT NULL,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (partition_id, position);

-- One row per partition, written by `chat migrate` (the count is fixed
-- then): the last position appended, and the writer's lease. epoch goes up
-- at every change of owner; the append transaction locks the row and checks
-- it, so a writer that lost its lease (paused, cut off) cannot append.
CREATE TABLE IF NOT EXISTS {{ns}}_partitions (
  partition_id SMALLINT UNSIGNED NOT NULL,
  head         BIGINT UNSIGNED NOT NULL DEFAULT 0,
  owner        VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  epoch        BIGINT UNSIGNED NOT NULL DEFAULT 0,
  lease_until  DATETIME(6) NOT NULL DEFAULT '1970-01-01 00:00:00',
  PRIMARY KEY (partition_id)
) ENGINE=InnoDB;

-- The live `work` processes, so that each can take its share of partitions.
CREATE TABLE IF NOT EXISTS {{ns}}_workers (
  worker_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  seen_at   DATETIME(6) NOT NULL,
  PRIMARY KEY (worker_id)
) ENGINE=InnoDB;

-- Projectors keep a position per partition.
ALTER TABLE {{ns}}_checkpoints
  ADD COLUMN partition_id SMALLINT UNSIGNED NOT NULL DEFAULT 0 FIRST,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (partition_id, name);

-- The read tables' position, one row per partition: id is the partition.
ALTER TABLE {{ns}}_read_position MODIFY id SMALLINT UNSIGNED NOT NULL;
UPDATE {{ns}}_read_position SET id = 0 WHERE id = 1;

ALTER TABLE {{ns}}_search_parked
  ADD COLUMN partition_id SMALLINT UNSIGNED NOT NULL DEFAULT 0 FIRST,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (partition_id, position, document_id);
