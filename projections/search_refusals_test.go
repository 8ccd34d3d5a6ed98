package projections_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/searchindex"
)

// refusingIndex answers bulk requests, while refusal is set, as a cluster
// would whose index refuses every item for that reason; otherwise it passes
// them to the search service.
type refusingIndex struct {
	refusal atomic.Pointer[itemRefusal]
}

type itemRefusal struct {
	status       int
	kind, reason string
}

func (x *refusingIndex) RoundTrip(r *http.Request) (*http.Response, error) {
	refusal := x.refusal.Load()
	if refusal == nil || !strings.HasSuffix(r.URL.Path, "/_bulk") {
		return http.DefaultTransport.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	// Action lines name the documents; each is followed by its source.
	var items []string
	lines := bufio.NewScanner(bytes.NewReader(body))
	lines.Buffer(nil, 16<<20)
	for action := true; lines.Scan(); action = !action {
		if !action {
			continue
		}
		var a map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(lines.Bytes(), &a); err != nil {
			return nil, err
		}
		for _, meta := range a {
			item, _ := json.Marshal(map[string]any{"index": map[string]any{
				"_index": meta.Index, "_id": meta.ID, "status": refusal.status,
				"error": map[string]string{"type": refusal.kind, "reason": refusal.reason},
			}})
			items = append(items, string(item))
		}
	}
	answer := fmt.Sprintf(`{"took":1,"errors":true,"items":[%s]}`, strings.Join(items, ","))
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}, "X-Elastic-Product": {"Elasticsearch"}},
		Body:   io.NopCloser(strings.NewReader(answer)), ContentLength: int64(len(answer)), Request: r,
	}, nil
}

// TestSearchRetriesWhatTheIndexRefuses: a document refused for a reason of
// the cluster or the index (read-only at the disk's flood stage, closed,
// missing, an alias without a write index while it moves) is not parked:
// the Apply fails, to be retried, and once the index takes documents again
// the retry indexes it. One refused for a reason of its own is parked.
func TestSearchRetriesWhatTheIndexRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		refusal itemRefusal
		parked  bool
	}{
		{"read-only index", itemRefusal{403, "cluster_block_exception", "index [x] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}, false},
		{"closed index", itemRefusal{400, "index_closed_exception", "closed"}, false},
		{"missing index", itemRefusal{404, "index_not_found_exception", "no such index [x]"}, false},
		{"alias without a write index", itemRefusal{400, "illegal_argument_exception", "no write index is defined for alias [x]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index"}, false},
		{"the cluster busy", itemRefusal{429, "es_rejected_execution_exception", "rejected execution"}, false},
		{"a document the mapping refuses", itemRefusal{400, "document_parsing_exception", "failed to parse field [body]"}, true},
	}
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	index := &refusingIndex{}
	es, err := searchindex.Open(searchindex.Config{URL: cfg.ElasticsearchURL, Transport: index})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	search := newSearch(es, db, cfg.Namespace, testenv.Logger(t, slog.LevelError))
	if _, err := search.Checkpoint(ctx, 0); err != nil {
		t.Fatal(err)
	}
	const token = "abcdefghijklmnopqrstuvwxyz"
	parkedTable := catalog.New(cfg.Namespace).SearchParked()
	parked := func() (n int) {
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+parkedTable).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	count := func(chat int64) int64 {
		n, err := searchindex.NewIndex(es, cfg.Namespace).Count(ctx, token, chat)
		if err != nil {
			return -1
		}
		return n
	}
	for i, c := range cases {
		chat := int64(i + 1)
		batch := []projections.Event{{Position: chat, Envelope: events.Envelope{
			EventID: uuid.New(), StreamVersion: 1, OccurredAt: time.Now(),
			Event: events.MessageCreated{Token: token, ChatNumber: chat, Number: 1, Body: "needle"},
		}}}
		before := parked()
		index.refusal.Store(&c.refusal)
		err := search.Apply(ctx, [][]projections.Event{batch})
		index.refusal.Store(nil)
		if c.parked {
			if err != nil || parked() != before+1 {
				t.Errorf("%s: Apply %v and %d parked; want it applied and the document parked", c.name, err, parked()-before)
			}
			continue
		}
		if err == nil || parked() != before {
			t.Errorf("%s: Apply %v and %d parked; want the Apply to fail and nothing parked", c.name, err, parked()-before)
			continue
		}
		if err := search.Apply(ctx, [][]projections.Event{batch}); err != nil {
			t.Fatalf("%s: the retry: %v", c.name, err)
		}
		testenv.Eventually(t, testenv.SearchWait, c.name+": the retried document indexed", func() bool { return count(chat) == 1 })
	}
}

// TestSearchWritesOnlyThroughItsAlias: with its alias gone (deleted by
// hand, or for an instant while a replay swaps it, on a cluster that does
// not swap atomically), a write does not create an index of the alias's
// name, which would take the alias's place for good and hide every
// document behind it. The Apply fails; the next start makes sure of the
// alias again, and the retry indexes the document.
func TestSearchWritesOnlyThroughItsAlias(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	es, err := searchindex.Open(searchindex.Config{URL: cfg.ElasticsearchURL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	search := newSearch(es, db, cfg.Namespace, testenv.Logger(t, slog.LevelError))
	if _, err := search.Checkpoint(ctx, 0); err != nil {
		t.Fatal(err)
	}
	ix := searchindex.NewIndex(es, cfg.Namespace)
	call := func(method, path string) int {
		req, err := http.NewRequestWithContext(ctx, method, cfg.ElasticsearchURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if status := call("DELETE", "/"+ix.VersionName(searchindex.Version)+"/_alias/"+ix.Alias); status != http.StatusOK {
		t.Fatalf("delete the alias: %d", status)
	}

	const token = "abcdefghijklmnopqrstuvwxyz"
	batch := []projections.Event{{Position: 1, Envelope: events.Envelope{
		EventID: uuid.New(), StreamVersion: 1, OccurredAt: time.Now(),
		Event: events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "needle"},
	}}}
	if err := search.Apply(ctx, [][]projections.Event{batch}); err == nil {
		t.Fatal("Apply through a missing alias succeeded")
	}
	if status := call("HEAD", "/"+ix.Alias); status != http.StatusNotFound {
		t.Fatalf("HEAD /%s: %d after the write; want 404: no index took the alias's name", ix.Alias, status)
	}
	// A runner starts again from its checkpoint, which makes sure of the
	// alias first.
	if _, err := search.Checkpoint(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := search.Apply(ctx, [][]projections.Event{batch}); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	testenv.Eventually(t, testenv.SearchWait, "the retried document indexed", func() bool {
		n, err := ix.Count(ctx, token, 1)
		return err == nil && n == 1
	})
}
