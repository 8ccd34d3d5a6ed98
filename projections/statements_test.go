package projections_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/projections"
)

// bigHistory is an application with chats of many messages, every third
// edited right after its create, of bodies of the given size.
func bigHistory(token string, chats, perChat, bodySize int) []events.Envelope {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var out []events.Envelope
	add := func(ev events.Event, version int64) {
		at = at.Add(time.Millisecond)
		out = append(out, events.Envelope{EventID: uuid.New(), StreamVersion: version, OccurredAt: at, Event: ev})
	}
	add(events.ApplicationCreated{Token: token, Name: "big"}, 1)
	for c := int64(1); c <= int64(chats); c++ {
		add(events.ChatCreated{Token: token, Number: c, Name: fmt.Sprint("chat ", c)}, 1)
	}
	pad := strings.Repeat("x", bodySize)
	for n := int64(1); n <= int64(perChat); n++ {
		for c := int64(1); c <= int64(chats); c++ {
			add(events.MessageCreated{Token: token, ChatNumber: c, Number: n, Body: fmt.Sprint(n, pad)}, 1)
			if n%3 == 0 {
				add(events.MessageEdited{Token: token, ChatNumber: c, Number: n, Body: fmt.Sprint("edited ", n)}, 2)
			}
		}
	}
	return out
}

// dump is every row of a namespace's read tables.
func dump(t *testing.T, db *sql.DB, ns string) string {
	t.Helper()
	tables := catalog.New(ns).ReadTables()
	var b strings.Builder
	for _, q := range []string{
		"SELECT CONCAT_WS('|', token, name, chats_count, last_chat_number, version, created_at, updated_at) FROM " + tables.Applications + " ORDER BY token",
		"SELECT CONCAT_WS('|', token, number, name, messages_count, last_message_number, version, created_at, updated_at) FROM " + tables.Chats + " ORDER BY token, number",
		"SELECT CONCAT_WS('|', token, chat_number, number, body, version, created_at, updated_at) FROM " + tables.Messages + " ORDER BY token, chat_number, number",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		rows.Close()
	}
	return b.String()
}

// TestLargeBatchesFoldAlike applies the same log in one batch, whose rows
// take several statements (prepared ones for full statements, and ones cut
// short by their bytes), and in small batches: the tables come out the same.
func TestLargeBatchesFoldAlike(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	token := "abcdefghijklmnopqrstuvwxyz"
	for _, tc := range []struct {
		name                     string
		chats, perChat, bodySize int
	}{
		{"small bodies", 3, 450, 20},
		{"large bodies", 2, 400, 16 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := bigHistory(token, tc.chats, tc.perChat, tc.bodySize)
			var want string
			for i, batch := range []int{len(log), 7} {
				ns := fmt.Sprintf("%s_%d_%d", cfg.Namespace, tc.bodySize, i)
				if _, err := mysqldb.Migrate(ctx, db, ns, 1); err != nil {
					t.Fatal(err)
				}
				proj := projections.NewMySQL(db, ns)
				for start := 0; start < len(log); start += batch {
					var b []projections.Event
					for j, e := range log[start:min(start+batch, len(log))] {
						b = append(b, projections.Event{Position: int64(start + j + 1), Envelope: e})
					}
					if err := proj.Apply(ctx, [][]projections.Event{b}); err != nil {
						t.Fatal(err)
					}
				}
				got := dump(t, db, ns)
				if i == 0 {
					want = got
				} else if got != want {
					t.Fatalf("batches of %d differ from one batch of %d", batch, len(log))
				}
			}
			if rows := strings.Count(want, "\n"); rows != 1+tc.chats+tc.chats*tc.perChat {
				t.Errorf("%d rows", rows)
			}
			if !strings.Contains(want, fmt.Sprintf("%s|1|3|edited 3|2|", token)) {
				t.Error("an edit is missing")
			}
		})
	}
}
