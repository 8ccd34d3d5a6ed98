package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// keyed is the header of a command sent with an idempotency key.
func keyed(key string) http.Header { return http.Header{"Idempotency-Key": {key}} }

// storedEvents counts the namespace's stored events of a type.
func storedEvents(t *testing.T, db *sql.DB, cfg config.Config, eventType string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM "+cfg.Namespace+"_events WHERE event_type = ?", eventType).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// settled waits until a create made after everything else is stored, then
// returns the stored count of each event type. A second event published for
// a retry would have been sent before it.
func settled(t *testing.T, s *system, db *sql.DB, cfg config.Config, token string) map[string]int {
	t.Helper()
	n := int64(s.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "last"}).object(t)["number"].(float64))
	stream := fmt.Sprintf("chat:%s:%d", token, n)
	testenv.Eventually(t, 15*time.Second, "the last create to be stored", func() bool {
		var found int
		if err := db.QueryRow("SELECT COUNT(*) FROM "+cfg.Namespace+"_events WHERE stream_id = ?", stream).Scan(&found); err != nil {
			t.Fatal(err)
		}
		return found == 1
	})
	// Events published before the last create may still be in hand: a
	// partition that moved between workers gives its messages back to the
	// queue. Settled is when the queues are empty and the counts stay put.
	count := func() map[string]int {
		counts := map[string]int{}
		for _, typ := range []string{"ApplicationCreated", "ApplicationRenamed", "ChatCreated", "ChatRenamed", "MessageCreated", "MessageEdited"} {
			counts[typ] = storedEvents(t, db, cfg, typ)
		}
		counts["ChatCreated"]-- // the last create
		return counts
	}
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	var counts map[string]int
	testenv.Eventually(t, 45*time.Second, "the queues empty and the stored events settled", func() bool {
		before := count()
		time.Sleep(time.Second)
		counts = count()
		depths, err := broker.QueueDepths(context.Background(), cfg.AMQPURL, names.StoreQueues()...)
		return err == nil && slices.Max(depths) == 0 && fmt.Sprint(before) == fmt.Sprint(counts)
	})
	return counts
}

// commandBody is a body the command route accepts, for token's chat 1 and
// message 1; what it changes depends on tag.
func commandBody(t *testing.T, route, token, tag string) map[string]any {
	t.Helper()
	switch {
	case route == "/applications" || route == "/applications/{token}" || strings.HasSuffix(route, "/chats") || strings.HasSuffix(route, "/chats/{chat}"):
		b := map[string]any{"name": "name " + tag}
		if strings.HasPrefix(route, "/chats") {
			b["app_token"] = token
		}
		return b
	case strings.HasSuffix(route, "/messages") || strings.HasSuffix(route, "/messages/{message}"):
		b := map[string]any{"body": "body " + tag}
		if strings.HasPrefix(route, "/messages") {
			b["app_token"], b["chat_number"] = token, 1
		}
		return b
	}
	t.Fatalf("no body for route %s", route)
	return nil
}

