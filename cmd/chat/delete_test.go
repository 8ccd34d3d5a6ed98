package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
)

// errorCode is the code of an error answer.
func errorCode(t *testing.T, r response) string {
	t.Helper()
	var e struct{ Error struct{ Code string } }
	r.json(t, &e)
	return e.Error.Code
}

// storedPayloads are the payloads of a message's events in the event store,
// by event type.
func storedPayloads(t *testing.T, cfg config.Config, token string, chat, number int64) map[string][]string {
	t.Helper()
	rows, err := testenv.DB(t, cfg).Query("SELECT event_type, payload FROM "+catalog.New(cfg.Namespace).Events()+
		" WHERE stream_id = ? ORDER BY stream_version", events.MessageStream(token, chat, number))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var typ, payload string
		if err := rows.Scan(&typ, &payload); err != nil {
			t.Fatal(err)
		}
		out[typ] = append(out[typ], payload)
	}
	return out
}

// TestDeleteMessage: a delete takes a message away for real. Its words are
// gone from the event store, the read tables and search; GET, an edit and
// a second delete answer 404 message_deleted; lists keep its place; the
// chat's count drops; a stream sends the delete; and a replay and verify
// after it agree.
func TestDeleteMessage(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "deleting"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	base := "/applications/" + token + "/chats/1/messages"
	for _, body := range []string{"alpha secret", "beta words", "gamma words"} {
		s.must(t, 201, "POST", base, map[string]any{"body": body})
	}
	s.must(t, 200, "PATCH", base+"/1", map[string]any{"body": "alpha secret, edited"})
	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return r.object(t)["messages_count"] == 3.0 })
	s.eventually(t, base+"/1", func(r response) bool { return r.object(t)["body"] == "alpha secret, edited" })
	eventuallyFinds(t, s, base+"/search?q=secret", 1)
	stream, _ := openStream(t, s, base+"/stream", "")

	r := s.call(t, "DELETE", base+"/1", nil)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	if got := summary(nextEvents(t, stream, 1, 10*time.Second)); got != "1:(deleted)" {
		t.Errorf("the stream sent %s, want the delete of 1", got)
	}

	testenv.Eventually(t, 15*time.Second, "GET of the deleted message", func() bool {
		r := s.call(t, "GET", base+"/1", nil)
		return r.Status == 404 && errorCode(t, r) == "message_deleted"
	})
	for _, c := range []struct {
		method string
		body   any
	}{{"PATCH", map[string]any{"body": "back"}}, {"DELETE", nil}} {
		if r := s.call(t, c.method, base+"/1", c.body); r.Status != 404 || errorCode(t, r) != "message_deleted" {
			t.Errorf("%s of the deleted message: %d %s", c.method, r.Status, r.Body)
		}
	}
	if r := s.call(t, "DELETE", base+"/9", nil); r.Status != 404 || errorCode(t, r) != "not_found" {
		t.Errorf("DELETE of a number never used: %d %s", r.Status, r.Body)
	}

	// The list keeps the number's place, without the words.
	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return r.object(t)["messages_count"] == 2.0 })
	var items []map[string]any
	s.must(t, 200, "GET", base, nil).json(t, &items)
	if len(items) != 3 || items[0]["number"] != 1.0 || items[0]["deleted_at"] == nil || items[0]["body"] != nil || items[1]["body"] != "beta words" {
		t.Errorf("list after the delete: %v", items)
	}
	eventuallyFinds(t, s, base+"/search?q=secret")
	eventuallyFinds(t, s, base+"/search?q=words", 2, 3)

	// Erased where it is stored: the create and the edit keep their place
	// in the log without the words.
	stored := storedPayloads(t, cfg, token, 1, 1)
	if len(stored[events.TypeMessageCreated]) != 1 || len(stored[events.TypeMessageEdited]) != 1 || len(stored[events.TypeMessageDeleted]) != 1 {
		t.Fatalf("the message's stored events: %v", stored)
	}
	for typ, payloads := range stored {
		for _, p := range payloads {
			if strings.Contains(p, "secret") || typ != events.TypeMessageDeleted && !strings.Contains(p, `"erased":true`) {
				t.Errorf("a stored %s still says %s", typ, p)
			}
		}
	}

	// A retry under the same Idempotency-Key gets the same answer.
	key := http.Header{"Idempotency-Key": {"delete-2"}}
	for i := range 2 {
		if r := s.callWith(t, "DELETE", base+"/2", nil, key); r.Status != http.StatusNoContent {
			t.Errorf("DELETE under a key, try %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	eventuallyFinds(t, s, base+"/search?q=words", 3)
	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return r.object(t)["messages_count"] == 1.0 })

	// The seed's route deletes as well.
	if r := s.call(t, "DELETE", fmt.Sprintf("/messages/3?app_token=%s&chat_number=1", token), nil); r.Status != http.StatusNoContent {
		t.Errorf("seed DELETE: %d %s", r.Status, r.Body)
	}
	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return r.object(t)["messages_count"] == 0.0 })

	// Verify agrees with the tables, then with a replay of them.
	env := map[string]string{"CHAT_MYSQL_DSN": cfg.MySQLDSN, "CHAT_ELASTICSEARCH_URL": cfg.ElasticsearchURL, "CHAT_NAMESPACE": cfg.Namespace}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, args := range [][]string{{"verify"}, {"replay", "mysql"}, {"replay", "search"}, {"verify"}} {
		var out, errOut strings.Builder
		if code := run(context.Background(), args, lookup, &out, &errOut); code != 0 {
			t.Fatalf("chat %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
	}
	s.must(t, 200, "GET", base, nil).json(t, &items)
	if len(items) != 3 || items[0]["deleted_at"] == nil || items[0]["body"] != nil {
		t.Errorf("list after the replay: %v", items)
	}
	if r := s.call(t, "GET", base+"/1", nil); r.Status != 404 || errorCode(t, r) != "message_deleted" {
		t.Errorf("GET after the replay: %d %s", r.Status, r.Body)
	}
	eventuallyFinds(t, s, base+"/search?q=secret")
}

// TestDeletesSurviveRedisLoss: when Redis loses the command side's state,
// its rebuild from the event log restores which messages are deleted, so
// an edit or a second delete of one is still refused with message_deleted
// while the chat's other messages take commands as before.
func TestDeletesSurviveRedisLoss(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	cfg.PublishTimeout = 500 * time.Millisecond // the rebuild waits about twice this
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "lost deletes"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	base := "/applications/" + token + "/chats/1/messages"
	for _, body := range []string{"gone", "kept"} {
		s.must(t, 201, "POST", base, map[string]any{"body": body})
	}
	if r := s.call(t, "DELETE", base+"/1", nil); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	testenv.Eventually(t, 15*time.Second, "the delete stored", func() bool {
		return len(storedPayloads(t, cfg, token, 1, 1)[events.TypeMessageDeleted]) == 1
	})

	wipe(t, cfg.Namespace)
	testenv.Eventually(t, 60*time.Second, "commands taken again after the rebuild", func() bool {
		return s.call(t, "PATCH", base+"/2", map[string]any{"body": "kept, edited"}).Status == http.StatusOK
	})
	for _, c := range []struct {
		method string
		body   any
	}{{"PATCH", map[string]any{"body": "back"}}, {"DELETE", nil}} {
		if r := s.call(t, c.method, base+"/1", c.body); r.Status != 404 || errorCode(t, r) != "message_deleted" {
			t.Errorf("%s of the deleted message after the rebuild: %d %s", c.method, r.Status, r.Body)
		}
	}
}

// TestStreamDeleteCursor: a stream sends a delete at the cursor the read
// tables hold it at, after the creates it follows: a client that resumes
// just before it gets the delete again, as the message's first event, and
// one that resumes at it gets nothing more of that message, as cursor reads
// after the same cursors answer.
func TestStreamDeleteCursor(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "delete cursor"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	base := "/applications/" + token + "/chats/1/messages"
	for _, body := range []string{"one", "two", "three"} {
		s.must(t, 201, "POST", base, map[string]any{"body": body})
	}
	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return r.object(t)["messages_count"] == 3.0 })

	stream, _ := openStream(t, s, base+"/stream?after=0", "")
	creates := nextEvents(t, stream, 3, 10*time.Second)
	if got := inAnyOrder(summary(creates)); got != "1:one 2:two 3:three" {
		t.Fatalf("the creates: %s", got)
	}
	if r := s.call(t, "DELETE", base+"/2", nil); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	del := nextEvents(t, stream, 1, 10*time.Second)[0]
	if del.name != "delete" || del.number != 2 {
		t.Fatalf("after the delete the stream sent %+v, want the delete of 2", del)
	}
	cursor := func(id string) int64 {
		t.Helper()
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			t.Fatalf("event id %q: %v", id, err)
		}
		return n
	}
	for _, c := range creates {
		if cursor(c.id) >= cursor(del.id) {
			t.Errorf("the create of %d at %s, not before the delete at %s", c.number, c.id, del.id)
		}
	}
	before := creates[len(creates)-1].id

	// A cursor read after the same cursor: the numbers it lists and whether
	// each is deleted.
	read := func(after string) string {
		t.Helper()
		var items []struct {
			Number    int64   `json:"number"`
			DeletedAt *string `json:"deleted_at"`
		}
		s.must(t, 200, "GET", base+"?per_page=100&after="+after, nil).json(t, &items)
		var out []string
		for _, it := range items {
			item := strconv.FormatInt(it.Number, 10)
			if it.DeletedAt != nil {
				item += ":(deleted)"
			}
			out = append(out, item)
		}
		return strings.Join(out, " ")
	}
	if got := read(before); got != "2:(deleted)" {
		t.Errorf("a read after the event before the delete: %q, want the delete of 2", got)
	}
	if got := read(del.id); got != "" {
		t.Errorf("a read after the delete: %q, want nothing", got)
	}

	// Just before the delete: the delete again, at the same cursor.
	for _, tt := range []struct{ name, query, lastEventID string }{
		{"Last-Event-ID", "", before},
		{"after", "?after=" + before, ""},
	} {
		t.Run("before the delete by "+tt.name, func(t *testing.T) {
			events, _ := openStream(t, s, base+"/stream"+tt.query, tt.lastEventID)
			if got := nextEvents(t, events, 1, 10*time.Second)[0]; got.name != "delete" || got.number != 2 || got.id != del.id {
				t.Errorf("resumed at %s: %+v; want the delete of 2 at %s", before, got, del.id)
			}
		})
	}

	// At the delete: nothing of 2 comes before a marker created after it.
	resumed := map[string]<-chan sseEvent{}
	resumed["Last-Event-ID"], _ = openStream(t, s, base+"/stream", del.id)
	resumed["after"], _ = openStream(t, s, base+"/stream?after="+del.id, "")
	s.must(t, 201, "POST", base, map[string]any{"body": "four"})
	for name, events := range resumed {
		if got := summary(nextEvents(t, events, 1, 10*time.Second)); got != "4:four" {
			t.Errorf("resumed at the delete by %s: %s; want 4:four", name, got)
		}
	}
}
