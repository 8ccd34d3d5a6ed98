package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/searchindex"
	"github.com/chatsys/chat/verify"
)

// searchHistory is a log of message events with the awkward cases: edits,
// edits of numbers whose create never landed, and (once shuffled) edits
// stored before their create.
func searchHistory(token string) []events.Envelope {
	var out []events.Envelope
	add := func(ev events.Event, version int64) {
		out = append(out, events.Envelope{EventID: uuid.New(), StreamVersion: version, OccurredAt: events.Now(), Event: ev})
	}
	msg := func(chat, n int64, body string, version int64) {
		if version == 1 {
			add(events.MessageCreated{Token: token, ChatNumber: chat, Number: n, Body: body}, 1)
		} else {
			add(events.MessageEdited{Token: token, ChatNumber: chat, Number: n, Body: body}, version)
		}
	}
	add(events.ApplicationCreated{Token: token, Name: "acme"}, 1)
	add(events.ChatCreated{Token: token, Number: 1, Name: "one"}, 1)
	add(events.ChatCreated{Token: token, Number: 2, Name: "two"}, 1)
	msg(1, 1, "alpha one", 1)
	msg(1, 2, "beta", 1)
	msg(1, 2, "beta edited", 2)
	msg(1, 2, "beta twice", 3)
	msg(1, 3, "orphan edit", 2) // its create never landed
	msg(1, 4, "gamma", 1)
	msg(1, 4, "gamma late", 2)
	msg(2, 1, "Łódź", 1)
	msg(2, 2, "orphan again", 2)
	msg(2, 2, "orphan again twice", 3)
	// Deletes: one raced by a later edit, one stored (once shuffled)
	// before its create and done twice, one of a number never created.
	msg(1, 5, "delta secret", 1)
	msg(1, 5, "delta secret edited", 2)
	add(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 5}, 3)
	msg(1, 5, "delta secret late", 4)
	add(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 6}, 2)
	msg(1, 6, "epsilon secret", 1)
	add(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 6}, 3)
	add(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 7}, 2)
	return out
}

// searchWant is what the index must hold after searchHistory, in any order:
// one document per created message, with its newest body, and none for a
// deleted one.
var searchWant = map[string]string{"1:1": "alpha one", "1:2": "beta twice", "1:4": "gamma late", "2:1": "Łódź", "1:5": "", "1:6": ""}

// TestSearchFoldIsOrderIndependent stores the same message events in many
// orders and projects them into the search index in batches of many sizes:
// every created message has one document with its newest body, an edit
// whose create never landed has none, and `chat verify` agrees.
func TestSearchFoldIsOrderIndependent(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	es, err := searchindex.Open(searchindex.Config{URL: cfg.ElasticsearchURL})
	if err != nil {
		t.Fatal(err)
	}
	codec := events.NewCodec()
	rng := rand.New(rand.NewSource(2))
	const token = "abcdefghijklmnopqrstuvwxyz"

	for round := 0; round < 8; round++ {
		ns := fmt.Sprintf("%s_r%d", cfg.Namespace, round)
		if _, err := mysqldb.Migrate(ctx, db, ns, 1); err != nil {
			t.Fatal(err)
		}
		index := searchindex.NewIndex(es, ns)
		t.Cleanup(func() { _ = index.Delete(context.Background()) })

		// Store the events in a shuffled order: streams may be stored in
		// any order, and so may two edits of one message.
		envs := searchHistory(token)
		switch round {
		case 0: // the order of the log
		case 1: // every edit before its create, each in a batch of its own
			slices.Reverse(envs)
		default:
			rng.Shuffle(len(envs), func(i, j int) { envs[i], envs[j] = envs[j], envs[i] })
		}
		store := eventstore.New(db, ns)
		app := testenv.Appender(t, db, ns, 0)
		recs := make([]events.Record, len(envs))
		for i, env := range envs {
			if recs[i], err = codec.Encode(env); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := app.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		stored, err := store.Read(ctx, 0, 0, 1000, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		var log []projections.Event
		for _, st := range stored {
			env, err := codec.Decode(st.Record)
			if err != nil {
				t.Fatal(err)
			}
			log = append(log, projections.Event{Position: st.Position, RecordedAt: st.RecordedAt, Envelope: env})
		}

		// Project in batches of one size, then apply the last batch again
		// (as after a crash before the checkpoint moved).
		search := newSearch(es, db, ns, slog.New(slog.DiscardHandler))
		tables := projections.NewMySQL(db, ns)
		for _, p := range []projections.Projection{search, tables} {
			if _, err := p.Checkpoint(ctx, 0); err != nil {
				t.Fatal(err)
			}
		}
		size := 1 + rng.Intn(len(log))
		if round == 1 {
			size = 1
		}
		var last []projections.Event
		for start := 0; start < len(log); start += size {
			last = log[start:min(start+size, len(log))]
			for _, p := range []projections.Projection{search, tables} {
				if err := p.Apply(ctx, [][]projections.Event{last}); err != nil {
					t.Fatalf("round %d: %s: %v", round, p.Name(), err)
				}
			}
		}
		if err := search.Apply(ctx, [][]projections.Event{last}); err != nil {
			t.Fatal(err)
		}
		got := indexed(t, cfg.ElasticsearchURL, index.Alias)
		if fmt.Sprint(got) != fmt.Sprint(foldedWant(token)) {
			t.Errorf("round %d (batches of %d): the index holds\n%v\nwant\n%v", round, size, got, foldedWant(token))
		}
		rep, err := verify.New(verify.Config{DB: db, Store: store, Codec: codec, Search: es, Namespace: ns}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Differences) > 0 {
			t.Errorf("round %d: verify: %s", round, strings.Join(rep.Differences, "; "))
		}
	}
}

func foldedWant(token string) map[string]string {
	out := map[string]string{}
	for k, body := range searchWant {
		out[token+":"+k] = searchindex.FoldAccents(body)
	}
	return out
}

// indexed returns every document of an index: its id and body.
func indexed(t *testing.T, url, alias string) map[string]string {
	t.Helper()
	res, err := http.Post(url+"/"+alias+"/_refresh", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	res, err = http.Post(url+"/"+alias+"/_search", "application/json", strings.NewReader(`{"query":{"match_all":{}},"size":100}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("search %s: %s %s", alias, res.Status, b)
	}
	var out struct {
		Hits struct {
			Hits []struct {
				ID     string `json:"_id"`
				Source struct {
					Body string `json:"body"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range out.Hits.Hits {
		got[h.ID] = h.Source.Body
	}
	return got
}
