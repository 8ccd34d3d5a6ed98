-- A deleted message is erased from the log: the body of every event of its
-- stream is taken out, in the transaction that stores the delete, and of
-- any event of that stream stored after it. This table names the deleted
-- streams (and the position of each delete), so that an append finds out by
-- primary key whether what it stores must be erased, the numbering state's
-- rebuild knows the deleted messages without reading every event, and the
-- dead-letter eraser learns of new deletes by the latest erased_at.
CREATE TABLE IF NOT EXISTS {{ns}}_erasures (
  partition_id SMALLINT UNSIGNED NOT NULL,
  stream_id    VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  position     BIGINT UNSIGNED NOT NULL,
  erased_at    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (partition_id, stream_id),
  KEY by_stream (stream_id),
  KEY by_time (erased_at)
) ENGINE=InnoDB;

-- A deleted message keeps its row, with no body, so that lists and cursors
-- keep its place; messages_count counts the rows that are not deleted.
ALTER TABLE {{ns}}_messages
  ADD COLUMN deleted_at DATETIME(6) NULL;
