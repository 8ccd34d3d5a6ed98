package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/internal/testenv"
)

// TestGenerate writes a small log and checks its shape: every event stored,
// applications and chats created before their messages, numbers dense; its
// progress, written to a pipe or a file, is whole lines.
func TestGenerate(t *testing.T) {
	cfg := testenv.Config(t)
	t.Setenv("CHAT_MYSQL_DSN", cfg.MySQLDSN)
	t.Setenv("CHAT_NAMESPACE", cfg.Namespace)
	var out strings.Builder
	if err := generate(context.Background(), spec{events: 3000, apps: 3, chats: 4, edits: 0.1, bodySize: 40, batch: 500}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Contains(got, "\r") || !strings.HasPrefix(got, "append: 500 of 3000 events") || !strings.Contains(got, "\nappended 3000 events") || !strings.HasSuffix(got, "\n") {
		t.Errorf("progress is not whole lines:\n%q", got)
	}
	db := testenv.DB(t, cfg)
	events := catalog.New(cfg.Namespace).Events()
	var total, apps, chats, created, edited int
	for q, dst := range map[string]*int{
		"SELECT COUNT(*) FROM " + events:                                              &total,
		"SELECT COUNT(*) FROM " + events + " WHERE event_type = 'ApplicationCreated'": &apps,
		"SELECT COUNT(*) FROM " + events + " WHERE event_type = 'ChatCreated'":        &chats,
		"SELECT COUNT(*) FROM " + events + " WHERE event_type = 'MessageCreated'":     &created,
		"SELECT COUNT(*) FROM " + events + " WHERE event_type = 'MessageEdited'":      &edited,
	} {
		if err := db.QueryRow(q).Scan(dst); err != nil {
			t.Fatal(err)
		}
	}
	if total != 3000 || apps != 3 || chats != 12 || created+edited != 3000-15 || edited == 0 {
		t.Errorf("%d events: %d applications, %d chats, %d messages, %d edits", total, apps, chats, created, edited)
	}
	// Message numbers are dense in every chat: the highest equals the count.
	var gaps int
	err := db.QueryRow(`SELECT COUNT(*) FROM (SELECT SUBSTRING_INDEX(stream_id, ':', 3) AS chat, COUNT(*) AS n,
		MAX(CAST(SUBSTRING_INDEX(stream_id, ':', -1) AS UNSIGNED)) AS last
		FROM ` + events + ` WHERE event_type = 'MessageCreated' GROUP BY chat) c WHERE n <> last`).Scan(&gaps)
	if err != nil || gaps != 0 {
		t.Errorf("%d chats with gaps in their numbers (%v)", gaps, err)
	}
}
