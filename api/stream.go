package api

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/internal/plainjson"
	"github.com/chatsys/chat/readmodel"
)

// Wakeups tell the API when a chat may have changed. A wake-up carries no
// data: its watchers read the chat again after their cursors, so a lost one
// only delays a delivery until the next re-read (StreamRecheck).
type Wakeups interface {
	// Watch returns a channel that receives (without blocking its sender,
	// so wake-ups coalesce) when the chat may have changed, and a func that
	// stops the watch.
	Watch(token string, chat int64) (<-chan struct{}, func())
}

// The streams' defaults; Deps may set others.
const (
	DefaultMaxStreams  = 10000
	DefaultRecheck     = 3 * time.Second
	DefaultHeartbeat   = 15 * time.Second
	DefaultStreamWrite = 10 * time.Second
	streamRetry        = 2 * time.Second
	streamBatch        = 100
)

// streamTarget reads a stream's chat and the cursor it resumes after: the
// Last-Event-ID header, sent by a reconnecting EventSource, wins over the
// after parameter. Without either, it starts after the chat's latest
// change. It answers before the stream starts, with the usual errors.
func (s *server) streamTarget(r *http.Request) (token string, chat, after int64, err error) {
	token = chi.URLParam(r, "token")
	if !commands.ValidToken(token) {
		return "", 0, 0, apperr.NotFound("application not found")
	}
	if chat, err = pathNumber(chi.URLParam(r, "chat"), "chat"); err != nil {
		return "", 0, 0, err
	}
	given := false
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		given = true
		after, err = parseCursor("Last-Event-ID", v)
	} else if r.URL.Query().Has("after") {
		given = true
		after, err = parseCursor("after", r.URL.Query().Get("after"))
	}
	if err != nil {
		return "", 0, 0, err
	}
	// The latest change both checks the chat exists and, without a
	// cursor, is where the stream starts.
	latest, err := s.q.Changes(r.Context(), token, chat, readmodel.Span{Before: math.MaxInt64, Limit: 1})
	if err != nil {
		return "", 0, 0, err
	}
	if !given {
		after = latest.To
	}
	return token, chat, after, nil
}

// streamMessages answers GET …/messages/stream: Server-Sent Events of the
// chat's changes after the client's cursor, then live.
func (s *server) streamMessages(w http.ResponseWriter, r *http.Request) {
	token, chat, after, err := s.streamTarget(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	st := &sse{w: w, rc: http.NewResponseController(w), timeout: s.streams.writeTimeout}
	// The server's read and write timeouts bound ordinary requests; a
	// stream lives longer and bounds each write instead.
	_ = st.rc.SetReadDeadline(time.Time{})
	s.streams.open.Inc()
	defer s.streams.open.Dec()
	s.follow(r.Context(), st, token, chat, after)
}

// follow writes the chat's changes after cursor to st until the client
// goes, a write fails or stalls, or the process stops.
func (s *server) follow(ctx context.Context, st *sse, token string, chat, cursor int64) {
	wake, stop := s.watch(token, chat)
	defer stop()
	if st.event("ready", cursor, map[string]string{"cursor": formatCursor(cursor)}) != nil {
		return
	}
	heartbeat := time.NewTicker(s.streams.heartbeat)
	defer heartbeat.Stop()
	recheck := time.NewTimer(s.jitteredRecheck())
	defer recheck.Stop()
	live := false
	for {
		next, full, err := s.deliver(ctx, st, token, chat, cursor, live)
		if err != nil {
			return
		}
		cursor = next
		if full {
			continue
		}
		live = true
		select {
		case <-ctx.Done():
			return
		case <-s.streams.stopping:
			return
		case <-wake:
		case <-recheck.C:
			recheck.Reset(s.jitteredRecheck())
		case <-heartbeat.C:
			if st.comment() != nil {
				return
			}
		}
	}
}

// deliver writes one read of changes after cursor, and returns the cursor
// after them and whether the read was full (more may wait). An error ends
// the stream: the client reconnects and resumes.
func (s *server) deliver(ctx context.Context, st *sse, token string, chat, cursor int64, live bool) (int64, bool, error) {
	got, err := s.q.Changes(ctx, token, chat, readmodel.Span{After: cursor, Limit: streamBatch})
	if err != nil {
		if apperr.As(err) == nil || apperr.As(err).Kind != apperr.KindUnavailable {
			return cursor, false, err
		}
		// The database is away: try again at the next re-read.
		return cursor, false, nil
	}
	n := 0
	err = got.Each(ctx, func(c readmodel.Change) error {
		n++
		if live {
			s.streams.latency.Observe(time.Since(c.UpdatedAt).Seconds())
		}
		cursor = c.Position
		return st.event("message", c.Position, messageOut(c.Message))
	})
	s.streams.delivered.Add(float64(n))
	if err != nil {
		return cursor, false, err
	}
	return cursor, n == streamBatch, st.flush()
}

func (s *server) watch(token string, chat int64) (<-chan struct{}, func()) {
	if s.wake == nil {
		return nil, func() {}
	}
	return s.wake.Watch(token, chat)
}

// jitteredRecheck spreads the streams' re-reads over time.
func (s *server) jitteredRecheck() time.Duration {
	d := s.streams.recheck
	return d/2 + rand.N(d/2+1)
}

// sse writes Server-Sent Events, each within a write deadline, so that a
// client that stops reading ends its stream instead of holding it.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     bytes.Buffer
}

func (e *sse) event(name string, id int64, v any) error {
	e.buf.Reset()
	e.buf.WriteString("event: " + name + "\nid: " + formatCursor(id) + "\n")
	if name == "ready" {
		e.buf.WriteString("retry: " + formatCursor(streamRetry.Milliseconds()) + "\n")
	}
	e.buf.WriteString("data: ")
	if err := plainjson.NewEncoder(&e.buf).Encode(v); err != nil {
		return err
	}
	e.buf.WriteString("\n")
	if err := e.write(e.buf.Bytes()); err != nil {
		return err
	}
	if name == "ready" {
		return e.flush()
	}
	return nil
}

func (e *sse) comment() error {
	if err := e.write([]byte(": keep-alive\n\n")); err != nil {
		return err
	}
	return e.flush()
}

func (e *sse) write(p []byte) error {
	if err := e.rc.SetWriteDeadline(time.Now().Add(e.timeout)); err != nil && err != http.ErrNotSupported {
		return err
	}
	_, err := e.w.Write(p)
	return err
}

func (e *sse) flush() error {
	if err := e.rc.SetWriteDeadline(time.Now().Add(e.timeout)); err != nil && err != http.ErrNotSupported {
		return err
	}
	return e.rc.Flush()
}