// TestIdempotentRetries sends every command route a request with a key,
// then the same request again (spelled differently): the retry gets the
// first answer, and only one event is stored for the two. A key used for
// another request is refused; a failed command leaves its key free; keys
// belong to their application; without a key nothing changes.
func TestIdempotentRetries(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	var handler http.Handler
	s := startTweaked(t, cfg, true, false, func(p *process) { handler = p.handler })
	start(t, cfg, false, true)
	db := testenv.DB(t, cfg)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "retries"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "general"})
	s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": "hello"})
	// Updates answer with the read side's view of the rest of the resource.
	s.eventually(t, "/applications/"+token+"/chats/1/messages/1", nil)

	routes := commandRoutes(t, handler, token)
	for i, r := range routes {
		method, path, route := r[0], r[1], r[2]
		key := fmt.Sprintf("%s %s #%d", method, route, i)
		key = strings.ReplaceAll(key, " ", "_")
		body := commandBody(t, route, token, fmt.Sprint(i))
		first := s.callWith(t, method, path, body, keyed(key))
		if first.Status != http.StatusOK && first.Status != http.StatusCreated {
			t.Fatalf("%s %s: %d %s", method, path, first.Status, first.Body)
		}
		// The same request, spaced otherwise, with the key in the draft's
		// quoted form.
		spaced, err := json.MarshalIndent(body, "", "    ")
		if err != nil {
			t.Fatal(err)
		}
		retry := s.callWith(t, method, path, string(spaced), keyed(`"`+key+`"`))
		if retry.Status != first.Status || retry.Header.Get("Location") != first.Header.Get("Location") {
			t.Errorf("%s %s retried: %d %q; first %d %q", method, path, retry.Status, retry.Header.Get("Location"), first.Status, first.Header.Get("Location"))
		}
		a, b := first.object(t), retry.object(t)
		if method == http.MethodPatch {
			// What an update did not set is read afresh.
			for _, m := range []map[string]any{a, b} {
				delete(m, "chats_count")
				delete(m, "messages_count")
			}
		}
		if !maps.Equal(a, b) {
			t.Errorf("%s %s retried: %s; first %s", method, path, retry.Body, first.Body)
		}
	}
	want := map[string]int{"ApplicationCreated": 2, "ApplicationRenamed": 1, "ChatCreated": 3, "ChatRenamed": 2, "MessageCreated": 3, "MessageEdited": 2}
	if got := settled(t, s, db, cfg, token); !maps.Equal(got, want) {
		t.Errorf("stored events %v; want %v (one per keyed command, whatever its retries)", got, want)
	}

	// The same key with another request is refused, whatever differs.
	chats := "/applications/" + token + "/chats"
	first := s.callWith(t, "POST", chats, map[string]any{"name": "one"}, keyed("k"))
	if first.Status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", chats, first.Status, first.Body)
	}
	number := int64(first.object(t)["number"].(float64))
	for _, other := range []struct{ method, path, body string }{
		{"POST", chats, `{"name":"two"}`},
		{"POST", chats, `{}`},
		{"POST", chats + "/1/messages", `{"body":"one"}`},
		{"PATCH", fmt.Sprintf("%s/%d", chats, number), `{"name":"one"}`},
		{"POST", "/applications", `{"name":"one"}`},
	} {
		r := s.callWith(t, other.method, other.path, other.body, keyed("k"))
		if r.Status == http.StatusUnprocessableEntity && r.errorCode(t) == "idempotency_key_reused" {
			continue
		}
		if other.path == "/applications" && r.Status == http.StatusCreated {
			continue // new applications' keys are the service's, not this application's
		}
		t.Errorf("%s %s %s with a used key: %d %s; want 422 idempotency_key_reused", other.method, other.path, other.body, r.Status, r.Body)
	}
	// The seed's route asking for the same change is the same request.
	seed := s.callWith(t, "POST", "/chats", map[string]any{"name": "one", "app_token": token}, keyed("k"))
	if seed.Status != http.StatusCreated || string(seed.Body) != string(first.Body) || seed.Header.Get("Location") != first.Header.Get("Location") {
		t.Errorf("POST /chats with the key of the same nested create: %d %s; want %s", seed.Status, seed.Body, first.Body)
	}
	// Another application has keys of its own.
	other := s.must(t, 201, "POST", "/applications", map[string]any{"name": "other"}).object(t)["token"].(string)
	if r := s.callWith(t, "POST", "/applications/"+other+"/chats", map[string]any{"name": "one"}, keyed("k")); r.Status != http.StatusCreated || int64(r.object(t)["number"].(float64)) != 1 {
		t.Errorf("the key in another application: %d %s; want its chat 1", r.Status, r.Body)
	}

	// A command that failed changed nothing, so its key is not kept.
	for range 2 {
		if r := s.callWith(t, "PATCH", chats+"/999", map[string]any{"name": "x"}, keyed("unknown-chat")); r.Status != http.StatusNotFound {
			t.Errorf("PATCH an unknown chat with a key: %d %s; want 404 each time", r.Status, r.Body)
		}
	}
	if r := s.callWith(t, "POST", chats, map[string]any{"name": "x"}, keyed("unknown-chat")); r.Status != http.StatusCreated {
		t.Errorf("the key of a failed command, for another: %d %s; want 201", r.Status, r.Body)
	}

	// Without a key, every request is a new command.
	a := s.must(t, 201, "POST", chats, map[string]any{"name": "same"}).object(t)["number"]
	b := s.must(t, 201, "POST", chats, map[string]any{"name": "same"}).object(t)["number"]
	if a == b {
		t.Errorf("two creates without a key both answered number %v", a)
	}
	// A key that is not a key is refused before anything happens.
	if r := s.callWith(t, "POST", chats, map[string]any{"name": "x"}, keyed(strings.Repeat("k", 256))); r.Status != http.StatusBadRequest || r.errorCode(t) != "invalid_idempotency_key" {
		t.Errorf("a 256-character key: %d %s; want 400 invalid_idempotency_key", r.Status, r.Body)
	}
}

