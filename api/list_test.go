package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/readmodel"
)

// firstWrite calls a function the first time the handler writes to it.
type firstWrite struct {
	*httptest.ResponseRecorder
	then func()
	done bool
}

func (f *firstWrite) Write(b []byte) (int, error) {
	if !f.done {
		f.done = true
		f.then()
	}
	return f.ResponseRecorder.Write(b)
}

// TestListsAreWholeOrInterrupted: a page is written as it is read; when
// the database fails after its first items were sent, the answer is
// interrupted (http.ErrAbortHandler), never ended as a shorter list that
// parses, and when it does not, the page parses whole.
func TestListsAreWholeOrInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MySQL")
	}
	t.Parallel()
	cfg := testenv.Config(t)
	ctx := context.Background()
	const token = "abcdefghijklmnopqrstuvwxyz"
	const n = 100 // several slices of a page
	var batch []projections.Event
	add := func(ev events.Event) {
		batch = append(batch, projections.Event{Position: int64(len(batch) + 1), Envelope: events.Envelope{
			EventID: uuid.New(), StreamVersion: 1, OccurredAt: time.Now(), Event: ev,
		}})
	}
	add(events.ApplicationCreated{Token: token, Name: "a"})
	add(events.ChatCreated{Token: token, Number: 1, Name: "c"})
	for i := int64(1); i <= n; i++ {
		add(events.MessageCreated{Token: token, ChatNumber: 1, Number: i, Body: fmt.Sprint("<m", i, ">")})
	}
	db := testenv.DB(t, cfg)
	err := projections.NewMySQL(db, cfg.Namespace).Apply(ctx, [][]projections.Event{batch})
	if err != nil {
		t.Fatal(err)
	}

	dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, dsn.Addr)
	dsn.Addr = proxy.Addr()
	viaProxy, err := mysqldb.Open(dsn.FormatDSN(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()
	h := NewHandler(Deps{
		Queries:  readmodel.NewQueries(viaProxy, cfg.Namespace),
		Registry: prometheus.NewRegistry(), Log: testenv.Logger(t, slog.LevelError), MaxInFlight: 8, MaxReadsInFlight: 8,
	})
	path := "/applications/" + token + "/chats/1/messages?per_page=1000"

	// Whole: every message, in order, as it was written.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	var page []messageJSON
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 || len(page) != n {
		t.Fatalf("GET %s: %d, %d messages, %v", path, w.Code, len(page), err)
	}
	for i, m := range page {
		if m.Number != int64(i+1) || m.Body != fmt.Sprint("<m", i+1, ">") {
			t.Errorf("message %d reads %+v", i+1, m)
		}
	}
	if strings.Contains(w.Body.String(), `\u003c`) {
		t.Error("the page is HTML-escaped")
	}

	// Interrupted: MySQL goes away once the first items are written.
	fw := &firstWrite{ResponseRecorder: httptest.NewRecorder(), then: proxy.Down}
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		h.ServeHTTP(fw, httptest.NewRequest("GET", path, nil))
	}()
	if recovered != http.ErrAbortHandler {
		t.Errorf("the answer ended with %v, want it interrupted (%v)", recovered, http.ErrAbortHandler)
	}
	if fw.Code != 200 || json.Valid(fw.Body.Bytes()) {
		t.Errorf("an interrupted answer: %d, %d bytes that parse: %v", fw.Code, fw.Body.Len(), json.Valid(fw.Body.Bytes()))
	}
}
