package projections_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/searchindex"
)

// bulkSizes is a transport that notes the body size of every bulk request.
type bulkSizes struct {
	mu    sync.Mutex
	sizes []int64
}

func (b *bulkSizes) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/_bulk") {
		b.mu.Lock()
		b.sizes = append(b.sizes, r.ContentLength)
		b.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestSearchBulkIsBoundedInBytes: a batch whose documents add up to more
// than the bulk cap is indexed in several requests, none much over the cap,
// and every document arrives.
func TestSearchBulkIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	sizes := &bulkSizes{}
	es, err := searchindex.Open(searchindex.Config{URL: cfg.ElasticsearchURL, Transport: sizes})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	search := newSearch(es, db, cfg.Namespace, testenv.Logger(t, slog.LevelWarn))
	const capBytes = 64 << 10
	projections.SetBulkBytes(search, capBytes)
	if _, err := search.Checkpoint(ctx, 0); err != nil {
		t.Fatal(err)
	}

	const token, n = "abcdefghijklmnopqrstuvwxyz", 20
	body := strings.Repeat("<", 20<<10) + " needle"
	var batch []projections.Event
	for i := int64(1); i <= n; i++ {
		batch = append(batch, projections.Event{Position: i, Envelope: events.Envelope{
			EventID: uuid.New(), StreamVersion: 1, OccurredAt: time.Now(),
			Event: events.MessageCreated{Token: token, ChatNumber: 1, Number: i, Body: body},
		}})
	}
	if err := search.Apply(ctx, [][]projections.Event{batch}); err != nil {
		t.Fatal(err)
	}
	sizes.mu.Lock()
	got := append([]int64(nil), sizes.sizes...)
	sizes.mu.Unlock()
	// A request ends with the document that reaches the cap.
	if want := n * len(body) / (capBytes + len(body)); len(got) < want {
		t.Errorf("%d bulk requests of %v bytes for %d documents of %d bytes, want at least %d", len(got), got, n, len(body), want)
	}
	for _, size := range got {
		if size > capBytes+int64(len(body))+1024 {
			t.Errorf("a bulk request of %d bytes; the cap is %d and a document about %d", size, capBytes, len(body))
		}
	}

	index := searchindex.NewIndex(es, cfg.Namespace)
	count := func() int64 {
		n, err := index.Count(ctx, token, 1)
		if err != nil {
			return -1
		}
		return n
	}
	testenv.Eventually(t, testenv.SearchWait, "every document indexed", func() bool { return count() == n })
}
