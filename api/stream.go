package api

import (
	"bytes"
	"context"
	"io"
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
	// Woken is when the chat was last woken: the streams it woke share a
	// read begun after it.
	Woken(token string, chat int64) time.Time
}

// The streams' defaults; Deps may set others.
const (
	DefaultMaxStreams  = 10000
	DefaultRecheck     = 3 * time.Second
	DefaultHeartbeat   = 15 * time.Second
	DefaultStreamWrite = 10 * time.Second
	streamRetry        = 2 * time.Second
	streamBatch        = 32
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
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	if s.detach(w, r, token, chat, after) {
		return
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	st := &sse{w: w, deadline: rc.SetWriteDeadline, flush: rc.Flush, timeout: s.streams.writeTimeout}
	// The server's read and write timeouts bound ordinary requests; a
	// stream lives longer and bounds each write instead.
	_ = rc.SetReadDeadline(time.Time{})
	s.streams.open.Inc()
	defer s.streams.open.Dec()
	s.follow(r.Context(), st, token, chat, after)
}

// detach carries the stream on the request's connection, taken over from
// the HTTP server, on a goroutine of its own, and reports whether it could.
// An idle stream then holds its socket, that goroutine and a small one
// that notices the client leave, and none of the server's buffers or its
// deep request stack: about half the memory. The answer is delimited by
// the connection's close. Where the connection cannot be taken over (an
// HTTP/2 connection, a test's recorder), the stream stays in the request.
func (s *server) detach(w http.ResponseWriter, r *http.Request, token string, chat, after int64) bool {
	if s.streams.running == nil {
		return false
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	w.Header().Set("Connection", "close")
	if err := w.Header().Write(&head); err != nil {
		return false
	}
	head.WriteString("\r\n")
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Del("Connection")
		return false
	}
	// The server's deadlines were for a request; the stream bounds each
	// write instead.
	_ = conn.SetDeadline(time.Time{})
	release := keepSlot(r)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	s.streams.running.Add(1)
	go func() {
		defer s.streams.running.Done()
		defer release()
		defer conn.Close()
		defer cancel()
		// A client sends nothing after its request: a read that returns
		// means it went away (or broke the protocol).
		go func() {
			var b [1]byte
			_, _ = conn.Read(b[:])
			cancel()
		}()
		st := &sse{w: conn, deadline: conn.SetWriteDeadline, timeout: s.streams.writeTimeout}
		if st.write(head.Bytes()) != nil {
			return
		}
		s.streams.open.Inc()
		defer s.streams.open.Dec()
		s.follow(ctx, st, token, chat, after)
	}()
	return true
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
	since := time.Now()
	for {
		next, full, err := s.deliver(ctx, st, token, chat, cursor, live, since)
		if err != nil {
			return
		}
		cursor = next
		if full {
			since = time.Now()
			continue
		}
		live = true
		select {
		case <-ctx.Done():
			return
		case <-s.streams.stopping:
			return
		case <-wake:
			// Every stream this wake-up woke may share one read begun
			// after it.
			since = s.woken(token, chat)
		case <-recheck.C:
			since = time.Now()
			recheck.Reset(s.jitteredRecheck())
		case <-heartbeat.C:
			if st.comment() != nil {
				return
			}
		}
	}
}

// deliver writes one read of changes after cursor, made no earlier than
// since (shared with the chat's other streams at the same cursor), and
// returns the cursor after them and whether the read was full (more may
// wait). An error ends the stream: the client reconnects and resumes.
func (s *server) deliver(ctx context.Context, st *sse, token string, chat, cursor int64, live bool, since time.Time) (int64, bool, error) {
	call, err := s.shared.read(ctx, s.streams.stopping, token, chat, cursor, since)
	if err != nil {
		if e := apperr.As(err); e == nil || e.Kind != apperr.KindUnavailable {
			return cursor, false, err
		}
		// The database is away: try again at the next re-read.
		return cursor, false, nil
	}
	if len(call.items) == 0 {
		return cursor, false, nil
	}
	if live {
		for _, c := range call.items {
			s.streams.latency.Observe(time.Since(c.UpdatedAt).Seconds())
		}
	}
	if err := st.write(call.events); err != nil {
		return cursor, false, err
	}
	s.streams.delivered.Add(float64(len(call.items)))
	return call.items[len(call.items)-1].Position, len(call.items) == streamBatch, st.flushed()
}

func (s *server) woken(token string, chat int64) time.Time {
	if s.wake == nil {
		return time.Now()
	}
	return s.wake.Woken(token, chat)
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
// client that stops reading ends its stream instead of holding it. It
// writes to a response (deadline and flush from its ResponseController)
// or to a connection of its own (unbuffered: flush is nil).
type sse struct {
	w        io.Writer
	deadline func(time.Time) error
	flush    func() error
	timeout  time.Duration
	buf      bytes.Buffer
}

func (e *sse) event(name string, id int64, v any) error {
	e.buf.Reset()
	if err := appendEvent(&e.buf, name, id, v); err != nil {
		return err
	}
	if err := e.write(e.buf.Bytes()); err != nil {
		return err
	}
	return e.flushed()
}

// appendEvent appends one Server-Sent Event to buf: its name, its id (a
// cursor) and v as JSON; the ready event also tells the browser how long
// to wait before it reconnects.
func appendEvent(buf *bytes.Buffer, name string, id int64, v any) error {
	buf.WriteString("event: " + name + "\nid: " + formatCursor(id) + "\n")
	if name == "ready" {
		buf.WriteString("retry: " + formatCursor(streamRetry.Milliseconds()) + "\n")
	}
	buf.WriteString("data: ")
	if err := plainjson.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	buf.WriteString("\n")
	return nil
}

func (e *sse) comment() error {
	if err := e.write([]byte(": keep-alive\n\n")); err != nil {
		return err
	}
	return e.flushed()
}

func (e *sse) write(p []byte) error {
	if err := e.deadline(time.Now().Add(e.timeout)); err != nil && err != http.ErrNotSupported {
		return err
	}
	_, err := e.w.Write(p)
	return err
}

func (e *sse) flushed() error {
	if e.flush == nil {
		return nil
	}
	if err := e.deadline(time.Now().Add(e.timeout)); err != nil && err != http.ErrNotSupported {
		return err
	}
	return e.flush()
}
