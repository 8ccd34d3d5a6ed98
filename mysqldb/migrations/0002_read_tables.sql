-- Read tables, built only by the projector. A row with created_at NULL is a
-- placeholder holding counts for a parent whose create event is not yet
-- applied (events of different streams may be stored out of causal order);
-- reads skip such rows. version is the last stream version applied.
CREATE TABLE IF NOT EXISTS {{ns}}_applications (
  token            CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name             VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  chats_count      INT UNSIGNED NOT NULL DEFAULT 0,
  last_chat_number INT UNSIGNED NOT NULL DEFAULT 0,
  version          INT UNSIGNED NOT NULL DEFAULT 0,
  created_at       DATETIME(6) NULL,
  updated_at       DATETIME(6) NULL,
  PRIMARY KEY (token)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{ns}}_chats (
  token               CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  number              INT UNSIGNED NOT NULL,
  name                VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  messages_count      INT UNSIGNED NOT NULL DEFAULT 0,
  last_message_number INT UNSIGNED NOT NULL DEFAULT 0,
  version             INT UNSIGNED NOT NULL DEFAULT 0,
  created_at          DATETIME(6) NULL,
  updated_at          DATETIME(6) NULL,
  PRIMARY KEY (token, number)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{ns}}_messages (
  token       CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  chat_number INT UNSIGNED NOT NULL,
  number      INT UNSIGNED NOT NULL,
  body        MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  version     INT UNSIGNED NOT NULL DEFAULT 0,
  created_at  DATETIME(6) NULL,
  updated_at  DATETIME(6) NULL,
  PRIMARY KEY (token, chat_number, number)
) ENGINE=InnoDB;

-- The position of the last event applied to the tables above. It lives with
-- them (not in checkpoints) so that a replay, which builds a whole new set of
-- tables, swaps tables and position in one atomic RENAME TABLE.
CREATE TABLE IF NOT EXISTS {{ns}}_read_position (
  id         TINYINT UNSIGNED NOT NULL,
  position   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id)
) ENGINE=InnoDB;
INSERT IGNORE INTO {{ns}}_read_position (id, position) VALUES (1, 0);