// TestIdempotentConcurrentRetries sends the same keyed creates through two
// API processes at once: each key makes one chat (or message), whose answer
// every sender gets, or is told that it is in flight; nothing is made twice.
func TestIdempotentConcurrentRetries(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	apis := []*system{start(t, cfg, true, false), start(t, cfg, true, false)}
	start(t, cfg, false, true)
	db := testenv.DB(t, cfg)
	token := apis[0].must(t, 201, "POST", "/applications", map[string]any{"name": "concurrent"}).object(t)["token"].(string)
	apis[0].must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "general"})

	const keys, senders = 5, 8
	type sent struct {
		path, key string
		r         response
	}
	var (
		mu   sync.Mutex
		all  []sent
		wg   sync.WaitGroup
		gate = make(chan struct{})
	)
	for k := range keys {
		for _, path := range []string{"/applications/" + token + "/chats", "/applications/" + token + "/chats/1/messages"} {
			key := fmt.Sprintf("%s-%d", path[strings.LastIndex(path, "/")+1:], k) // a key is the application's: one per request
			body := map[string]any{"name": "chat " + key, "body": "message " + key}
			for i := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					r := apis[i%len(apis)].callWith(t, "POST", path, body, keyed(key))
					mu.Lock()
					all = append(all, sent{path, key, r})
					mu.Unlock()
				}()
			}
		}
	}
	close(gate)
	wg.Wait()

	answers := map[string]response{} // by path and key
	numbers := map[string][]int64{}  // by path
	for _, s := range all {
		switch s.r.Status {
		case http.StatusCreated:
			id := s.path + " " + s.key
			if prev, ok := answers[id]; !ok {
				answers[id] = s.r
				numbers[s.path] = append(numbers[s.path], int64(s.r.object(t)["number"].(float64)))
			} else if string(prev.Body) != string(s.r.Body) || prev.Header.Get("Location") != s.r.Header.Get("Location") {
				t.Errorf("POST %s with %s answered %s and %s", s.path, s.key, prev.Body, s.r.Body)
			}
		case http.StatusConflict:
			if code := s.r.errorCode(t); code != "idempotency_key_in_flight" || s.r.Header.Get("Retry-After") == "" {
				t.Errorf("POST %s with %s: 409 %s, Retry-After %q", s.path, s.key, code, s.r.Header.Get("Retry-After"))
			}
		default:
			t.Errorf("POST %s with %s: %d %s", s.path, s.key, s.r.Status, s.r.Body)
		}
	}
	t.Logf("%d requests: %d keyed creates answered 201", len(all), len(answers))
	if len(answers) != 2*keys {
		t.Fatalf("%d of %d keyed creates got a 201", len(answers), 2*keys)
	}
	for path, got := range numbers {
		slices.Sort(got)
		first := int64(1)
		if strings.HasSuffix(path, "/chats") {
			first = 2 // chat 1 was made before
		}
		for i, n := range got {
			if n != first+int64(i) {
				t.Errorf("POST %s answered numbers %v; want %d..%d, one per key", path, got, first, first+keys-1)
				break
			}
		}
	}
	got := settled(t, apis[1], db, cfg, token)
	if got["ChatCreated"] != 1+keys || got["MessageCreated"] != keys {
		t.Errorf("stored %d chats and %d messages; want %d and %d", got["ChatCreated"], got["MessageCreated"], 1+keys, keys)
	}
}

