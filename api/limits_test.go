package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestReadsRefusedWhenNoSlotIsFree: with every read slot taken, each read
// route answers 503 overloaded with Retry-After at once, while commands (a
// bound of their own) and the operational routes are still served.
func TestReadsRefusedWhenNoSlotIsFree(t *testing.T) {
	t.Parallel()
	h := NewHandler(Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), MaxInFlight: 8, MaxReadsInFlight: 0})
	fill := strings.NewReplacer("{token}", oaToken, "{chat}", "1", "{message}", "1", "{param}", "x")
	for r := range oaWalk(t, h) {
		path := fill.Replace(r.path)
		if strings.HasSuffix(path, "/stream") {
			continue // streams have a bound of their own (TestStreamsAreBounded)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(r.method, path, nil))
		var body errorBody
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		overloaded := w.Code == http.StatusServiceUnavailable && body.Error.Code == "overloaded"
		isRead := r.method == http.MethodGet && !oaOperational[r.path]
		if overloaded != isRead {
			t.Errorf("%s %s: %d %s; a read %v", r.method, path, w.Code, strings.TrimSpace(w.Body.String()), isRead)
		}
		if overloaded && w.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 overloaded without Retry-After", r.method, path)
		}
	}
}
