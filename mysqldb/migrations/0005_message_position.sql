-- The position, in its application's partition of the log, of the last
-- event applied to a message row (its create or its latest edit). A chat's
-- events all live in one partition, whose positions are gap-free and commit
-- in increasing order, so reading a chat's rows by position after a cursor
-- gives its creates and edits in one order, and a replay, which folds the
-- same events, gives every row the same position again. Rows projected
-- before this migration hold 0 until `chat replay mysql` rebuilds them.
ALTER TABLE {{ns}}_messages
  ADD COLUMN position BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD INDEX by_change (token, chat_number, position);