// TestIdempotentRetryAfterHangUp holds the broker's traffic while a keyed
// create waits for its confirm and its client hangs up. When the confirm
// comes in time, the retry learns the outcome; when it comes after the
// publish timeout, the retry publishes the same event again, which the
// event store keeps once. Either way one chat is made, and the retry
// answers its number and time.
func TestIdempotentRetryAfterHangUp(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	apiCfg, amqpGate := gatedBroker(t, cfg)
	apiCfg.PublishTimeout = 2 * time.Second
	s := start(t, apiCfg, true, false)
	worker := start(t, cfg, false, true)
	db := testenv.DB(t, cfg)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "hang-ups"}).object(t)["token"].(string)
	chats := "/applications/" + token + "/chats"

	hangUp := func(key string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", s.URL+chats, strings.NewReader(`{"name":"gone"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("POST %s answered %d while the broker was held", chats, resp.StatusCode)
		}
	}
	// retry repeats the request until it is no longer in flight.
	retry := func(key string) response {
		t.Helper()
		var r response
		testenv.Eventually(t, 15*time.Second, "the retry of "+key+" to be answered", func() bool {
			r = s.callWith(t, "POST", chats, map[string]any{"name": "gone"}, keyed(key))
			return r.Status != http.StatusConflict
		})
		if r.Status != http.StatusCreated {
			t.Fatalf("retry of %s: %d %s", key, r.Status, r.Body)
		}
		return r
	}
	// stored returns the occurred_at of the one stored create of chat n.
	stored := func(n int64) time.Time {
		t.Helper()
		var at time.Time
		testenv.Eventually(t, 15*time.Second, fmt.Sprint("chat ", n, " to be stored"), func() bool {
			err := db.QueryRow("SELECT occurred_at FROM "+cfg.Namespace+"_events WHERE stream_id = ?", fmt.Sprintf("chat:%s:%d", token, n)).Scan(&at)
			if err != nil && err != sql.ErrNoRows {
				t.Fatal(err)
			}
			return err == nil
		})
		return at.UTC()
	}
	check := func(what string, r response, n int64) {
		t.Helper()
		c := r.object(t)
		if got := int64(c["number"].(float64)); got != n {
			t.Fatalf("%s: the retry answered chat %d; want %d", what, got, n)
		}
		if at := stored(n).Format(time.RFC3339Nano); c["created_at"] != at || c["updated_at"] != at {
			t.Errorf("%s: the retry answered times %v, %v; the stored create says %s", what, c["created_at"], c["updated_at"], at)
		}
		if loc := r.Header.Get("Location"); loc != fmt.Sprintf("%s/%d", chats, n) {
			t.Errorf("%s: Location %q", what, loc)
		}
	}

	// The confirm comes after the client left, within the publish timeout.
	amqpGate.Hold()
	hangUp("early")
	time.Sleep(300 * time.Millisecond)
	amqpGate.Release()
	check("a confirm after the hang-up", retry("early"), 1)

	// No confirm within the publish timeout: the attempt gives up, the event
	// is stored later, and the retry sends it once more.
	amqpGate.Hold()
	hangUp("late")
	time.Sleep(apiCfg.PublishTimeout + 500*time.Millisecond)
	amqpGate.Release()
	check("no confirm in time", retry("late"), 2)
	metrics := string(s.must(t, 200, "GET", "/metrics", nil).Body)
	for series, want := range map[string]float64{`chat_idempotency_claims_total{result="resumed"}`: 1, `chat_idempotency_claims_total{result="replayed"}`: 1} {
		if n, _ := sample(metrics, series); n < want {
			t.Errorf("%s is %v; want at least %v", series, n, want)
		}
	}
	testenv.Eventually(t, 15*time.Second, "the copy sent again to be recognised as a duplicate", func() bool {
		n, _ := sample(string(worker.must(t, 200, "GET", "/metrics", nil).Body), `chat_eventstore_records_total{outcome="duplicate"}`)
		return n >= 1
	})

	// The retries reserved no number: the next chat is 3.
	if got := settled(t, s, db, cfg, token); got["ChatCreated"] != 2 {
		t.Errorf("stored %d chat creates; want 2", got["ChatCreated"])
	}
	if n := storedEvents(t, db, cfg, "ChatCreated"); n != 3 {
		t.Errorf("%d chat creates with the last; want 3", n)
	}
	var last int64
	if err := db.QueryRow("SELECT MAX(stream_version) FROM "+cfg.Namespace+"_events WHERE stream_id = ?", fmt.Sprintf("chat:%s:3", token)).Scan(&last); err != nil || last != 1 {
		t.Errorf("chat 3 is not the last create (%d, %v): a retry took a number", last, err)
	}
}

