package verify_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chatsys/chat/apptoken"
	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/searchindex"
	"github.com/chatsys/chat/verify"
)

// appendLog writes a log of apps applications across the partitions, each
// with chats of messages, some edited, some renamed, and returns their
// tokens.
func appendLog(t *testing.T, cfg config.Config, apps int) []string {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t, cfg)
	codec := events.NewCodec()
	byPartition := make([][]events.Record, cfg.Partitions)
	add := func(ev events.Event, version int64) {
		env, err := events.New(ev, version, "test")
		if err != nil {
			t.Fatal(err)
		}
		r, err := codec.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		p := partition.Of(events.TokenOf(r.StreamID), cfg.Partitions)
		byPartition[p] = append(byPartition[p], r)
	}
	tokens := make([]string, apps)
	for a := range tokens {
		tokens[a] = apptoken.New()
		tok := tokens[a]
		add(events.ApplicationCreated{Token: tok, Name: "app"}, 1)
		add(events.ApplicationRenamed{Token: tok, Name: fmt.Sprint("app ", a)}, 2)
		for c := int64(1); c <= 3; c++ {
			add(events.ChatCreated{Token: tok, Number: c, Name: "chat"}, 1)
			for m := int64(1); m <= 6; m++ {
				add(events.MessageCreated{Token: tok, ChatNumber: c, Number: m, Body: fmt.Sprint("note ", c, m)}, 1)
				if m%3 == 0 {
					add(events.MessageEdited{Token: tok, ChatNumber: c, Number: m, Body: "edited"}, 2)
				}
			}
		}
		add(events.ChatRenamed{Token: tok, Number: 2, Name: "renamed"}, 2)
	}
	for p, recs := range byPartition {
		if len(recs) > 0 {
			if _, err := testenv.Appender(t, db, cfg.Namespace, p).Append(ctx, recs); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tokens
}

func verifyWith(t *testing.T, cfg config.Config, es *searchindex.Client, maxFold int64) *verify.Report {
	t.Helper()
	db := testenv.DB(t, cfg)
	rep, err := verify.New(verify.Config{DB: db, Store: eventstore.New(db, cfg.Namespace), Codec: events.NewCodec(), Search: es, Namespace: cfg.Namespace, MaxFold: maxFold, MaxReported: 1000}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Differences)
	return rep
}

// TestSlicesFindTheSame damages every projection, then verifies with folds
// of every size: a partition folded a slice of its entities at a time,
// down to one event's worth, finds what one fold of it finds, and counts
// the same events and rows.
func TestSlicesFindTheSame(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	tokens := appendLog(t, cfg, 6)
	es, err := searchindex.Open(searchindex.Config{URL: cfg.ElasticsearchURL})
	if err != nil {
		t.Fatal(err)
	}
	rp := projections.NewReplay(projections.ReplayConfig{DB: db, Store: eventstore.New(db, cfg.Namespace), Codec: events.NewCodec(), Search: es, Namespace: cfg.Namespace, Log: slog.New(slog.DiscardHandler)})
	if err := rp.MySQL(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rp.Search(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, testenv.SearchWait, "the search index to agree", func() bool {
		return len(verifyWith(t, cfg, es, 0).Differences) == 0
	})

	names := catalog.New(cfg.Namespace)
	tables := names.ReadTables()
	tok, other := tokens[0], tokens[1]
	for _, q := range []string{
		"UPDATE " + tables.Messages + " SET body = 'tampered' WHERE token = '" + tok + "' AND chat_number = 1 AND number = 3",
		"DELETE FROM " + tables.Messages + " WHERE token = '" + tok + "' AND chat_number = 2 AND number = 5",
		"INSERT INTO " + tables.Messages + " (token, chat_number, number, body, version, created_at, updated_at) VALUES ('" + tok + "', 3, 99, 'stray', 1, NOW(), NOW())",
		"UPDATE " + tables.Chats + " SET messages_count = 9 WHERE token = '" + tok + "' AND number = 1",
		"DELETE FROM " + tables.Chats + " WHERE token = '" + other + "' AND number = 3",
		"UPDATE " + tables.Applications + " SET name = 'wrong' WHERE token = '" + other + "'",
		"UPDATE " + tables.Applications + " SET created_at = NULL WHERE token = '" + tokens[2] + "'",
		"INSERT INTO " + tables.Applications + " (token, name, version, created_at, updated_at) VALUES ('" + apptoken.New() + "', 'stray', 1, NOW(), NOW())",
		// An event this build cannot decode, and a gap in the log.
		"UPDATE " + names.Events() + " SET payload = '{\"token\":1}' WHERE stream_id = '" + events.MessageStream(tokens[3], 1, 1) + "'",
		"UPDATE " + names.Events() + " SET position = position + 1000000 WHERE stream_id = '" + events.MessageStream(tokens[4], 2, 2) + "'",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("DELETE", cfg.ElasticsearchURL+"/"+names.SearchAlias()+"/_doc/"+tokens[5]+":2:1?refresh=true", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete a search document: %v %v", resp, err)
	}

	whole := verifyWith(t, cfg, es, 0)
	for _, want := range []string{
		fmt.Sprintf("message %s/1/3 has a body", tok),
		fmt.Sprintf("message %s/2/5 is in the event log but missing from the read table", tok),
		fmt.Sprintf("message %s/3/99 is in the read table but not in the event log", tok),
		fmt.Sprintf("chat %s/1 has messages_count 9", tok),
		fmt.Sprintf("chat %s/3 is in the event log but missing from the read table", other),
		fmt.Sprintf("application %s has name \"wrong\"", other),
		fmt.Sprintf("application %s is not created in the read table but created in the event log", tokens[2]),
		"cannot be decoded by this build",
		"follows",
		fmt.Sprintf("chat %s/2 has 5 documents in the search index; the event log has 6 messages", tokens[5]),
	} {
		if !slices.ContainsFunc(whole.Differences, func(d string) bool { return strings.Contains(d, want) }) {
			t.Errorf("verify did not report %q:\n%s", want, strings.Join(whole.Differences, "\n"))
		}
	}
	for _, maxFold := range []int64{40, 7, 1} {
		got := verifyWith(t, cfg, es, maxFold)
		if !slices.Equal(got.Differences, whole.Differences) || got.Events != whole.Events || got.Checked != whole.Checked {
			t.Errorf("folds of %d events: %d events, checked %+v, differences:\n%s\nwant %d events, checked %+v, differences:\n%s",
				maxFold, got.Events, got.Checked, strings.Join(got.Differences, "\n"), whole.Events, whole.Checked, strings.Join(whole.Differences, "\n"))
		}
	}
}
