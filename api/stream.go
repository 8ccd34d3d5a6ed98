package api

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/internal/plainjson"
	"github.com/chatsys/chat/readmodel"
)

// Wakeups tell the API when a chat may have changed. A wake-up carries no
// data: the chat's feed reads the chat again after its head, so a lost one
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
	streamBatch        = 32
)

// streamStart is where a stream starts: its chat, the cursor it resumes
// after, and the chat's latest change when it opened.
type streamStart struct {
	token               string
	chat, after, latest int64
}

// streamTarget reads a stream's chat and the cursor it resumes after: the
// Last-Event-ID header, sent by a reconnecting EventSource, wins over the
// after parameter. Without either, it starts after the chat's latest
// change. It answers before the stream starts, with the usual errors.
func (s *server) streamTarget(r *http.Request) (streamStart, error) {
	var st streamStart
	st.token = chi.URLParam(r, "token")
	if err := checkApp(st.token); err != nil {
		return st, err
	}
	var err error
	if st.chat, err = pathNumber(chi.URLParam(r, "chat"), "chat"); err != nil {
		return st, err
	}
	given := false
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		given = true
		st.after, err = parseCursor("Last-Event-ID", v)
	} else if r.URL.Query().Has("after") {
		given = true
		st.after, err = parseCursor("after", r.URL.Query().Get("after"))
	}
	if err != nil {
		return st, err
	}
	// The latest change both checks the chat exists and, without a
	// cursor, is where the stream starts.
	if st.latest, err = s.latestChange(r.Context(), st.token, st.chat); err != nil {
		return st, err
	}
	if !given {
		st.after = st.latest
	}
	return st, nil
}

// streamMessages answers GET …/messages/stream: Server-Sent Events of the
// chat's changes after the client's cursor, then live.
// Its errors are answered before the stream starts; after that it ends
// the stream instead.
func (s *server) streamMessages(w http.ResponseWriter, r *http.Request) error {
	start, err := s.streamTarget(r)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if s.detach(w, r, start) {
		return nil
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	st := &sse{w: w, deadline: rc.SetWriteDeadline, flush: rc.Flush, timeout: s.streams.writeTimeout}
	// The server's read and write timeouts bound ordinary requests; a
	// stream lives longer and bounds each write instead.
	_ = rc.SetReadDeadline(time.Time{})
	s.streams.open.Inc()
	defer s.streams.open.Dec()
	s.stream(r.Context(), st, start)
	return nil
}

// detach carries the stream on the request's connection, taken over from
// the HTTP server, on a goroutine of its own, and reports whether it could.
// An idle stream then holds its socket, that goroutine and a small one
// that notices the client leave, and none of the server's buffers or its
// deep request stack: about half the memory. The answer is delimited by
// the connection's close. Where the connection cannot be taken over (an
// HTTP/2 connection, a test's recorder), the stream stays in the request.
func (s *server) detach(w http.ResponseWriter, r *http.Request, start streamStart) bool {
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
		s.stream(ctx, st, start)
	}()
	return true
}

// stream writes the chat's changes after the start's cursor to st until
// the client goes, a write fails or stalls, or the process stops: from the
// read tables while the cursor lies before the chat's feed, then from the
// feed.
func (s *server) stream(ctx context.Context, st *sse, start streamStart) {
	f := s.join(start.token, start.chat, start.latest)
	defer s.leave(f)
	cursor := start.after
	if st.event("ready", cursor, map[string]string{"cursor": formatCursor(cursor)}) != nil {
		return
	}
	heartbeat := time.NewTicker(s.streams.heartbeat)
	defer heartbeat.Stop()
	live := false
	var occurred []time.Time // of the changes in the write at hand
	sent := func(at time.Time) { occurred = append(occurred, at) }
	for {
		st.buf.Reset()
		occurred = occurred[:0]
		next, changed, ok := f.after(cursor, &st.buf, sent)
		if !ok {
			// Behind the feed: catch up from the read tables.
			var err error
			if next, err = s.catchUp(ctx, st, start, cursor); err != nil {
				return
			}
			if next == cursor {
				// The read tables are away, or behind the feed (a
				// replay): wait for the feed.
				select {
				case <-ctx.Done():
					return
				case <-s.streams.stopping:
					return
				case <-time.After(s.jitteredRecheck()):
				}
			}
			cursor = next
			continue
		}
		if st.buf.Len() > 0 {
			if st.write(st.buf.Bytes()) != nil || st.flushed() != nil {
				return
			}
			// Counted once written; timed only when live, not for what
			// a resuming client was sent of its past.
			s.streams.delivered.Add(float64(len(occurred)))
			if live {
				for _, at := range occurred {
					s.streams.latency.Observe(time.Since(at).Seconds())
				}
			}
		}
		cursor, live = next, true
		select {
		case <-ctx.Done():
			return
		case <-s.streams.stopping:
			return
		case <-changed:
		case <-heartbeat.C:
			if st.comment() != nil {
				return
			}
		}
	}
}

// catchUp writes one read of the chat's changes after cursor from the read
// tables and returns the cursor after them. An error ends the stream: the
// client reconnects and resumes.
func (s *server) catchUp(ctx context.Context, st *sse, start streamStart, cursor int64) (int64, error) {
	got, err := s.q.Changes(ctx, start.token, start.chat, readmodel.Span{After: cursor, Limit: streamBatch})
	if err != nil {
		if e := apperr.As(err); e == nil || e.Kind != apperr.KindUnavailable {
			return cursor, err
		}
		return cursor, nil
	}
	st.buf.Reset()
	n := 0
	err = got.Each(ctx, func(c readmodel.Change) error {
		cursor = c.Position
		n++
		return appendEvent(&st.buf, changeEvent(c), c.Position, messageOut(c.Message))
	})
	if err != nil {
		return cursor, err
	}
	if n == 0 {
		return cursor, nil
	}
	if err := st.write(st.buf.Bytes()); err != nil {
		return cursor, err
	}
	s.streams.delivered.Add(float64(n))
	return cursor, st.flushed()
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
