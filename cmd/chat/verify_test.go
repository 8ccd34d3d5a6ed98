package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestVerify checks a healthy system (no difference), then damages each
// projection and expects every damage reported and a non-zero exit.
func TestVerify(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "verified"}).object(t)["token"].(string)
	for c := 1; c <= 2; c++ {
		s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
		for m := 1; m <= 5; m++ {
			s.must(t, 201, "POST", fmt.Sprintf("/applications/%s/chats/%d/messages", token, c), map[string]any{"body": fmt.Sprint("note ", c, m)})
		}
	}
	s.must(t, 200, "PATCH", "/applications/"+token+"/chats/1/messages/2", map[string]any{"body": "edited"})
	s.must(t, 200, "PATCH", "/applications/"+token, map[string]any{"name": "renamed"})
	eventuallyFinds(t, s, "/applications/"+token+"/chats/1/messages/search?q=note", 1, 3, 4, 5)
	eventuallyFinds(t, s, "/applications/"+token+"/chats/2/messages/search?q=note", 1, 2, 3, 4, 5)
	s.eventually(t, "/applications/"+token, func(r response) bool { return r.object(t)["name"] == "renamed" })
	s.eventually(t, "/applications/"+token+"/chats/1/messages/2", func(r response) bool { return r.object(t)["body"] == "edited" })

	env := map[string]string{"CHAT_MYSQL_DSN": cfg.MySQLDSN, "CHAT_ELASTICSEARCH_URL": cfg.ElasticsearchURL, "CHAT_NAMESPACE": cfg.Namespace}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"verify"}, lookup, &out, &errOut); code != 0 || !strings.Contains(out.String(), "agree") {
		t.Fatalf("healthy system: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	s.stop() // nothing may repair the damage while verify runs
	db := testenv.DB(t, cfg)
	names := catalog.New(cfg.Namespace)
	tables := names.ReadTables()
	for _, q := range []string{
		"UPDATE " + tables.Messages + " SET body = 'tampered' WHERE token = '" + token + "' AND chat_number = 1 AND number = 3",
		"DELETE FROM " + tables.Messages + " WHERE token = '" + token + "' AND chat_number = 2 AND number = 5",
		"UPDATE " + tables.Chats + " SET messages_count = 9 WHERE token = '" + token + "' AND number = 1",
		"UPDATE " + tables.Applications + " SET name = 'wrong' WHERE token = '" + token + "'",
		// A gap in the log: the edit moved far past the partition's head.
		"UPDATE " + names.Events() + " SET position = position + 1000000 WHERE stream_id = '" + events.MessageStream(token, 1, 2) + "' AND stream_version = 2",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("DELETE", cfg.ElasticsearchURL+"/"+names.SearchAlias()+"/_doc/"+token+":2:1?refresh=true", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete a search document: %v %v", resp, err)
	}
	var edited int64
	if err := db.QueryRow("SELECT position - 1000000 FROM "+names.Events()+" WHERE stream_id = ? AND stream_version = 2", events.MessageStream(token, 1, 2)).Scan(&edited); err != nil {
		t.Fatal(err)
	}
	part := partition.Of(token, cfg.Partitions)
	out.Reset()
	code := run(context.Background(), []string{"verify"}, lookup, &out, &errOut)
	if code == 0 {
		t.Fatalf("damaged system: exit 0\n%s", out.String())
	}
	for _, want := range []string{
		fmt.Sprintf("message %s/1/3 has a body", token),
		fmt.Sprintf("message %s/2/5 is in the event log but missing from the read table", token),
		fmt.Sprintf("chat %s/1 has messages_count 9; the event log has 5 messages", token),
		fmt.Sprintf("application %s has name \"wrong\"", token),
		fmt.Sprintf("chat %s/2 has 4 documents in the search index; the event log has 5 messages", token),
		fmt.Sprintf("partition %d: position %d follows %d", part, edited+1, edited-1),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verify did not report %q:\n%s", want, out.String())
		}
	}

	// A gap at the end: the partition's events after the edit moved too.
	var head int64
	if err := db.QueryRow("SELECT head FROM "+names.Partitions()+" WHERE partition_id = ?", part).Scan(&head); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE "+names.Events()+" SET position = position + 1000000 WHERE partition_id = ? AND position > ? AND position <= ?", part, edited, head); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"verify"}, lookup, &out, &errOut); code == 0 {
		t.Fatalf("a log ending short: exit 0\n%s", out.String())
	}
	if want := fmt.Sprintf("partition %d: positions stop at %d, short of %d", part, edited-1, head); !strings.Contains(out.String(), want) {
		t.Errorf("verify did not report %q:\n%s", want, out.String())
	}
}