// TestIdempotencyKeyLimit: an application holds at most
// CHAT_IDEMPOTENCY_KEYS live keys; past it a new key is refused with 429 and
// the time until the oldest expires, while its keys still replay and
// commands without a key go on.
func TestIdempotencyKeyLimit(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	cfg.IdempotencyKeys = 2
	s := start(t, cfg, true, false)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "limited"}).object(t)["token"].(string)
	chats := "/applications/" + token + "/chats"
	first := s.callWith(t, "POST", chats, map[string]any{"name": "one"}, keyed("k1"))
	if first.Status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", chats, first.Status, first.Body)
	}
	s.must(t, 201, "POST", chats+"/1/messages", map[string]any{"body": "two"})
	if r := s.callWith(t, "PATCH", chats+"/1", map[string]any{"name": "two"}, keyed("k2")); r.Status != http.StatusOK {
		t.Fatalf("PATCH %s/1: %d %s", chats, r.Status, r.Body)
	}

	r := s.callWith(t, "POST", chats+"/1/messages", map[string]any{"body": "three"}, keyed("k3"))
	if r.Status != http.StatusTooManyRequests || r.errorCode(t) != "idempotency_key_limit" {
		t.Fatalf("a third key: %d %s; want 429 idempotency_key_limit", r.Status, r.Body)
	}
	if after, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || after < 86000 || after > 86400 {
		t.Errorf("Retry-After %q; want the seconds until the oldest key expires, about a day", r.Header.Get("Retry-After"))
	}
	if again := s.callWith(t, "POST", chats, map[string]any{"name": "one"}, keyed("k1")); again.Status != http.StatusCreated || string(again.Body) != string(first.Body) {
		t.Errorf("a retry of a held key: %d %s; want %s", again.Status, again.Body, first.Body)
	}
	s.must(t, 201, "POST", chats+"/1/messages", map[string]any{"body": "three"})
	// Another application has a limit of its own.
	other := s.must(t, 201, "POST", "/applications", map[string]any{"name": "other"}).object(t)["token"].(string)
	if r := s.callWith(t, "POST", "/applications/"+other+"/chats", nil, keyed("k3")); r.Status != http.StatusCreated {
		t.Errorf("a key in another application: %d %s", r.Status, r.Body)
	}
}
